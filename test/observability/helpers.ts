import { fileURLToPath } from 'node:url';
import { httpReady, launchProcess, type LaunchedProcess } from '@orderflow/kit/testing';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Child extends LaunchedProcess {
  url: string;
}

/** Runs `node services/<name>/dist/main.js` (or another entry) and waits for /health or /ready. */
export async function startChild(name: string, entry: string, port: number, env: Record<string, string>, readyPath = '/ready'): Promise<Child> {
  const url = `http://127.0.0.1:${port}`;
  const p = await launchProcess({
    name,
    args: [entry],
    cwd: ROOT,
    env: { ...env, PORT: String(port) },
    // The parent's OTEL_* must not leak into a child that is meant to run without them.
    inheritEnv: (k) => !k.startsWith('OTEL_'),
    ready: httpReady(`${url}${readyPath}`),
    readyTimeoutMs: 45_000,
  });
  return Object.assign(p, { url });
}

// The one Prometheus text reader lives in the kit; re-exported for the saga trace test, whose
// import moves to '@orderflow/kit/testing' with the change another engineer has in progress there.
export { parseMetrics } from '@orderflow/kit/testing';
