import type { JsMsg } from '@nats-io/jetstream';
import { context, INVALID_SPAN_CONTEXT, trace, type Context, type Span } from '@opentelemetry/api';
import { withWorkContext } from '../context.js';
import { decodeEvent, PoisonMessageError, type IncomingEvent } from '../events/envelope.js';
import { headerView, type HeaderLookup } from '../events/header-view.js';
import { adaptToVersion } from '../events/upcast.js';
import type { Names } from '../topology.js';
import { extractTraceContext, SpanKind, tracer, tracingActive } from '../tracing/propagation.js';
import type { Handler } from './contract.js';
import type { DeclaredHandler } from './handlers.js';

/** What a message's span is while nothing traces: every method a no-op, so one can be shared. */
const UNTRACED_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** One delivery with its open CONSUMER span. */
export interface Traced {
  msg: JsMsg;
  span: Span;
  ctx: Context;
  correlationId: string;
  started: number;
  deliveryCount: number;
}

/** A decoded message waiting for its handler. */
export interface Work extends Traced {
  event: IncomingEvent;
  handler: Handler;
}

export type Prepared =
  | { kind: 'work'; work: Work }
  /** No handler for this type, or the twin of a version the handler takes: ack it. */
  | { kind: 'ignore'; traced: Traced; reason?: string }
  | { kind: 'poison'; traced: Traced; reason: string };

/**
 * Decodes a message and opens its CONSUMER span. Poison, unhandled types and ignored twins come
 * back as such (the runtime settles them); what needs a handler comes back as Work. Pure apart
 * from the span.
 */
export function prepare(
  msg: JsMsg,
  o: { names: Names; durable: string; handlers: ReadonlyMap<string, DeclaredHandler>; accepts?: ReadonlySet<string> },
): Prepared {
  const deliveryCount = msg.info.deliveryCount;
  const headers = headerView(msg.headers);
  // Without a tracer provider or propagator every span is a no-op and extract does nothing:
  // skip building them per message (one shared non-recording span stands in).
  const parent = tracingActive() ? extractTraceContext(traceCarrier(headers)) : undefined;
  const span = parent
    ? tracer().startSpan(
        `${msg.subject} process`,
        {
          kind: SpanKind.CONSUMER,
          attributes: {
            'messaging.system': 'nats',
            'messaging.operation.type': 'process',
            'messaging.destination.name': msg.subject,
            'messaging.consumer.group.name': o.durable,
            'messaging.message.id': headers?.get('Nats-Msg-Id') ?? '',
            'messaging.nats.delivery_count': deliveryCount,
            'messaging.nats.stream_sequence': msg.seq,
          },
        },
        parent,
      )
    : UNTRACED_SPAN;
  const traced: Traced = {
    msg,
    span,
    ctx: trace.setSpan(parent ?? context.active(), span),
    correlationId: headers?.get('X-Correlation-ID') || 'unknown',
    started: performance.now(),
    deliveryCount,
  };
  if (deliveryCount > 1) span.addEvent('redelivery', { 'messaging.nats.delivery_count': deliveryCount });
  try {
    const event = decodeEvent(o.names, msg.subject, msg.data, headers, o.accepts);
    const declared = o.handlers.get(event.type);
    if (!declared) return { kind: 'ignore', traced };
    // Versions: show the handler its declared version, ignore a dual-published copy whose twin
    // it handles, upcast old history; anything else is poison (events/upcast.ts).
    const decision = adaptToVersion(event, declared.version);
    if (decision.kind === 'twin') return { kind: 'ignore', traced, reason: decision.reason };
    return { kind: 'work', work: { ...traced, event: decision.event, handler: declared.handle } };
  } catch (err) {
    if (err instanceof PoisonMessageError) return { kind: 'poison', traced, reason: err.message };
    throw err;
  }
}

/** Just the W3C trace headers, as the plain record extractTraceContext also takes. */
function traceCarrier(h: HeaderLookup | undefined): Record<string, string> {
  const carrier: Record<string, string> = {};
  const parent = h?.get('traceparent');
  if (parent) carrier.traceparent = parent;
  const state = h?.get('tracestate');
  if (state) carrier.tracestate = state;
  return carrier;
}

/** Runs fn inside a message's span and work context (logs carry its trace and correlation ids). */
export function within<T>(t: Pick<Traced, 'ctx' | 'correlationId'>, fn: () => Promise<T>): Promise<T> {
  return context.with(t.ctx, () => withWorkContext({ correlationId: t.correlationId }, fn));
}
