/**
 * A real Kubernetes control plane for tests, the envtest way: etcd and kube-apiserver (built from
 * their Go modules by scripts/tools.sh) on spare loopback ports, with serving certificates, a
 * service-account signing key and an admin token all made here, in a temp directory. No kubelet
 * and no controller-manager: objects are admitted and stored, workloads are never scheduled, and
 * nothing garbage-collects (a deleted namespace stays Terminating) — stop() throws it all away.
 *
 * API (stable; other test files import it):
 *
 *   await kubectlWait(cp, ['wait', '--for=condition=Established', 'crd/…'])   kubectl wait, asked again until it holds
 *   const cp = await startControlPlane({ name?, extraApiserverArgs?, startTimeoutMs? });
 *   cp.server          'https://127.0.0.1:<port>'
 *   cp.kubeconfigPath  admin kubeconfig (system:masters token) for kubectl, helm, @kubernetes/client-node
 *   cp.token           that admin bearer token
 *   cp.caPath          CA bundle that verifies the API server's serving certificate
 *   cp.dir             the temp directory (logs: etcd.log, kube-apiserver.log)
 *   cp.env             { KUBECONFIG } to hand to child processes (helm, kubectl, an operator)
 *   await cp.kubectl(['apply', '-f', '-'], { input?, kubeconfig?, timeoutMs? })  → stdout;
 *                      throws KubectlError (code, stdout, stderr) on a non-zero exit
 *   await cp.kubectlResult(args, opts)  → { code, stdout, stderr }, never throws on exit codes
 *   await cp.tokenFor(namespace, serviceAccount, { expirationSeconds? })  → a TokenRequest token
 *   cp.kubeconfigFor(token, name?)  → path of a kubeconfig that authenticates with that token
 *   await cp.restartApiserver({ signal? })  stops kube-apiserver — SIGTERM by default (graceful: it
 *                                 stops listening at once but holds open watches ~15 s before
 *                                 exiting), SIGKILL for a crash — starts it on the same port and
 *                                 data, resolves once /readyz answers 200 again
 *   await cp.stop()               kills both processes, removes the temp directory; idempotent
 *
 * Never leaves a process behind: stop() in afterAll; the reaper (test/support/reaper.ts: exit and
 * signal hooks, disposeAll()) for a worker that ends without it; and a tiny watchdog shell that
 * kills both processes and removes the directory if the test process itself is killed (-9).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@orderflow/kit/testing';
import { track } from './reaper.js';
import { ensureTools, toolBin } from './tools.js';

export interface ControlPlaneOptions {
  /** Label used in the temp directory's name. */
  name?: string;
  /** Extra kube-apiserver flags (`--flag=value`), appended after the defaults. */
  extraApiserverArgs?: string[];
  /** How long etcd + kube-apiserver may take to become ready (2 shared cores: be generous). */
  startTimeoutMs?: number;
}

export interface KubectlOptions {
  /** Written to kubectl's stdin (for `-f -`). */
  input?: string;
  /** Another kubeconfig (e.g. one from kubeconfigFor()); the admin one by default. */
  kubeconfig?: string;
  timeoutMs?: number;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class KubectlError extends Error {
  constructor(
    readonly args: string[],
    readonly code: number,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`kubectl ${args.join(' ')} exited ${code}: ${stderr.trim() || stdout.trim()}`);
    this.name = 'KubectlError';
  }
}

