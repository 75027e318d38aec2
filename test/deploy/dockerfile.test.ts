/**
 * The image recipe, read statically (no container engine here): multi-stage, non-root, exec-form
 * CMD, cached npm ci, compiled output only, and a runtime on a supported Node LTS line that
 * package.json `engines` admits and the CI leg (scripts/node-lts-leg.sh, Node from scripts/node-lts.sh) tests.
 */
import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './helm.js';

const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
const instr = lines.map((l) => /^\s*([A-Z]+)\s/.exec(l)?.[1]).filter((x): x is string => !!x);

/** Node release lines that are LTS and not past end of life (nodejs.org/en/about/previous-releases). */
const SUPPORTED_LTS = { 22: '2027-04-30', 24: '2028-04-30' } as const;

describe('Dockerfile', () => {
  it('is multi-stage, non-root, exec-form CMD, no HEALTHCHECK, no remote ADD, cached npm ci', () => {
    expect(instr.filter((i) => i === 'FROM').length).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/^ARG SERVICE$/m);
    const users = lines.filter((l) => /^\s*USER\s/.test(l));
    expect(users.at(-1)).toMatch(/USER\s+(node|nonroot|\d{3,})/);
    expect(instr).not.toContain('HEALTHCHECK');
    expect(lines.filter((l) => /^\s*ADD\s/.test(l) && /https?:\/\//.test(l))).toHaveLength(0);
    expect(text).toMatch(/--mount=type=cache,target=\/root\/\.npm\s*\\\s*\n\s*npm ci/);
    expect(text).toMatch(/turbo@?\S* prune/);
    const cmd = lines.filter((l) => /^\s*CMD\s/.test(l)).at(-1)!;
    expect(cmd).toMatch(/^CMD \[.*"node".*\]$/);
    // The last stage ships compiled output only: no COPY of the whole context.
    const last = text.slice(text.lastIndexOf('\nFROM '));
    expect(last).not.toMatch(/^COPY \. /m);
    expect(last).toMatch(/COPY --from=build/);
  });

  it('builds and runs on Node 24, the current LTS line, which engines admits and Node 20 (end of life) is not', () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)-alpine$/m.exec(text);
    expect(image, 'ARG NODE_IMAGE=node:<major>-alpine').not.toBeNull();
    const major = Number(image![1]);
    expect(major).toBe(24);
    expect(Object.keys(SUPPORTED_LTS).map(Number)).toContain(major);
    const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    // Every supported LTS line is admitted from its minimum our tools need, 20 is not.
    expect(engines).toBe('^22.13.0 || >=24.0.0');
    const fetcher = readFileSync(join(root, 'scripts', 'node-lts.sh'), 'utf8');
    expect(fetcher).toMatch(new RegExp(`NODE_LTS_VERSION:-${major}\\.\\d+\\.\\d+`));
  });

  it('.dockerignore keeps node_modules, dist and .git out of the context', () => {
    const ign = readFileSync(join(root, '.dockerignore'), 'utf8');
    for (const p of ['**/node_modules', '**/dist', '.git']) expect(ign).toContain(p);
  });
});
