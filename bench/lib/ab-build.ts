/**
 * The other side of an A/B (`--ab=<git ref>`): that ref checked out in a temporary git worktree,
 * installed from npm's cache and built, so its services run beside this checkout's in the same
 * minutes. Removed again (worktree and directory) by the cleanup stack, also on failure.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { onCleanup } from './cleanup.js';
import { ROOT } from './procs.js';

const run = promisify(execFile);

export interface RefBuild {
  ref: string;
  /** The commit the ref named when the bench started (what was measured). */
  commit: string;
  /** The worktree: `startChild({ cwd })` runs its `services/…/dist/main.js`. */
  dir: string;
}

async function sh(cmd: string, args: string[], cwd: string, what: string): Promise<string> {
  try {
    return (await run(cmd, args, { cwd, maxBuffer: 64 * 1024 * 1024 })).stdout.trim();
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`--ab: ${what} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-5).join(' | ')}`, { cause: err });
  }
}

export async function buildRef(ref: string, log: (s: string) => void): Promise<RefBuild> {
  const commit = await sh('git', ['rev-parse', '--verify', `${ref}^{commit}`], ROOT, `resolving ${ref}`);
  const dir = await mkdtemp(`${tmpdir()}/orderflow-ab-`);
  onCleanup(`worktree ${dir}`, async () => {
    await run('git', ['worktree', 'remove', '--force', dir], { cwd: ROOT }).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    await run('git', ['worktree', 'prune'], { cwd: ROOT }).catch(() => undefined);
  });
  const t0 = Date.now();
  await sh('git', ['worktree', 'add', '--detach', dir, commit], ROOT, `checking out ${ref}`);
  await sh('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], dir, `npm ci at ${ref}`);
  await sh('npm', ['run', 'build'], dir, `building ${ref}`);
  log(`ab: ${ref} (${commit.slice(0, 7)}) built in ${dir} in ${Math.round((Date.now() - t0) / 1000)}s`);
  return { ref, commit, dir };
}
