/**
 * Extra nats-server processes for tests that need a broker they can stop, start, kill -9 or
 * pause, on spare loopback ports, each with its own JetStream store directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// The current server built by scripts/tools.sh when present (the suite's target), else the machine's.
const toolsBin = fileURLToPath(new URL('../../../../.tools/bin/nats-server', import.meta.url));
export const NATS_SERVER_BIN = process.env.NATS_SERVER_BIN ?? (existsSync(toolsBin) ? toolsBin : '/usr/sbin/nats-server');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
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
