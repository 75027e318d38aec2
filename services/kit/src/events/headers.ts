/** Header names on every platform message (shared/README.md, Events). */
export const H = {
  msgId: 'Nats-Msg-Id',
  eventType: 'Event-Type',
  eventVersion: 'Event-Version',
  correlationId: 'X-Correlation-ID',
  // Only on an event published in several versions at once (dual publishing, events/upcast.ts):
  // the logical event id shared by every copy, and the versions published together ("v1,v2").
  eventId: 'Event-Id',
  eventVersions: 'Event-Versions',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  // Added when a message is copied to a dead-letter subject.
  dlqReason: 'Dlq-Reason',
  dlqStream: 'Dlq-Stream',
  dlqStreamSeq: 'Dlq-Stream-Seq',
  dlqConsumer: 'Dlq-Consumer',
  dlqDeliveries: 'Dlq-Deliveries',
  dlqSubject: 'Dlq-Original-Subject',
  dlqTime: 'Dlq-Time',
} as const;
