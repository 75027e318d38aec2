import { describe, expect, it } from 'vitest';
import type { ConsumerConfig, StreamConfig } from '@nats-io/jetstream';
import {
  planConsumer,
  planStream,
  subjectMatches,
  toConsumerConfig,
  toStreamConfig,
  deadLetterStreamSpec,
  type ConsumerSpec,
  type StreamSpec,
} from '@orderflow/kit';

const stream: StreamSpec = {
  name: 'ORDERS',
  subjects: ['orders.>'],
  storage: 'file',
  replicas: 1,
  retention: 'limits',
  maxAge: '168h',
  duplicateWindow: '2m',
  discard: 'old',
};

const consumer: ConsumerSpec = {
  streamName: 'ORDERS',
  durableName: 'inventory-orders',
  filterSubject: 'orders.>',
  ackPolicy: 'explicit',
  ackWait: '30s',
  maxDeliver: 5,
  backoff: ['1s', '5s'],
  maxAckPending: 1000,
  deadLetter: { subject: 'dlq.ORDERS.inventory-orders' },
};

/** What the server reports for a config we sent, including fields we don't manage. */
function serverStream(spec: StreamSpec): { config: StreamConfig } {
  return { config: { ...toStreamConfig(spec), max_consumers: -1, max_msgs_per_subject: -1, max_msg_size: -1, sealed: false, deny_delete: false, deny_purge: false, allow_rollup_hdrs: false, allow_direct: false, mirror_direct: false } as StreamConfig };
}
function serverConsumer(spec: ConsumerSpec): { config: ConsumerConfig } {
  const c = toConsumerConfig(spec);
  // The server replaces ack_wait with backoff[0] (seen on 2.9.10).
  return { config: { ...c, name: c.durable_name, max_waiting: 512, ack_wait: c.backoff?.length ? c.backoff[0] : c.ack_wait } as ConsumerConfig };
}

describe('toStreamConfig / toConsumerConfig', () => {
  it('converts durations to nanoseconds and fills server defaults', () => {
    expect(toStreamConfig({ name: 'S', subjects: ['s.>'] })).toEqual({
      name: 'S', subjects: ['s.>'], storage: 'file', retention: 'limits', num_replicas: 1,
      max_age: 0, max_bytes: -1, max_msgs: -1, duplicate_window: 120e9, discard: 'old',
    });
    expect(toStreamConfig(stream).max_age).toBe(168 * 3600e9);
    // The default duplicate window is capped by a shorter max_age, as the server does.
    expect(toStreamConfig({ name: 'S', subjects: ['s'], maxAge: '30s' }).duplicate_window).toBe(30e9);
    expect(toConsumerConfig(consumer)).toMatchObject({ durable_name: 'inventory-orders', ack_wait: 30e9, backoff: [1e9, 5e9], max_deliver: 5, filter_subject: 'orders.>' });
  });
});

