import { pino, type Logger } from 'pino';
import { trace } from '@opentelemetry/api';
import { currentWorkContext } from './context.js';

export type { Logger } from 'pino';

/**
 * JSON logs, one event a line. Every line written inside a span or a unit of work carries
 * `trace_id`, `span_id` and `correlation_id` so logs, traces and messages can be joined.
 */
export function createLogger(service: string, level = process.env.LOG_LEVEL ?? 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const out: Record<string, string> = {};
        const span = trace.getActiveSpan()?.spanContext();
        if (span && span.traceId !== '00000000000000000000000000000000') {
          out.trace_id = span.traceId;
          out.span_id = span.spanId;
        }
        const work = currentWorkContext();
        if (work) out.correlation_id = work.correlationId;
        return out;
      },
    },
    destination,
  );
}
