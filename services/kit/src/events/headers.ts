/** Header names on every platform message (shared/README.md, Events). */
export const H = {
  msgId: 'Nats-Msg-Id',
  eventType: 'Event-Type',
  eventVersion: 'Event-Version',
  correlationId: 'X-Correlation-ID',
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
