import { serviceNode, type ServiceNode } from './service-node.js';

export interface Config {
  quick: boolean;
  natsUrl: string;
  databaseUrl: string;
  /** Which sections to run (all by default); `--only=e2e,profile`. */
  only?: Set<string>;
  /** Which e2e ladders (all by default): `--ladders=current,replicas,machine`, e.g. one ladder for an A/B. */
  ladders?: Set<string>;
  /** The e2e ladders' rates instead of the standard ones (empty: those): `--rates=50,100`, an A/B at a few steps. */
  rates: number[];
  /** Settings added to the platform's services (`BENCH_SERVICE_ENV`, a JSON object): an A/B of a setting. */
  serviceEnv: Record<string, string>;
  /** The Node binary the platform's processes (and the HTTP baseline) run on. */
  node: ServiceNode;
  /**
   * `--ab=<git ref>`: the http section also runs order-service as built at that ref (a worktree),
   * its trials interleaved with this checkout's, so a change's worth is measured in the same
   * minutes as its baseline (this VM's speed drifts by half within an hour).
   */
  abRef?: string;
  /** Interleaved trials of the http section (`--trials=N`; 3, 1 with `--quick`). */
  httpTrials?: number;
}

export function parseArgs(argv: readonly string[]): Config {
  // `--flag=value`; an empty value counts as absent.
  const value = (flag: string) => argv.find((a) => a.startsWith(`--${flag}=`))?.slice(flag.length + 3) || undefined;
  const list = (flag: string) => {
    const v = value(flag);
    return v ? new Set(v.split(',')) : undefined;
  };
  return {
    quick: argv.includes('--quick'),
    natsUrl: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    databaseUrl: process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    only: list('only'),
    ladders: list('ladders'),
    rates: [...(list('rates') ?? [])].map(Number).filter((n) => n > 0),
    serviceEnv: process.env.BENCH_SERVICE_ENV ? (JSON.parse(process.env.BENCH_SERVICE_ENV) as Record<string, string>) : {},
    node: serviceNode(),
    abRef: value('ab'),
    httpTrials: Number(value('trials')) || undefined,
  };
}
