/**
 * The JSON shapes of the console's /api/*: one declaration for the server that sends them and the
 * page that reads them. Types only (no runtime code; the one import is a type re-export from the
 * kit): it is compiled by both the server build and the web build, and the page imports it with
 * `import type`, which tsc erases.
 */

import type { OrderStats } from '@orderflow/kit';

// ---- Orders (order-service, relayed) -----------------------------------------------------------

export interface OrderHistoryEntry {
  status: string;
  at: string;
  reason?: string;
}

export interface OrderView {
  orderId: string;
  status: string;
  customerId?: string;
  items?: Array<{ productId: string; quantity: number }>;
  total?: number;
  reason?: string;
  correlationId?: string;
  createdAt?: string;
  history: OrderHistoryEntry[];
}

// order-service's own wire type (GET /orders/stats), declared once in the kit.
export type { OrderStats };

export interface SagaFigures {
  outcomes: Record<string, number>;
  cancelReasons: Record<string, number>;
  /** Seconds accepted→confirmed over the window (or since the service started when the window is not full yet). */
  latency: { p50?: number; p99?: number; count: number; windowSeconds: number };
  scrapedAt: string;
}

/** A service's /ready: up (200), not ready (503 with its JSON), or unreachable. */
export interface ServiceReadiness {
  name: string;
  url: string;
  ready: boolean;
  detail?: string;
}

// ---- GET /api/overview -------------------------------------------------------------------------

export interface Overview {
  generatedAt: string;
  namespace: string;
  orders?: OrderStats;
  saga?: SagaFigures;
  services: ServiceReadiness[];
  nats: { connected: boolean; servers: string[] };
  deadLetters: number;
  growingConsumers: string[];
  errors: string[];
}

// ---- GET /api/streams --------------------------------------------------------------------------

export interface ConsumerView {
  name: string;
  stream: string;
  filterSubject?: string;
  numPending: number;
  numAckPending: number;
  numRedelivered: number;
  numWaiting: number;
  deliveredStreamSeq: number;
  ackFloorStreamSeq: number;
  /** When delivery or acks last moved (server's last_active when it has one), ISO; undefined = not seen moving. */
  lastActivity?: string;
  /** num_pending rose across the whole recent window (and is > 0). */
  growing: boolean;
  pendingHistory: number[];
  resource: string;
  kubectl: string;
}

export interface StreamView {
  name: string;
  subjects: string[];
  messages: number;
  bytes: number;
  firstSeq: number;
  lastSeq: number;
  /** Distinct subjects holding messages (num_subjects). */
  subjectCount: number;
  lastTime?: string;
  resource: string;
  kubectl: string;
  consumers: ConsumerView[];
  error?: string;
}

export interface StreamsSnapshot {
  sampledAt?: string;
  streams: StreamView[];
  error?: string;
}

export type StreamsResponse = StreamsSnapshot & { connected: boolean };

// ---- GET /api/dlq, /api/dlq/:seq ---------------------------------------------------------------

export interface DeadLetterView {
  seq: number;
  dlqSubject: string;
  reason: string;
  originalSubject: string;
  stream: string;
  consumer: string;
  streamSeq: number;
  deliveries: number;
  time: string;
  headers: Record<string, string[]>;
  /** Pretty-printed JSON, or the text as it is. */
  payload: string;
  json: boolean;
  orderId?: string;
  correlationId?: string;
  traceId?: string;
  bytes: number;
}

export interface DeadLetterGroup {
  subject: string;
  stream: string;
  consumer: string;
  /** Messages on this subject in the DLQ stream (may exceed the entries listed). */
  count: number;
  entries: DeadLetterView[];
}

export interface DeadLetterGroups {
  total: number;
  groups: DeadLetterGroup[];
  truncated: boolean;
}

export type DlqResponse = DeadLetterGroups & { stream: string };

// ---- GET /api/orders/lookup --------------------------------------------------------------------

export interface TimelineEvent {
  stream: string;
  seq: number;
  subject: string;
  type: string;
  time: string;
  eventId?: string;
  version?: string;
  orderId?: string;
  correlationId?: string;
  traceId?: string;
  traceUrl?: string;
  /** Set for a copy in the dead-letter stream. */
  deadLetter?: { reason: string; consumer: string; dlqSeq: number };
  /** A replay of a dead letter (Replay-Of-Msg-Id). */
  replayOf?: string;
  data: unknown;
}

export type LookupOrder = OrderView & { events: TimelineEvent[] };

export interface Lookup {
  query: string;
  matchedBy: 'orderId' | 'correlationId';
  jaegerUiUrl?: string;
  orders: LookupOrder[];
  /** Events of the correlation id that belong to no known order (e.g. a malformed message). */
  otherEvents: TimelineEvent[];
  truncated: string[];
}
