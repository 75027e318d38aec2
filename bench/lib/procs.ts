import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort, httpReady, launchProcess } from '@orderflow/kit/testing';
import { onCleanup } from './cleanup.js';
import { sleep } from './stats.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export { freePort };

export interface Child {
  name: string;
  port: number;
  url: string;
  proc: ChildProcess;
  /** The tail of what it wrote (stdout and stderr). */
  output(): string;
  /** SIGTERM, wait for exit (SIGKILL after timeoutMs); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/**
 * Starts `node [nodeArgs] <script>` with env, as its own process (its own event loop), and waits
 * until `readyPath` answers 200. The process is killed by the cleanup stack if the run fails.
 */
export async function startChild(opts: {
  name: string;
  script: string;
  env: Record<string, string>;
  nodeArgs?: string[];
  /** The node binary (Config.node.command); the bench's own Node when not given. */
  node?: string;
  readyPath?: string;
  readyTimeoutMs?: number;
  /** Where `script` is found and the process runs (the repository by default; an A/B's worktree). */
  cwd?: string;
}): Promise<Child> {
  const port = Number(opts.env.PORT ?? (await freePort()));
  const url = `http://127.0.0.1:${port}`;
  const p = await launchProcess({
    name: opts.name,
    command: opts.node,
    args: [...(opts.nodeArgs ?? []), opts.script],
    cwd: opts.cwd ?? ROOT,
    env: { ...opts.env, PORT: String(port) },
    keepLines: 400,
    ready: httpReady(`${url}${opts.readyPath ?? '/ready'}`),
    readyTimeoutMs: opts.readyTimeoutMs ?? 90_000,
  });
  const stop = (timeoutMs = 20_000) => p.stop({ killAfterMs: timeoutMs });
  const undo = onCleanup(`process ${opts.name}`, () => stop(10_000).then(() => undefined));
  void p.exited.then(() => undo());
  return { name: opts.name, port, url, proc: p.proc, output: () => p.output(), stop };
}

export { sleep };

/** CPU time (user + system, ms) a process has used so far, from /proc; 0 if it is gone. */
export async function cpuMs(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command; clock ticks of 10 ms.
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * How many times the process's threads went to sleep and were woken (voluntary context switches,
 * all threads): on a VM each costs far more CPU than the work it wakes for at low rates, so
 * wake-ups per order explain CPU per order. 0 if it is gone.
 */
export async function wakeups(pid: number): Promise<number> {
  const { readdir, readFile } = await import('node:fs/promises');
  let n = 0;
  try {
    for (const tid of await readdir(`/proc/${pid}/task`)) {
      const status = await readFile(`/proc/${pid}/task/${tid}/status`, 'utf8').catch(() => '');
      n += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    }
  } catch {
    return 0;
  }
  return n;
}

/** Pids whose command name is `comm` (e.g. every postgres backend). */
export async function pidsOf(comm: string): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if ((await readFile(`/proc/${d}/comm`, 'utf8')).trim() === comm) out.push(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Clock ticks of all CPUs so far, from /proc/stat's first line. */
export interface MachineTicks {
  idle: number;
  /** Time the hypervisor ran something else while this VM wanted a CPU. */
  steal: number;
  total: number;
}

export async function machineTicks(): Promise<MachineTicks> {
  const { readFile } = await import('node:fs/promises');
  const f = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  return { idle: (f[3] ?? 0) + (f[4] ?? 0), steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
}

/** Busy and stolen shares (0-1) of all CPUs between two readings. */
export function machineShares(a: MachineTicks, b: MachineTicks): { busy: number; steal: number } {
  const total = Math.max(1, b.total - a.total);
  return { busy: 1 - (b.idle - a.idle) / total, steal: (b.steal - a.steal) / total };
}

/** Busy share of all CPUs over `ms`: what else is running on the machine. */
export async function machineBusy(ms = 1000): Promise<number> {
  const a = await machineTicks();
  await sleep(ms);
  return machineShares(a, await machineTicks()).busy;
}