describe('planStream', () => {
  it('create when absent, noop when equal', () => {
    expect(planStream(stream, undefined)).toMatchObject({ action: 'create', reasons: ['stream does not exist'] });
    expect(planStream(stream, serverStream(stream))).toMatchObject({ action: 'noop', reasons: [], changes: [] });
  });

  it('noop when subjects differ only in order', () => {
    const two = { ...stream, subjects: ['a.>', 'b.>'] };
    expect(planStream(two, serverStream({ ...two, subjects: ['b.>', 'a.>'] })).action).toBe('noop');
  });

  const mutable: [string, Partial<StreamSpec>, string][] = [
    ['subjects', { subjects: ['orders.>', 'legacy.>'] }, 'subjects'],
    ['maxAge', { maxAge: '24h' }, 'max_age: 168h → 24h'],
    ['maxBytes', { maxBytes: 1024 }, 'max_bytes: -1 → 1024'],
    ['maxMsgs', { maxMsgs: 10 }, 'max_msgs: -1 → 10'],
    ['duplicateWindow', { duplicateWindow: '1m' }, 'duplicate_window: 2m → 1m'],
    ['discard', { discard: 'new' }, 'discard: "old" → "new"'],
    ['replicas', { replicas: 3 }, 'num_replicas: 1 → 3'],
    ['removing maxAge restores unlimited', { maxAge: undefined }, 'max_age: 168h → 0 (unlimited)'],
  ];
  it.each(mutable)('%s change → update', (_name, change, reason) => {
    const plan = planStream({ ...stream, ...change }, serverStream(stream));
    expect(plan.action).toBe('update');
    expect(plan.reasons.join('\n')).toContain(reason);
    expect(plan.changes.every((c) => !c.immutable)).toBe(true);
  });

  const immutable: [string, Partial<StreamSpec>, string][] = [
    ['storage', { storage: 'memory' }, 'storage: "file" → "memory" cannot be changed in place'],
    ['retention', { retention: 'workqueue' }, 'retention: "limits" → "workqueue" cannot be changed in place'],
  ];
  it.each(immutable)('%s change → recreate-needed with a reason', (_name, change, reason) => {
    const plan = planStream({ ...stream, ...change, maxAge: '1h' }, serverStream(stream));
    expect(plan.action).toBe('recreate-needed');
    // Only the immutable change is named: nothing of this plan gets applied.
    expect(plan.reasons).toHaveLength(1);
    expect(plan.reasons[0]).toContain(reason);
    expect(plan.changes.map((c) => c.field)).toContain('max_age');
  });

  const invalid: [string, Partial<StreamSpec>, string][] = [
    ['name with a dot', { name: 'OR.DERS' }, 'spec.name'],
    ['no subjects', { subjects: [] }, 'spec.subjects must list at least one subject'],
    ['bad subject', { subjects: ['orders.>.x'] }, 'spec.subjects[0]'],
    ['storage enum', { storage: 'disk' as 'file' }, 'spec.storage must be one of file, memory'],
    ['retention enum', { retention: 'forever' as 'limits' }, 'spec.retention'],
    ['replicas range', { replicas: 7 }, 'spec.replicas must be an integer in 1..5'],
    ['duration', { maxAge: '7 days' }, 'spec.maxAge invalid duration "7 days"'],
    ['dup window > maxAge', { maxAge: '1m', duplicateWindow: '2m' }, 'spec.duplicateWindow may not exceed maxAge'],
    ['maxBytes', { maxBytes: -5 }, 'spec.maxBytes'],
  ];
  it.each(invalid)('invalid spec (%s) → refuse with reason, no config', (_name, change, reason) => {
    for (const actual of [undefined, serverStream(stream)]) {
      const plan = planStream({ ...stream, ...change }, actual);
      expect(plan.action).toBe('refuse');
      expect(plan.reasons.join('\n')).toContain(reason);
      expect(plan.config).toBeUndefined();
    }
  });
});

