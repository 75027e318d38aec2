/**
 * Extra nats-server processes for tests that need a broker they can stop, start, kill -9 or
 * pause, on spare loopback ports, each with its own JetStream store directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The current server built by scripts/tools.sh when present (the suite's target), else the machine's.
const toolsBin = fileURLToPath(new URL('../../../../.tools/bin/nats-server', import.meta.url));
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? (existsSync(toolsBin) ? toolsBin : '/usr/sbin/nats-server');

// Test servers are stopped and started again on the port they were given. A port from the
// kernel's ephemeral range (ip_local_port_range) can meanwhile become the source port of any
// outgoing connection on the machine, and parallel test files connect all the time: the restart
// then fails with EADDRINUSE. Below that range a port is only ever taken by an explicit bind.
const EPHEMERAL_RANGE = '/proc/sys/net/ipv4/ip_local_port_range';
/** Lowest port handed out when the ephemeral range starts well above it: clear of the usual fixed ports. */
const PORT_FLOOR = 20_000;
const PORT_ATTEMPTS = 200;
// vitest evaluates this module afresh for each test file of a reused worker process: kept on
// globalThis so "never twice" holds for the whole process, not one file.
const GIVEN = Symbol.for('orderflow.kit.testing.freePort.given');
const given: Set<number> = ((globalThis as Record<symbol, Set<number> | undefined>)[GIVEN] ??= new Set());

/** Low end of the kernel's ephemeral port range; Linux's default when it can't be read. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync(EPHEMERAL_RANGE, 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0 && low <= 65_535) return low;
  } catch {
    // Not Linux, or /proc not mounted.
  }
  return 32_768;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A loopback port nothing listens on, below the ephemeral range (so it stays free while its
 * server is down), never the same twice in this process. Other processes pick at random from
 * the same interval: the bind check and the width of the interval keep them apart.
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  // An ephemeral range that starts low still leaves a wide spread under it (10000 ports, fewer
  // only where they would reach into the privileged ports).
  const from = Math.max(1024, Math.min(PORT_FLOOR, low - 10_000));
  const to = low; // exclusive
  if (to <= from) throw new Error(`freePort: no ports below the ephemeral range (${EPHEMERAL_RANGE} starts at ${low})`);
  for (let i = 0; i < PORT_ATTEMPTS; i++) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (given.has(port)) continue;
    // Taken before the check: a concurrent call must not pass the same port's check after this one closes it.
    given.add(port);
    if (await canBind(port)) return port;
  }
  throw new Error(
    `freePort: no free port in [${from}, ${to}) on 127.0.0.1 after ${PORT_ATTEMPTS} tries (${given.size} taken or given out in this process)`,
  );
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tcpConnect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

export interface NatsServerOptions {
  port?: number;
  storeDir?: string;
  /** Extra arguments, e.g. cluster routes or `-c config`. */
  args?: string[];
  name?: string;
  /** nats-server binary; NATS_SERVER_BIN by default. */
  bin?: string;
}

export class TestNatsServer {
  readonly storeDir: string;
  #proc: ChildProcess | undefined;
  #ownsDir: boolean;

  private constructor(
    readonly port: number,
    storeDir: string | undefined,
    private readonly args: string[],
    readonly name: string,
    readonly bin: string,
  ) {
    this.#ownsDir = !storeDir;
    this.storeDir = storeDir ?? mkdtempSync(join(tmpdir(), 'orderflow-nats-'));
  }

  static async create(o: NatsServerOptions = {}): Promise<TestNatsServer> {
    return new TestNatsServer(o.port ?? (await freePort()), o.storeDir, o.args ?? [], o.name ?? 'test-nats', o.bin ?? NATS_SERVER_BIN);
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  async start(): Promise<void> {
    if (this.#proc) return;
    const proc = spawn(this.bin, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.storeDir, '-n', this.name, ...this.args], {
      stdio: 'ignore',
    });
    this.#proc = proc;
    proc.once('exit', () => {
      if (this.#proc === proc) this.#proc = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await portOpen(this.port))) {
      if (Date.now() > deadline) throw new Error(`nats-server on ${this.port} did not start`);
      if (!this.#proc) throw new Error(`nats-server on ${this.port} exited at start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Graceful (SIGTERM) or kill -9. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.#proc;
    if (!proc) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    if (proc.signalCode === 'SIGSTOP') proc.kill('SIGCONT');
    proc.kill(signal);
    await exited;
    this.#proc = undefined;
  }

  pause(): void {
    this.#proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.#proc?.kill('SIGCONT');
  }

  async dispose(): Promise<void> {
    await this.stop('SIGKILL');
    if (this.#ownsDir) rmSync(this.storeDir, { recursive: true, force: true });
  }
}
