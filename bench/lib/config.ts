export interface Config {
  quick: boolean;
  natsUrl: string;
  databaseUrl: string;
  /** Which sections to run (all by default); `--only=e2e,profile`. */
  only?: Set<string>;
}

export function parseArgs(argv: readonly string[]): Config {
  const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
  return {
    quick: argv.includes('--quick'),
    natsUrl: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
    databaseUrl: process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    only: only ? new Set(only.split(',')) : undefined,
  };
}