describe('planConsumer', () => {
  it('create when absent, noop when equal (ack_wait replaced by backoff[0] on the server)', () => {
    expect(planConsumer(consumer, undefined).action).toBe('create');
    expect(planConsumer(consumer, serverConsumer(consumer))).toMatchObject({ action: 'noop', reasons: [] });
    const noBackoff = { ...consumer, backoff: undefined };
    expect(planConsumer(noBackoff, serverConsumer(noBackoff)).action).toBe('noop');
  });

  const mutable: [string, Partial<ConsumerSpec>, string][] = [
    ['maxDeliver', { maxDeliver: 8 }, 'max_deliver: 5 → 8'],
    ['backoff', { backoff: ['2s', '10s'] }, 'backoff: [1s, 5s] → [2s, 10s]'],
    ['backoff removed', { backoff: [] }, 'backoff: [1s, 5s] → []'],
    ['ackWait without backoff', { backoff: [], ackWait: '10s' }, 'ack_wait: 1s → 10s'],
    ['maxAckPending', { maxAckPending: 50 }, 'max_ack_pending: 1000 → 50'],
    ['filterSubject', { filterSubject: 'orders.created' }, 'filter_subject: "orders.>" → "orders.created"'],
    ['filterSubject removed', { filterSubject: undefined }, 'filter_subject: "orders.>" → ""'],
  ];
  it.each(mutable)('%s change → update', (_name, change, reason) => {
    const plan = planConsumer({ ...consumer, ...change }, serverConsumer(consumer));
    expect(plan.action).toBe('update');
    expect(plan.reasons.join('\n')).toContain(reason);
  });

  it('ackWait change is invisible while a backoff list decides the wait', () => {
    expect(planConsumer({ ...consumer, ackWait: '10s' }, serverConsumer(consumer)).action).toBe('noop');
  });

  it('deadLetter is not a JetStream field: changing it is a noop for the planner', () => {
    expect(planConsumer({ ...consumer, deadLetter: { subject: 'dlq.x.y' } }, serverConsumer(consumer)).action).toBe('noop');
  });

  it('ackPolicy change → recreate-needed', () => {
    const plan = planConsumer({ ...consumer, ackPolicy: 'all' }, serverConsumer(consumer));
    expect(plan.action).toBe('recreate-needed');
    expect(plan.reasons[0]).toContain('ack_policy: "explicit" → "all" cannot be changed in place');
  });

  it('existing push consumer → recreate-needed', () => {
    const actual = serverConsumer(consumer);
    actual.config.deliver_subject = '_INBOX.x';
    expect(planConsumer(consumer, actual)).toMatchObject({ action: 'recreate-needed' });
  });

  const invalid: [string, Partial<ConsumerSpec>, string][] = [
    ['backoff longer than maxDeliver', { maxDeliver: 1 }, 'spec.backoff has 2 entries but maxDeliver is 1'],
    ['durable with a dot', { durableName: 'a.b' }, 'spec.durableName'],
    ['ackPolicy enum', { ackPolicy: 'sometimes' as 'all' }, 'spec.ackPolicy'],
    ['bad ackWait', { ackWait: '30' }, 'spec.ackWait invalid duration'],
    ['bad backoff entry', { backoff: ['1s', 'soon'] }, 'spec.backoff[1]'],
    ['maxDeliver 0', { maxDeliver: 0 }, 'spec.maxDeliver'],
    ['wildcard dead letter subject', { deadLetter: { subject: 'dlq.>' } }, 'spec.deadLetter.subject'],
    ['dead letters without acks', { ackPolicy: 'none', backoff: [] }, 'spec.deadLetter needs acknowledgements'],
  ];
  it.each(invalid)('invalid spec (%s) → refuse', (_name, change, reason) => {
    const plan = planConsumer({ ...consumer, ...change }, serverConsumer(consumer));
    expect(plan.action).toBe('refuse');
    expect(plan.reasons.join('\n')).toContain(reason);
    expect(plan.config).toBeUndefined();
  });
});

describe('helpers', () => {
  it('subjectMatches', () => {
    expect(subjectMatches('dlq.>', 'dlq.ORDERS.c')).toBe(true);
    expect(subjectMatches('dlq.>', 'dlq')).toBe(false);
    expect(subjectMatches('dlq.*.c', 'dlq.ORDERS.c')).toBe(true);
    expect(subjectMatches('dlq.*', 'dlq.ORDERS.c')).toBe(false);
    expect(subjectMatches('orders.created', 'orders.created')).toBe(true);
  });
  it('deadLetterStreamSpec follows Names', () => {
    expect(deadLetterStreamSpec('t_ab.dlq.T_AB_ORDERS.c')).toMatchObject({ name: 'T_AB_DLQ', subjects: ['t_ab.dlq.>'] });
    expect(deadLetterStreamSpec('dlq.ORDERS.c')).toMatchObject({ name: 'DLQ', subjects: ['dlq.>'] });
    expect(deadLetterStreamSpec('errors.x')).toHaveProperty('error');
  });
});
