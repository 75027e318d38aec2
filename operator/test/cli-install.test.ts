/**
 * `npx orderflow …` from a fresh clone: npm links a workspace's bins at `npm install`, before
 * `npm run build` made dist/, and skips a bin whose file is missing. The bin is therefore a
 * committed shim (operator/bin/orderflow.js) that loads dist/cli/main.js.
 *
 * Shown with the real npm: a scratch workspace holding the operator's package.json (without its
 * dependencies, so the install is offline) and its bin/, no dist/ — the state of a fresh clone at
 * install time. Then, in this repository, the documented invocation itself (needs the build).
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_NATS_URL } from '@orderflow/kit/testing';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OPERATOR = join(ROOT, 'operator');
const scratch = mkdtempSync(join(tmpdir(), 'orderflow-bin-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function exec(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await run(cmd, args, { cwd, env: { ...process.env, ...env }, timeout: 120_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: typeof x.code === 'number' ? x.code : 1, out: x.stdout, err: x.stderr };
  }
}

describe('the orderflow bin', () => {
  it('is a committed file, so npm links it at install time even though dist/ does not exist yet', async () => {
    const pkg = JSON.parse(readFileSync(join(OPERATOR, 'package.json'), 'utf8')) as {
      name: string;
      bin: Record<string, string>;
      dependencies?: unknown;
    };
    expect(pkg.bin.orderflow).toBe('./bin/orderflow.js');
    const tracked = await exec('git', ['ls-files', '--error-unmatch', 'operator/bin/orderflow.js'], ROOT);
    expect(tracked.code, 'operator/bin/orderflow.js must be committed').toBe(0);

    // A fresh clone at `npm install` time: package.json and bin/, no dist/.
    const ws = join(scratch, 'clone');
    mkdirSync(join(ws, 'operator'), { recursive: true });
    writeFileSync(join(ws, 'package.json'), JSON.stringify({ name: 'clone', private: true, workspaces: ['operator'] }));
    writeFileSync(join(ws, 'operator', 'package.json'), JSON.stringify({ ...pkg, dependencies: {}, devDependencies: {} }));
    cpSync(join(OPERATOR, 'bin'), join(ws, 'operator', 'bin'), { recursive: true });
    const install = await exec('npm', ['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], ws);
    expect(install.code, install.err).toBe(0);
    const link = join(ws, 'node_modules', '.bin', 'orderflow');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);

    // Before the build it says what to do, through npx (never the registry).
    const early = await exec('npx', ['--no-install', 'orderflow', '--help'], ws);
    expect(early.code).toBe(1);
    expect(early.err).toContain('run `npm run build`');

    // After the build the same link runs the CLI (a stand-in dist here: the real one needs the workspace's dependencies).
    mkdirSync(join(ws, 'operator', 'dist', 'cli'), { recursive: true });
    writeFileSync(join(ws, 'operator', 'dist', 'cli', 'main.js'), "console.log('built cli', process.argv.slice(2).join(' '));\n");
    const built = await exec('npx', ['--no-install', 'orderflow', 'diff', '-f', 'x'], ws);
    expect(built.code, built.err).toBe(0);
    expect(built.out.trim()).toBe('built cli diff -f x');
  });

  it("`npx orderflow` in this repository runs the built CLI (help, and a diff against the suite's NATS)", async () => {
    if (!existsSync(join(OPERATOR, 'dist', 'cli', 'main.js'))) throw new Error('operator/dist missing: run npx turbo run build first');
    const help = await exec('npx', ['--no-install', 'orderflow', '--help'], ROOT);
    expect(help.code, help.err).toBe(0);
    expect(help.out).toContain('orderflow diff -f <dir|file>');
    // Read-only: the platform's resources as shipped, planned against the suite's server.
    const diff = await exec('npx', ['--no-install', 'orderflow', 'diff', '-f', 'k8s/platform/jetstream-resources.yaml'], ROOT, {
      NATS_URL: TEST_NATS_URL,
    });
    expect([0, 1], diff.err).toContain(diff.code);
    expect(diff.out).toMatch(/^Stream +ORDERS +/m);
    expect(diff.out).toMatch(/^Consumer +ORDERS\/inventory-orders +/m);
  });
});
