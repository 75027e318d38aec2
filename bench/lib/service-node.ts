/**
 * The Node the bench runs the platform's processes on: by default the supported LTS line the
 * images ship (scripts/node-lts.sh, from the npm registry, cached), not the machine's Node 20,
 * which is past its end of life and outside `engines`. BENCH_SERVICE_NODE=machine runs them on
 * the bench's own Node instead; a path runs them on that binary. The load generator and the
 * in-process consumers of the broker section always run on the bench's Node.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface ServiceNode {
  /** The node binary spawned for services, gateway and baselines alike. */
  command: string;
  version: string;
  /** Where it came from: 'images' LTS line, 'machine' or 'BENCH_SERVICE_NODE'. */
  source: 'images' | 'machine' | 'BENCH_SERVICE_NODE';
}

const ROOT = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');

export function serviceNode(env: NodeJS.ProcessEnv = process.env): ServiceNode {
  const want = env.BENCH_SERVICE_NODE ?? 'images';
  if (want === 'machine') return { command: process.execPath, version: process.version, source: 'machine' };
  const command =
    want === 'images'
      ? execFileSync('bash', [join(ROOT, 'scripts', 'node-lts.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim()
      : want;
  const version = execFileSync(command, ['--version'], { encoding: 'utf8' }).trim();
  return { command, version, source: want === 'images' ? 'images' : 'BENCH_SERVICE_NODE' };
}
