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

/** What preparing a message needs besides its span: read once, and pure (see decode()). */
export interface Decoded {
  headers: HeaderLookup | undefined;
  deliveryCount: number;
  outcome:
    | { kind: 'work'; event: IncomingEvent; handler: Handler }
    /** No handler for this type, or the twin of a version the handler takes: ack it. */
    | { kind: 'ignore'; reason?: string }
    | { kind: 'poison'; reason: string };
}

export interface PrepareOptions {
  names: Names;
  durable: string;
  handlers: ReadonlyMap<string, DeclaredHandler>;
  accepts?: ReadonlySet<string>;
}

/**
 * Reads a message's headers, decodes and validates its event and picks its handler. Pure (no
 * span, no clock), so the runtime can do it as the message arrives, while the batch before it
 * waits on the database, instead of in front of its own batch. Throws only what is not the
 * message's fault (a PoisonMessageError becomes a poison outcome).
 */
export function decode(msg: JsMsg, o: PrepareOptions): Decoded {
  const deliveryCount = msg.info.deliveryCount;
  const headers = headerView(msg.headers);
  try {
    const event = decodeEvent(o.names, msg.subject, msg.data, headers, o.accepts);
    const declared = o.handlers.get(event.type);
    if (!declared) return { headers, deliveryCount, outcome: { kind: 'ignore' } };
    // Versions: show the handler its declared version, ignore a dual-published copy whose twin
    // it handles, upcast old history; anything else is poison (events/upcast.ts).
    const decision = adaptToVersion(event, declared.version);
    if (decision.kind === 'twin') return { headers, deliveryCount, outcome: { kind: 'ignore', reason: decision.reason } };
    return { headers, deliveryCount, outcome: { kind: 'work', event: decision.event, handler: declared.handle } };
  } catch (err) {
    if (err instanceof PoisonMessageError) return { headers, deliveryCount, outcome: { kind: 'poison', reason: err.message } };
    throw err;
  }
}

/**
 * Opens a message's CONSUMER span over what decode() read (decoding now if that was not done).
 * Poison, unhandled types and ignored twins come back as such (the runtime settles them); what
 * needs a handler comes back as Work.
 */
export function prepare(msg: JsMsg, o: PrepareOptions, decoded: Decoded = decode(msg, o)): Prepared {
  const { headers, deliveryCount, outcome } = decoded;
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
  const ctx = trace.setSpan(parent ?? context.active(), span);
  const correlationId = headers?.get('X-Correlation-ID') || 'unknown';
  const started = performance.now();
  if (deliveryCount > 1) span.addEvent('redelivery', { 'messaging.nats.delivery_count': deliveryCount });
  if (outcome.kind !== 'work') {
    const traced: Traced = { msg, span, ctx, correlationId, started, deliveryCount };
    return outcome.kind === 'ignore'
      ? { kind: 'ignore', traced, reason: outcome.reason }
      : { kind: 'poison', traced, reason: outcome.reason };
  }
  // One object, spelled out: building Traced and then spreading it into Work was ~3 % of a
  // no-op consumer's CPU per message.
  const work: Work = { msg, span, ctx, correlationId, started, deliveryCount, event: outcome.event, handler: outcome.handler };
  return { kind: 'work', work };
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
