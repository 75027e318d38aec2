/**
 * vitest globalSetup: the suite's NATS is the current nats-server (built from its Go module by
 * scripts/tools.sh, cached), started here on a spare port with its own store directory, so the
 * machine's Debian 2.9 on 4222 stays untouched and remains the compatibility target. Workers learn
 * the URL from TEST_NATS_URL and the binary from NATS_SERVER_BIN (inherited by the forks).
 * Set TEST_NATS_URL yourself to run the suite against another server.
 * It first builds (or, when cached, links) every Go tool the suite uses that is missing: scripts/tools.sh --missing.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TestNatsServer } from '../../services/kit/src/testing/nats-server.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  // Every Go tool the suite runs (nats-server, helm, the control plane, Jaeger, Prometheus) that
  // .tools/bin lacks, built here before any test starts: on a fresh machine that is the long cold
  // build (cached by version under ~/.cache/orderflow-tools, later checkouts only link). A build
  // left to the first test that needs a tool blocked that worker for minutes and timed out its hook.
  execFileSync('bash', [`${root}scripts/tools.sh`, '--missing'], { stdio: 'inherit' });
  if (process.env.TEST_NATS_URL) return undefined;
  const bin = `${root}.tools/bin/nats-server`;
  process.env.NATS_SERVER_BIN = bin;
  const server = await TestNatsServer.create({ name: 'suite-nats', bin });
  await server.start();
  process.env.TEST_NATS_URL = server.url;
  return async () => {
    await server.dispose();
  };
}