export interface ControlPlane {
  readonly server: string;
  readonly kubeconfigPath: string;
  readonly token: string;
  readonly caPath: string;
  readonly dir: string;
  readonly env: { KUBECONFIG: string };
  kubectl(args: string[], opts?: KubectlOptions): Promise<string>;
  kubectlResult(args: string[], opts?: KubectlOptions): Promise<KubectlResult>;
  tokenFor(namespace: string, serviceAccount: string, opts?: { expirationSeconds?: number }): Promise<string>;
  kubeconfigFor(token: string, name?: string): string;
  restartApiserver(opts?: { signal?: 'SIGTERM' | 'SIGKILL' }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * `kubectl wait` asked again until it succeeds (bounded): kubectl fails at once ("status.conditions
 * accessor error") on an object the server has not yet given any condition, e.g. a CRD applied a
 * moment ago, instead of waiting for it.
 */
export async function kubectlWait(cp: ControlPlane, args: string[], timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await cp.kubectlResult([...args, '--timeout=30s']);
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new KubectlError(args, r.code, r.stdout, r.stderr);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

// ---- process hygiene: whatever happens to the test process, the children die with it ----

/** A shell that outlives us only long enough to clean up after us if we are killed. */
function spawnWatchdog(dir: string, pids: () => number[]): { update(): void; stop(): void } {
  const pidFile = join(dir, 'pids');
  const write = (): void => writeFileSync(pidFile, pids().join(' '));
  write();
  const script =
    `while kill -0 ${process.pid} 2>/dev/null && [ -f "$1/pids" ]; do sleep 1; done; ` +
    `[ -f "$1/pids" ] && kill -9 $(cat "$1/pids") 2>/dev/null; rm -rf "$1"`;
  const w = spawn('sh', ['-c', script, 'watchdog', dir], { detached: true, stdio: 'ignore' });
  w.unref();
  return {
    update: write,
    stop() {
      // Removing the pid file ends the loop; the shell then removes nothing we still need (stop()
      // removes the directory itself right after).
      rmSync(pidFile, { force: true });
    },
  };
}

function httpsGet(url: string, ca: Buffer, token: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers: { authorization: `Bearer ${token}` }, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end();
  });
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface Proc {
  proc: ChildProcess;
  exited: Promise<void>;
}

function startProc(bin: string, args: string[], logPath: string): Proc {
  const log = createWriteStream(logPath, { flags: 'a' });
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.pipe(log, { end: false });
  proc.stderr!.pipe(log, { end: false });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => log.end());
  return { proc, exited };
}

async function stopProc(p: Proc | undefined, signal: NodeJS.Signals, graceMs = 15_000): Promise<void> {
  if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return;
  p.proc.kill(signal);
  const t = setTimeout(() => p.proc.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
}

/** Polls until `fn` is truthy: the process's own readiness fact, never a fixed sleep. */
async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number, died: () => string | undefined): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const dead = died();
    if (dead) throw new Error(`${what}: ${dead}`);
    try {
      if (await fn()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs}ms${last ? ` (${last})` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function kubeconfigYaml(server: string, caPath: string, user: string, token: string): string {
  // JSON is valid YAML, and kubectl, helm and client-node all read it.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'certificate-authority': caPath } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: user, context: { cluster: 'test', user } }],
      'current-context': user,
    },
    null,
    2,
  );
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  ensureTools(['etcd', 'kube-apiserver', 'kubectl']);
  const timeoutMs = opts.startTimeoutMs ?? 120_000;
  const dir = mkdtempSync(join(tmpdir(), `orderflow-k8s-${opts.name ?? 'cp'}-`));
  let etcd: Proc | undefined;
  let apiserver: Proc | undefined;
  let stopped = false;
  const pids = (): number[] => [etcd?.proc.pid, apiserver?.proc.pid].filter((p): p is number => typeof p === 'number');
  const watchdog = spawnWatchdog(dir, pids);
  // The reaper's exit/signal hooks call kill() (synchronous) if stop() never ran.
  const untrack = track({
    name: `control plane ${dir}`,
    dispose: () => stop(),
    kill(): void {
      for (const p of [apiserver, etcd]) if (p && p.proc.exitCode === null) p.proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  });

  async function stop(): Promise<void> {
    if (stopped) return;
    stopped = true;
    await stopProc(apiserver, 'SIGKILL');
    await stopProc(etcd, 'SIGKILL');
    watchdog.stop();
    untrack();
    rmSync(dir, { recursive: true, force: true });
  }

  try {
    // ---- etcd ----
    const [clientPort, peerPort, securePort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${clientPort}`;
    const etcdLog = join(dir, 'etcd.log');
    etcd = startProc(
      toolBin('etcd'),
      [
        '--name=default',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=default=http://127.0.0.1:${peerPort}`,
        // Test data is thrown away: fsync buys nothing and costs seconds on a shared disk.
        '--unsafe-no-fsync',
        '--log-level=warn',
      ],
      etcdLog,
    );
    watchdog.update();
    const etcdDied = (): string | undefined =>
      etcd!.proc.exitCode !== null ? `etcd exited ${etcd!.proc.exitCode}:\n${tail(etcdLog)}` : undefined;
    await until(
      'etcd',
      async () => {
        const r = await fetch(`${etcdUrl}/health`, { signal: AbortSignal.timeout(2000) });
        return r.ok && ((await r.json()) as { health?: string }).health === 'true';
      },
      timeoutMs,
      etcdDied,
    );

    // ---- credentials made by the test ----
    const token = randomBytes(24).toString('hex');
    const tokensPath = join(dir, 'tokens.csv');
    // token,user,uid,"groups": system:masters is bound to cluster-admin by the bootstrap policy.
    writeFileSync(tokensPath, `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });
    const sa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const saKey = join(dir, 'sa.key');
    const saPub = join(dir, 'sa.pub');
    writeFileSync(saKey, sa.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    writeFileSync(saPub, sa.publicKey.export({ type: 'spki', format: 'pem' }));
    const certDir = join(dir, 'certs');
    // kube-apiserver writes a self-signed CA + serving certificate (for 127.0.0.1 and localhost)
    // here at its first start, and reuses them at a restart.
    const caPath = join(certDir, 'apiserver.crt');
    const server = `https://127.0.0.1:${securePort}`;

    const apiserverLog = join(dir, 'kube-apiserver.log');
    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${certDir}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${securePort}`,
      `--token-auth-file=${tokensPath}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      '--api-audiences=https://kubernetes.default.svc.cluster.local',
      '--service-cluster-ip-range=10.96.0.0/24',
      '--allow-privileged=true',
      '--profiling=false',
      '--v=1',
      ...(opts.extraApiserverArgs ?? []),
    ];

    async function startApiserver(): Promise<void> {
      apiserver = startProc(toolBin('kube-apiserver'), apiserverArgs, apiserverLog);
      watchdog.update();
      const p = apiserver;
      await until(
        'kube-apiserver /readyz',
        async () => {
          if (!existsSync(caPath)) return false;
          const r = await httpsGet(`${server}/readyz`, readFileSync(caPath), token);
          return r.status === 200;
        },
        timeoutMs,
        () => (p.proc.exitCode !== null ? `kube-apiserver exited ${p.proc.exitCode}:\n${tail(apiserverLog)}` : etcdDied()),
      );
    }
    await startApiserver();

    const kubeconfigPath = join(dir, 'kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfigYaml(server, caPath, 'admin', token), { mode: 0o600 });

    function kubectlResult(args: string[], o: KubectlOptions = {}): Promise<KubectlResult> {
      return new Promise((resolve, reject) => {
        const p = spawn(toolBin('kubectl'), [`--kubeconfig=${o.kubeconfig ?? kubeconfigPath}`, ...args], {
          stdio: ['pipe', 'pipe', 'pipe'],
          timeout: o.timeoutMs ?? 60_000,
          env: { ...process.env, KUBECONFIG: o.kubeconfig ?? kubeconfigPath },
        });
        let stdout = '';
        let stderr = '';
        p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
        p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
        p.on('error', reject);
        p.on('close', (code, signal) =>
          resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr: signal ? `${stderr}\n(killed by ${signal})` : stderr }),
        );
        p.stdin.end(o.input ?? '');
      });
    }

    let tokens = 0;
    return {
      server,
      kubeconfigPath,
      token,
      caPath,
      dir,
      env: { KUBECONFIG: kubeconfigPath },
      kubectlResult,
      async kubectl(args, o) {
        const r = await kubectlResult(args, o);
        if (r.code !== 0) throw new KubectlError(args, r.code, r.stdout, r.stderr);
        return r.stdout;
      },
      async tokenFor(namespace, serviceAccount, o = {}) {
        const args = ['create', 'token', serviceAccount, '-n', namespace, `--duration=${o.expirationSeconds ?? 3600}s`];
        const r = await kubectlResult(args);
        if (r.code !== 0) throw new KubectlError(args, r.code, r.stdout, r.stderr);
        return r.stdout.trim();
      },
      kubeconfigFor(userToken, name) {
        const path = join(dir, `kubeconfig-${name ?? `user${++tokens}`}`);
        writeFileSync(path, kubeconfigYaml(server, caPath, name ?? 'user', userToken), { mode: 0o600 });
        return path;
      },
      async restartApiserver(o = {}) {
        await stopProc(apiserver, o.signal ?? 'SIGTERM', 60_000);
        await startApiserver();
      },
      stop,
    };
  } catch (err) {
    const logs = `\n--- etcd.log ---\n${tail(join(dir, 'etcd.log'))}\n--- kube-apiserver.log ---\n${tail(join(dir, 'kube-apiserver.log'))}`;
    await stop();
    throw new Error(`control plane did not start: ${(err as Error).message}${logs}`, { cause: err });
  }
}
