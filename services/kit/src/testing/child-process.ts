/**
 * One way for tests and benchmarks to run a process of their own (a built service, the dev
 * runner, a tool binary): spawn it, keep the tail of what it says, wait for a fact that says it
 * is ready (or fail with its last words if it exits or never gets there), and stop it — SIGTERM,
 * then SIGKILL after a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
// index.ts re-exports this module; waitFor is only called later, so the cycle is harmless.
import { waitFor } from './index.js';

export interface LaunchOptions {
  /** For messages: "order-service", "jaeger", … */
  name: string;
  /** The executable; this Node by default. */
  command?: string;
  args: string[];
  cwd?: string;
  /** Added to the inherited environment, or the whole environment with `inheritEnv: false`. */
  env?: Record<string, string>;
  /** Inherit this process's environment (default true), or only the names the predicate keeps. */
  inheritEnv?: boolean | ((name: string) => boolean);
  /** Its own process group (stop() then signals the whole group). */
  detached?: boolean;
  /** Output lines kept per stream (the oldest go first); 5,000 by default. */
  keepLines?: number;
  /** A fact that says the process is ready (its output, a port, an HTTP probe), polled until true; without it, ready once spawned. */
  ready?: (p: LaunchedProcess) => unknown;
  readyTimeoutMs?: number;
  readyEveryMs?: number;
}

export interface LaunchedProcess {
  name: string;
  proc: ChildProcess;
  /** Complete stdout lines (JSON logs, one event a line), the last `keepLines`. */
  stdout: string[];
  /** Complete stderr lines, the last `keepLines`. */
  stderr: string[];
  /** The tail of stdout and stderr together, in arrival order, for error messages. */
  output(maxChars?: number): string;
  /** Stdout lines that are JSON objects (log lines), parsed; other lines skipped. */
  logs(): Array<Record<string, unknown>>;
  /** Settles when the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  /**
   * Sends `signal` (SIGTERM by default; to the group when detached), SIGKILL after `killAfterMs`
   * (20 s by default), and resolves with the exit code. Safe to call again or after an exit.
   */
  stop(o?: { signal?: NodeJS.Signals; killAfterMs?: number }): Promise<number | null>;
}

function environment(o: LaunchOptions): Record<string, string | undefined> {
  const inherit = o.inheritEnv ?? true;
  const base = inherit === false ? {} : Object.fromEntries(Object.entries(process.env).filter(([k]) => inherit === true || inherit(k)));
  return { ...base, ...(o.env ?? {}) };
}

/** Collects a stream's complete lines into `into`, bounded; `also` sees every chunk. */
function lines(stream: NodeJS.ReadableStream, into: string[], keep: number, also: (chunk: string) => void): void {
  let partial = '';
  stream.on('data', (b: Buffer) => {
    const text = b.toString();
    also(text);
    const parts = (partial + text).split('\n');
    partial = parts.pop() ?? '';
    into.push(...parts.filter(Boolean));
    if (into.length > keep) into.splice(0, into.length - keep);
  });
  stream.on('end', () => {
    if (partial) into.push(partial);
  });
}

/** Spawns the process and, with `ready`, resolves once it is ready; see the module comment. */
export async function launchProcess(o: LaunchOptions): Promise<LaunchedProcess> {
  const keep = o.keepLines ?? 5000;
  const proc = spawn(o.command ?? process.execPath, o.args, {
    cwd: o.cwd,
    env: environment(o),
    detached: o.detached ?? false,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const chunks: string[] = [];
  const both = (chunk: string) => {
    chunks.push(chunk);
    if (chunks.length > 2 * keep) chunks.splice(0, keep);
  };
  lines(proc.stdout!, stdout, keep, both);
  lines(proc.stderr!, stderr, keep, both);
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve((exit = { code, signal })));
    // Never spawned (no such binary): an exit as far as everyone waiting is concerned.
    proc.once('error', (err) => {
      chunks.push(`\n${o.name}: ${err.message}\n`);
      resolve((exit ??= { code: null, signal: null }));
    });
  });
  const running = () => exit === undefined && proc.exitCode === null && proc.signalCode === null;
  const signal = (s: NodeJS.Signals) => {
    try {
      if (o.detached && proc.pid) process.kill(-proc.pid, s);
      else proc.kill(s);
    } catch {
      // Already gone.
    }
  };
  const stop = async ({ signal: s = 'SIGTERM', killAfterMs = 20_000 }: { signal?: NodeJS.Signals; killAfterMs?: number } = {}) => {
    if (running()) {
      signal(s);
      const t = setTimeout(() => signal('SIGKILL'), killAfterMs);
      await exited;
      clearTimeout(t);
    }
    return (await exited).code;
  };
  const output = (maxChars = 4000) => chunks.join('').slice(-maxChars);
  const launched: LaunchedProcess = {
    name: o.name,
    proc,
    stdout,
    stderr,
    output,
    logs: () =>
      stdout.flatMap((l) => {
        try {
          const j = JSON.parse(l) as unknown;
          return j && typeof j === 'object' ? [j as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      }),
    exited,
    running,
    stop,
  };
  if (!o.ready) return launched;
  const ready = o.ready;
  try {
    await Promise.race([
      waitFor(`${o.name} ready`, async () => await ready(launched), o.readyTimeoutMs ?? 45_000, o.readyEveryMs ?? 100),
      exited.then((e) => {
        throw new Error(`${o.name} exited (code ${e.code}, signal ${e.signal}) before it was ready`);
      }),
    ]);
  } catch (err) {
    await stop({ killAfterMs: 2000 });
    throw new Error(`${(err as Error).message}\n--- ${o.name} output ---\n${output()}`, { cause: err });
  }
  return launched;
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A readiness fact for `ready`: GET <url><path> answers 2xx. */
export function httpReady(url: string): () => Promise<boolean> {
  return async () => (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
}
