/**
 * The Go programs these tests run (Jaeger, Prometheus, promtool), built from their Go modules by
 * scripts/tools.sh into .tools/bin and cached by version. A missing one is built here, once: the
 * tests then run on a fresh machine too, only slower the first time.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ROOT } from './helpers.js';

/** Generous: a first build of Jaeger or Prometheus takes minutes on two cores. */
export const TOOL_BUILD_TIMEOUT_MS = 30 * 60_000;

export function toolBin(name: 'jaeger' | 'prometheus' | 'promtool'): string {
  const bin = `${ROOT}.tools/bin/${name}`;
  if (!existsSync(bin)) {
    try {
      execFileSync('bash', [`${ROOT}scripts/tools.sh`, name], { stdio: ['ignore', 'inherit', 'inherit'], timeout: TOOL_BUILD_TIMEOUT_MS });
    } catch (err) {
      throw new Error(`${name} is not built and building it failed (bash scripts/tools.sh ${name}): ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return bin;
}
