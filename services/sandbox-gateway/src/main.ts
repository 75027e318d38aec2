import '@orderflow/kit/otel'; // first: tracing must start before pg and http are loaded
import { createLogger, intSetting } from '@orderflow/kit';
import { startGateway } from './gateway.js';

const log = createLogger('sandbox-gateway');
const gw = await startGateway({ log });
const shutdown = (signal: string) => {
  log.info({ signal }, 'sandbox.signal');
  // A hung client connection must not keep the process alive past the orchestrator's grace period.
  setTimeout(() => process.exit(1), intSetting('SHUTDOWN_TIMEOUT_MS', 10_000)).unref();
  gw.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'sandbox.shutdown_failed');
      process.exit(1);
    },
  );
};
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));
