/**
 * A private PostgreSQL cluster for one test: initdb + pg_ctl on a spare loopback port, data and
 * socket in a temp dir under /tmp, trust auth, so a test can stop, kill or restart "the database"
 * without touching the machine's shared server. Run as the `postgres` OS user when we are root
 * (postgres refuses to run as root).
 */
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { processAlive as alive } from './child-process.js';
import { freePort } from './nats-server.js';

const run = promisify(execFile);

/** The newest installed server's bin dir (Debian: /usr/lib/postgresql/<major>/bin), or PG_BIN. */
export function postgresBinDir(): string {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!majors.length) throw new Error(`no PostgreSQL server binaries under ${root} (set PG_BIN)`);
  return join(root, majors[0]!, 'bin');
}

export type StopMode = 'smart' | 'fast' | 'immediate';

// Servers not yet cleaned up: stopped (immediately) if the test process exits without cleanup.
const live = new Set<TestPostgresServer>();
let exitHook = false;

export class TestPostgresServer {
  readonly dir: string;
  readonly #bin: string;
  readonly #asRoot: boolean;
  #cleaned = false;

  private constructor(
    readonly port: number,
    readonly database: string,
  ) {
    this.#bin = postgresBinDir();
    this.#asRoot = process.getuid?.() === 0;
    this.dir = mkdtempSync('/tmp/orderflow-pg-');
    if (this.#asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(this.dir, uid, gid);
    }
  }

  /** initdb (trust auth) on a spare port; not started yet. Call cleanup() when done, also on failure. */
  static async create(o: { port?: number; database?: string } = {}): Promise<TestPostgresServer> {
    const server = new TestPostgresServer(o.port ?? (await freePort()), o.database ?? 'postgres');
    live.add(server);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const s of live) s.#cleanupSync();
      });
    }
    try {
      await server.#pg('initdb', ['-D', server.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
    } catch (err) {
      await server.cleanup();
      throw err;
    }
    return server;
  }

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${this.database}`;
  }

  /** The postmaster's pid while it runs (from postmaster.pid), else undefined. */
  get pid(): number | undefined {
    const file = join(this.dataDir, 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
  }

  /** Starts the server and waits until it accepts connections; the database is created on first start. */
  async start(): Promise<void> {
    if (this.#cleaned) throw new Error('postgres test server already cleaned up');
    const opts = `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c fsync=off -c max_connections=100`;
    await this.#pg('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-o', opts, '-w', '-t', '60', 'start']);
    if (this.database !== 'postgres') {
      await this.#pg('psql', [
        '-h',
        this.dir,
        '-p',
        String(this.port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-tAc',
        `SELECT 1 FROM pg_database WHERE datname = '${this.database}'`,
      ]).then(async ({ stdout }) => {
        if (stdout.trim() !== '1') await this.#pg('createdb', ['-h', this.dir, '-p', String(this.port), '-U', 'postgres', this.database]);
      });
    }
  }

  /** pg_ctl stop: `fast` (the default) ends every session with 57P01, `immediate` is a crash-stop. */
  async stop(mode: StopMode = 'fast'): Promise<void> {
    if (!this.pid) return;
    await this.#pg('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  /** kill -9 of the postmaster (its backends then exit on their own); the next start recovers. */
  async kill(): Promise<void> {
    const pid = this.pid;
    if (!pid) return;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    // Wait for the backends to notice and go, so the port and shared memory are free for the
    // next start (which then finds a stale postmaster.pid and does crash recovery).
    while (alive(pid) || this.#processesInDataDir() > 0) await new Promise((r) => setTimeout(r, 50));
  }

  /** Always stops the server (immediately) and removes its directory. Idempotent. */
  async cleanup(): Promise<void> {
    if (this.#cleaned) return;
    try {
      await this.stop('immediate');
    } catch {
      await this.kill().catch(() => undefined);
    }
    this.#cleaned = true;
    live.delete(this);
    rmSync(this.dir, { recursive: true, force: true });
  }

  #cleanupSync(): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    try {
      if (this.pid) this.#pgSync('pg_ctl', ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop']);
    } catch {
      const pid = this.pid;
      if (pid) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone already */
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Server processes of this cluster (each runs with the data directory as its cwd; Linux /proc). */
  #processesInDataDir(): number {
    let n = 0;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (readlinkSync(`/proc/${entry}/cwd`) === this.dataDir) n++;
      } catch {
        /* gone, or not ours to read */
      }
    }
    return n;
  }

  #command(tool: string, args: string[]): [string, string[]] {
    const bin = join(this.#bin, tool);
    return this.#asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  }

  async #pg(tool: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
    const [cmd, argv] = this.#command(tool, args);
    try {
      return await run(cmd, argv, { cwd: '/tmp', encoding: 'utf8' });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      const log = existsSync(join(this.dir, 'server.log')) ? readFileSync(join(this.dir, 'server.log'), 'utf8').slice(-2000) : '';
      throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}${log ? `\n--- server.log ---\n${log}` : ''}`, {
        cause: err,
      });
    }
  }

  #pgSync(tool: string, args: string[]): void {
    const [cmd, argv] = this.#command(tool, args);
    execFileSync(cmd, argv, { cwd: '/tmp', stdio: 'ignore', timeout: 30_000 });
  }
}
