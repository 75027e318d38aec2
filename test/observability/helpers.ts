import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@orderflow/kit/testing';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Child {
  name: string;
  url: string;
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** stdout JSON log lines parsed (non-JSON lines skipped). */
  logs(): Array<Record<string, unknown>>;
  /** SIGTERM and wait for exit; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Runs `node services/<name>/dist/main.js` (or another entry) and waits for /health or /ready. */
export async function startChild(name: string, entry: string, port: number, env: Record<string, string>, readyPath = '/ready'): Promise<Child> {
  // The parent's OTEL_* must not leak into a child that is meant to run without them.
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
  const proc = spawn(process.execPath, [entry], { cwd: ROOT, env: { ...base, ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let partial = '';
  proc.stdout!.on('data', (b: Buffer) => {
    const lines = (partial + b.toString()).split('\n');
    partial = lines.pop() ?? '';
    stdout.push(...lines.filter(Boolean));
  });
  proc.stderr!.on('data', (b: Buffer) => stderr.push(b.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const url = `http://127.0.0.1:${port}`;
  await Promise.race([
    waitFor(`${name} ready`, async () => (await fetch(`${url}${readyPath}`)).ok, 45_000, 100),
    exited.then((code) => {
      throw new Error(`${name} exited (${code}) before ready:\n${stderr.join('')}\n${stdout.slice(-20).join('\n')}`);
    }),
  ]);
  return {
    name,
    url,
    proc,
    stdout,
    stderr,
    logs: () =>
      stdout.flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

/** Parses Prometheus text into `name{labels}` → value (summed per series name too, under `name`). */
export function parseMetrics(text: string): { series: Map<string, number>; total(name: string, where?: (labels: string) => boolean): number; has(name: string): boolean } {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m) series.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  const entries = (name: string) => [...series].filter(([k]) => k === name || k.startsWith(`${name}{`));
  return {
    series,
    has: (name) => entries(name).length > 0,
    total: (name, where = () => true) => entries(name).filter(([k]) => where(k.slice(name.length))).reduce((a, [, v]) => a + v, 0),
  };
}
