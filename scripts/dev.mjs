#!/usr/bin/env node
// `npm run dev`: the whole platform on one machine, on embedded defaults. Starts a local
// nats-server child when NATS_URL is unset and nothing answers on 4222, runs every service as a
// child process (PGlite data in .data/<service> unless DATABASE_URL is set), seeds a few
// products, and stops everything cleanly on Ctrl-C.
//
// It supervises like a kubelet: a child that dies is started again after a backoff (cockatiel's
// exponential backoff with jitter, the same library the services retry with), with one
// structured `child.crashed` line saying who, how and when it comes back; the other children are
// left alone. A child that stayed up for a while starts its backoff afresh.
import { spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { existsSync, mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import { ExponentialBackoff } from 'cockatiel';
import { createLineFormatter, wantsPretty } from './dev-log-format.mjs';

const root = new URL('..', import.meta.url).pathname;
const env = { ...process.env };
/** @type {Supervised[]} */
const children = [];
let stopping = false;

// First restart after ~0.5 s, doubling (decorrelated jitter) up to 30 s; uptime past
// STABLE_AFTER_MS means the last crash is history and the next one starts from the bottom again.
const RESTART_BACKOFF = { initialDelay: 500, maxDelay: 30_000 };
const STABLE_AFTER_MS = 60_000;
// A Ctrl-C reaches the whole process group: a child may exit of it a moment before our own SIGINT
// handler runs. Looking at an exit only after this grace keeps that from reading as a crash.
const EXIT_GRACE_MS = 100;

// In a terminal every line is shown readable and prefixed by its service; otherwise JSON as is.
const format = wantsPretty() ? createLineFormatter({ colour: Boolean(process.stdout.isTTY) }) : undefined;

function log(msg, extra = {}, level = 'info') {
  const line = JSON.stringify({ level, time: new Date().toISOString(), service: 'dev', msg, ...extra });
  process.stdout.write(format ? format('dev', line) : line + '\n');
}

/** Shows a child's output lines through the formatter, prefixed by the child's name. */
function relay(name, stream, out) {
  createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => out.write(format(name, line)));
}

function reachable(host, port) {
  return new Promise((resolve) => {
    const s = tcpConnect({ host, port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => (s.destroy(), resolve(false)));
  });
}

/** One child process kept running: started again with backoff whenever it exits on its own. */
class Supervised {
  /** @type {import('node:child_process').ChildProcess | undefined} */
  proc;
  restarts = 0;
  #backoff;
  #timer;
  #startedAt = 0;
  #stopped = false;

  constructor(name, cmd, args, extraEnv) {
    this.name = name;
    this.cmd = cmd;
    this.args = args;
    this.env = { ...env, ...extraEnv };
  }

  start() {
    if (this.#stopped) return;
    const out = format ? 'pipe' : 'inherit';
    const proc = spawn(this.cmd, this.args, { cwd: root, env: this.env, stdio: ['ignore', out, out] });
    if (format) {
      relay(this.name, proc.stdout, process.stdout);
      relay(this.name, proc.stderr, process.stderr);
    }
    this.proc = proc;
    this.#startedAt = Date.now();
    proc.on('error', (err) => log('child.spawn_failed', { child: this.name, err: err.message }, 'error'));
    proc.on('exit', (code, signal) => setTimeout(() => this.#exited(proc, code, signal), EXIT_GRACE_MS));
    log('child.started', { child: this.name, pid: proc.pid, restarts: this.restarts });
  }

  #exited(proc, code, signal) {
    if (this.#stopped || stopping || proc !== this.proc) return;
    const uptimeMs = Date.now() - this.#startedAt;
    if (uptimeMs >= STABLE_AFTER_MS) this.#backoff = undefined;
    this.#backoff = this.#backoff ? this.#backoff.next(undefined) : new ExponentialBackoff(RESTART_BACKOFF).next();
    const restartInMs = Math.round(this.#backoff.duration);
    this.restarts++;
    log('child.crashed', { child: this.name, pid: proc.pid, code, signal, uptimeMs, restarts: this.restarts, restartInMs }, 'warn');
    this.#timer = setTimeout(() => this.start(), restartInMs);
  }

  /** SIGTERM, SIGKILL after 30 s; no restart afterwards. Idempotent. */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    const child = this.proc;
    return new Promise((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
    });
  }
}

function start(name, cmd, args, extraEnv = {}) {
  const child = new Supervised(name, cmd, args, extraEnv);
  children.push(child);
  child.start();
  return child;
}

async function waitReady(name, url, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await sleep(200);
  }
  throw new Error(`${name} not ready at ${url} within ${timeoutMs}ms`);
}

async function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  log('stopping');
  // Services first (they drain into NATS and flush their spans), then the NATS and Jaeger children.
  const infra = new Set(['nats-server', 'jaeger']);
  await Promise.all(children.filter((c) => !infra.has(c.name)).map((c) => c.stop()));
  await Promise.all(children.filter((c) => infra.has(c.name)).map((c) => c.stop()));
  log('stopped');
  process.exit(code);
}

process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

if (!env.NATS_URL) {
  if (await reachable('127.0.0.1', 4222)) {
    log('using the NATS server already on 127.0.0.1:4222');
  } else {
    mkdirSync(`${root}.data/nats`, { recursive: true });
    start('nats-server', process.env.NATS_SERVER_BIN ?? 'nats-server', [
      '-js',
      '-a',
      '127.0.0.1',
      '-p',
      '4222',
      '-sd',
      `${root}.data/nats`,
    ]);
    for (let i = 0; i < 50 && !(await reachable('127.0.0.1', 4222)); i++) await sleep(100);
    log('started a local nats-server', { url: 'nats://127.0.0.1:4222' });
  }
}

// DEV_JAEGER=1: a Jaeger child (built by `bash scripts/tools.sh jaeger`, monitoring/jaeger.yaml:
// in-memory, loopback; JAEGER_*_ENDPOINT move its ports) receives every service's traces, and the
// console's trace links open its UI. An OTEL_EXPORTER_OTLP_ENDPOINT of your own is left alone.
let jaegerUi;
if (/^(1|true|yes)$/i.test(env.DEV_JAEGER ?? '')) {
  const bin = env.JAEGER_BIN ?? `${root}.tools/bin/jaeger`;
  const otlp = env.JAEGER_OTLP_HTTP_ENDPOINT ?? '127.0.0.1:4318';
  const [otlpHost, otlpPort] = otlp.split(':');
  if (!existsSync(bin)) {
    log('jaeger not built: run `bash scripts/tools.sh jaeger`; tracing stays off', { bin }, 'warn');
  } else {
    start('jaeger', bin, ['--config', `${root}monitoring/jaeger.yaml`], { JAEGER_LOG_LEVEL: env.JAEGER_LOG_LEVEL ?? 'warn' });
    for (let i = 0; i < 100 && !(await reachable(otlpHost, Number(otlpPort))); i++) await sleep(100);
    jaegerUi = `http://${env.JAEGER_QUERY_HTTP_ENDPOINT ?? '127.0.0.1:16686'}`;
    env.OTEL_EXPORTER_OTLP_ENDPOINT ??= `http://${otlp}`;
    log('started jaeger', { ui: jaegerUi, otlp: env.OTEL_EXPORTER_OTLP_ENDPOINT });
  }
}

const ports = { order: 3001, inventory: 3002, payment: 3003, gateway: 3004, console: 3005 };
// PGlite keeps each service's data in its own directory (one process per data directory).
const dataRoot = env.ORDERFLOW_DATA_ROOT ?? `${root}.data`;
const dataDir = (service) => (env.DATABASE_URL ? {} : { DATA_DIR: `${dataRoot}/${service}` });
start('sandbox-gateway', process.execPath, ['services/sandbox-gateway/dist/main.js'], { PORT: String(ports.gateway) });
start('inventory-service', process.execPath, ['services/inventory-service/dist/main.js'], {
  PORT: String(ports.inventory),
  ...dataDir('inventory-service'),
});
start('payment-service', process.execPath, ['services/payment-service/dist/main.js'], {
  PORT: String(ports.payment),
  ...dataDir('payment-service'),
  PAYMENT_GATEWAY_URL: env.PAYMENT_GATEWAY_URL ?? `http://127.0.0.1:${ports.gateway}`,
});
start('order-service', process.execPath, ['services/order-service/dist/main.js'], {
  PORT: String(ports.order),
  ...dataDir('order-service'),
});

try {
  await Promise.all([
    waitReady('sandbox-gateway', `http://127.0.0.1:${ports.gateway}/health`),
    waitReady('inventory-service', `http://127.0.0.1:${ports.inventory}/ready`),
    waitReady('payment-service', `http://127.0.0.1:${ports.payment}/ready`),
    waitReady('order-service', `http://127.0.0.1:${ports.order}/ready`),
  ]);
  // Seed sku-1..sku-5 (100 each) once, so a first order can confirm; existing stock is kept.
  for (let i = 1; i <= 5; i++) {
    const url = `http://127.0.0.1:${ports.inventory}/products/sku-${i}`;
    if ((await fetch(url)).status === 404) {
      await fetch(url, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ onHand: 100, price: 10 * i }),
      });
    }
  }
  // The ops console reads the services' public endpoints, so it starts once they answer.
  start('console', process.execPath, ['services/console/dist/main.js'], {
    PORT: String(ports.console),
    ORDER_SERVICE_URL: `http://127.0.0.1:${ports.order}`,
    INVENTORY_SERVICE_URL: `http://127.0.0.1:${ports.inventory}`,
    PAYMENT_SERVICE_URL: `http://127.0.0.1:${ports.payment}`,
    ...(jaegerUi && !env.JAEGER_UI_URL ? { JAEGER_UI_URL: jaegerUi } : {}),
  });
  await waitReady('console', `http://127.0.0.1:${ports.console}/health`);
  log('orderflow is up', {
    orders: `http://127.0.0.1:${ports.order}/orders`,
    inventory: `http://127.0.0.1:${ports.inventory}/products/sku-1`,
    gateway: `http://127.0.0.1:${ports.gateway}`,
    console: `http://127.0.0.1:${ports.console}/`,
    ...(jaegerUi ? { jaeger: jaegerUi } : {}),
  });
} catch (err) {
  log('start failed', { err: String(err) }, 'error');
  await shutdown(1);
}
