/**
 * A real Prometheus (built by scripts/tools.sh) for tests: its own data directory, a generated
 * prometheus.yml with static targets, a rules file, the web/API listener on a spare loopback port
 * and exemplar storage on. Facts are read back through its HTTP API.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { freePort, httpReady, launchProcess, type LaunchedProcess } from '@orderflow/kit/testing';
import { builtTool } from '../support/tools.js';

export interface ScrapeJob {
  job: string;
  /** host:port of each target. */
  targets: string[];
  /** Labels every sample of the job gets, as Kubernetes discovery would add them (namespace, pod…). */
  labels?: Record<string, string>;
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface PromAlert {
  labels: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  value: string;
}

export interface PromTarget {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: 'up' | 'down' | 'unknown';
  lastError: string;
}

export interface PromExemplars {
  seriesLabels: Record<string, string>;
  exemplars: Array<{ labels: Record<string, string>; value: string; timestamp: number }>;
}

export class TestPrometheus {
  readonly dir: string;
  #proc: LaunchedProcess | undefined;

  private constructor(readonly port: number) {
    this.dir = mkdtempSync(join(tmpdir(), 'orderflow-prometheus-'));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts Prometheus scraping `jobs` every `intervalSeconds`, evaluating `rules` (a rules file's content) as often. */
  static async start(o: { jobs: ScrapeJob[]; rules?: unknown; intervalSeconds?: number }): Promise<TestPrometheus> {
    const bin = builtTool('prometheus');
    const p = new TestPrometheus(await freePort());
    const every = `${o.intervalSeconds ?? 1}s`;
    const config = {
      global: { scrape_interval: every, scrape_timeout: every, evaluation_interval: every },
      rule_files: o.rules ? ['rules.yaml'] : [],
      scrape_configs: o.jobs.map((j) => ({ job_name: j.job, static_configs: [{ targets: j.targets, labels: j.labels ?? {} }] })),
    };
    writeFileSync(join(p.dir, 'prometheus.yml'), YAML.stringify(config));
    if (o.rules) writeFileSync(join(p.dir, 'rules.yaml'), YAML.stringify(o.rules));
    try {
      p.#proc = await launchProcess({
        name: 'prometheus',
        command: bin,
        args: [
          `--config.file=${join(p.dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(p.dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${p.port}`,
          // OpenMetrics exemplars (the e2e histogram's trace ids) are kept only with this on.
          '--enable-feature=exemplar-storage',
          '--log.level=warn',
        ],
        cwd: p.dir,
        inheritEnv: false,
        env: { PATH: process.env.PATH ?? '' },
        ready: httpReady(`${p.url}/-/ready`),
        readyTimeoutMs: 30_000,
      });
    } catch (err) {
      rmSync(p.dir, { recursive: true, force: true });
      throw err;
    }
    return p;
  }

  async #api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const r = await fetch(`${this.url}/api/v1/${path}?${new URLSearchParams(params)}`);
    const body = (await r.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`prometheus ${path} ${JSON.stringify(params)}: ${body.error ?? r.status}`);
    return body.data;
  }

  /** An instant query now; the samples of a vector result. */
  async query(expr: string): Promise<PromSample[]> {
    const data = await this.#api<{ resultType: string; result: PromSample[] }>('query', { query: expr });
    if (data.resultType !== 'vector') throw new Error(`${expr}: ${data.resultType}, not a vector`);
    return data.result;
  }

  async alerts(): Promise<PromAlert[]> {
    return (await this.#api<{ alerts: PromAlert[] }>('alerts')).alerts;
  }

  async targets(): Promise<PromTarget[]> {
    return (await this.#api<{ activeTargets: PromTarget[] }>('targets')).activeTargets;
  }

  /** Exemplars of the series `expr` selects, over the last `seconds`. */
  async exemplars(expr: string, seconds = 3600): Promise<PromExemplars[]> {
    const now = Date.now() / 1000;
    return this.#api<PromExemplars[]>('query_exemplars', { query: expr, start: String(now - seconds), end: String(now + 60) });
  }

  /** What Prometheus said (stdout and stderr), the tail. */
  output(): string {
    return this.#proc?.output() ?? '';
  }

  /** Stops Prometheus and removes its data. Idempotent. */
  async stop(): Promise<void> {
    await this.#proc?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
