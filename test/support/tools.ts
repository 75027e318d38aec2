/**
 * The Go programs the tests run (helm, etcd, kube-apiserver, kubectl, Jaeger, Prometheus,
 * promtool, nats), built from their Go modules by scripts/tools.sh into .tools/bin and cached by
 * version. The suite's globalSetup builds what is missing before any test starts; a test that
 * runs outside it (a single file, scripts/gen-k8s-manifests.ts) builds it here, once.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Tool = 'nats-server' | 'nats' | 'helm' | 'etcd' | 'kube-apiserver' | 'kubectl' | 'jaeger' | 'prometheus' | 'promtool';

/** Generous: a first build of kube-apiserver, Jaeger or Prometheus takes minutes on two cores. */
export const TOOL_BUILD_TIMEOUT_MS = 30 * 60_000;

/** The binary a tool name resolves to: `<TOOL>_BIN` env (e.g. KUBE_APISERVER_BIN), else .tools/bin. */
export function toolBin(tool: Tool): string {
  return process.env[`${tool.toUpperCase().replace(/-/g, '_')}_BIN`] ?? join(ROOT, '.tools/bin', tool);
}

/** Builds the tools that are missing with scripts/tools.sh; throws, naming them, if that fails. */
export function ensureTools(tools: readonly Tool[]): void {
  const missing = tools.filter((t) => !existsSync(toolBin(t)));
  if (missing.length === 0) return;
  try {
    execFileSync('bash', [join(ROOT, 'scripts/tools.sh'), ...missing], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: TOOL_BUILD_TIMEOUT_MS,
    });
  } catch (err) {
    throw new Error(
      `${missing.join(', ')} not built, and building failed (bash scripts/tools.sh ${missing.join(' ')}): ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** toolBin of a tool that is there: built first when it is missing. */
export function builtTool(tool: Tool): string {
  ensureTools([tool]);
  return toolBin(tool);
}
