import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { onCleanup } from './cleanup.js';
import { sleep, until } from './stats.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Child {
  name: string;
  port: number;
  url: string;
  proc: ChildProcess;
  output: string[];
  /** SIGTERM, wait for exit (SIGKILL after timeoutMs); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
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
  readyPath?: string;
  readyTimeoutMs?: number;
}): Promise<Child> {
  const port = Number(opts.env.PORT ?? (await freePort()));
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.script], {
    cwd: ROOT,
    env: { ...process.env, ...opts.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (b: Buffer) => {
    output.push(b.toString());
    if (output.length > 400) output.splice(0, 200);
  };
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r((exitCode = code))));
  const stop = async (timeoutMs = 20_000): Promise<number | null> => {
    if (exitCode !== undefined) return exitCode;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  const undo = onCleanup(`process ${opts.name}`, () => stop(10_000).then(() => undefined));
  void exited.then(() => undo());
  const url = `http://127.0.0.1:${port}`;
  const ok = await until(async () => {
    if (exitCode !== undefined) throw new Error('exited');
    return (await fetch(`${url}${opts.readyPath ?? '/ready'}`)).ok;
  }, opts.readyTimeoutMs ?? 90_000, 100);
  if (!ok) {
    await stop(2000);
    throw new Error(`${opts.name} not ready (exit ${String(exitCode)}):\n${output.join('').slice(-3000)}`);
  }
  return { name: opts.name, port, url, proc, output, stop };
}

/** Reads one gauge/counter value (summed over label sets) from a Prometheus text page. */
export async function scrape(url: string, metric: string): Promise<number> {
  const r = await fetch(`${url}/metrics`);
  const text = await r.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(metric) && (line[metric.length] === ' ' || line[metric.length] === '{')) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
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

/** Busy share of all CPUs over `ms` (from /proc/stat): what else is running on the machine. */
export async function machineBusy(ms = 1000): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const read = async () => {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.split(/\s+/).slice(1).map(Number);
    const idle = (line[3] ?? 0) + (line[4] ?? 0);
    return { idle, total: line.reduce((a, b) => a + b, 0) };
  };
  const a = await read();
  await sleep(ms);
  const b = await read();
  return 1 - (b.idle - a.idle) / Math.max(1, b.total - a.total);
}
