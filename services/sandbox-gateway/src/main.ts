import '@orderflow/kit/otel'; // first: tracing must start before pg and http are loaded
import { createLogger, exitOnSignals, intSetting } from '@orderflow/kit';
import { startGateway } from './gateway.js';

const log = createLogger('sandbox-gateway');
const gw = await startGateway({ log });
// A hung client connection must not keep the process alive past the orchestrator's grace period.
exitOnSignals(() => gw.stop(), { log, timeoutMs: intSetting('SHUTDOWN_TIMEOUT_MS', 10_000) });
