/** The reconcile core against the real nats-server on this machine (never mocked). */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  applyTopology,
  deleteConsumer,
  deleteStream,
  problems,
  readConsumer,
  readStream,
  reconcileConsumer,
  reconcileStream,
  Names,
} from '@orderflow/kit';
import { platformTopology } from '../../../../test/support/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats } from '@orderflow/kit/testing';
import { withoutCalls } from './support.js';

let nc: NatsConnection;
let jsm: JetStreamManager;
const ns = testNamespace('rec');
const names = new Names(ns);

beforeAll(async () => {
  nc = await testNats();
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await deleteNamespaceStreams(nc, ns);
  await nc.close();
});

describe('applyTopology', () => {
  it('creates the whole platform topology, then a second apply makes no create/update call', async () => {
    const topo = platformTopology({ namespace: ns });
    const first = await applyTopology(jsm, topo);
    expect(problems(first)).toEqual([]);
    expect(first.map((r) => r.outcome)).toEqual(Array(10).fill('created'));
    const c = await readConsumer(jsm, names.stream('ORDERS'), 'inventory-orders');
    expect(c?.config).toMatchObject({ max_deliver: 5, filter_subject: names.subject('orders.>') });

    const writes = [
      vi.spyOn(jsm.streams, 'add'),
      vi.spyOn(jsm.streams, 'update'),
      vi.spyOn(jsm.consumers, 'add'),
      vi.spyOn(jsm.consumers, 'update'),
    ];
    await withoutCalls(writes, async () => {
      const second = await applyTopology(jsm, topo);
      expect(second.map((r) => r.outcome)).toEqual(Array(10).fill('unchanged'));
    });
  });
});

describe('reconcileStream / reconcileConsumer', () => {
  const name = names.stream('REC');
  const base = { name, subjects: [names.subject('rec.>')], maxAge: '1h' };
  const cons = { streamName: name, durableName: 'worker', filterSubject: names.subject('rec.>'), maxDeliver: 3, ackWait: '5s' };

  it('create, then subjects/maxAge/maxDeliver changes update in place', async () => {
    expect((await reconcileStream(jsm, base)).outcome).toBe('created');
    expect((await reconcileConsumer(jsm, cons)).outcome).toBe('created');

    const s = await reconcileStream(jsm, { ...base, subjects: [...base.subjects, names.subject('rec2.>')], maxAge: '2h' });
    expect(s).toMatchObject({ action: 'update', outcome: 'updated' });
    expect(s.reasons.join()).toContain('max_age: 1h → 2h');
    expect((await readStream(jsm, name))?.config).toMatchObject({
      max_age: 2 * 3600e9,
      subjects: [...base.subjects, names.subject('rec2.>')],
    });

    const c = await reconcileConsumer(jsm, { ...cons, maxDeliver: 7 });
    expect(c).toMatchObject({ action: 'update', outcome: 'updated' });
    expect((await readConsumer(jsm, name, 'worker'))?.config.max_deliver).toBe(7);
  });

  it('a manual edit or deletion is repaired by the next reconcile (resync)', async () => {
    const desired = { ...base, maxAge: '2h', subjects: [...base.subjects, names.subject('rec2.>')] };
    const info = await jsm.streams.info(name);
    await jsm.streams.update(name, { ...info.config, max_age: 3 * 3600e9 });
    expect(await reconcileStream(jsm, desired)).toMatchObject({ outcome: 'updated', reasons: ['max_age: 3h → 2h'] });

    await jsm.consumers.delete(name, 'worker');
    expect((await reconcileConsumer(jsm, { ...cons, maxDeliver: 7 })).outcome).toBe('created');

    await jsm.streams.delete(name);
    expect((await reconcileStream(jsm, desired)).outcome).toBe('created');
    expect((await reconcileConsumer(jsm, { ...cons, maxDeliver: 7 })).outcome).toBe('created');
  });

  it('an immutable change is refused with a reason and the stream is left as it is', async () => {
    const before = await jsm.streams.info(name);
    const r = await reconcileStream(jsm, { ...base, storage: 'memory' });
    expect(r).toMatchObject({ action: 'recreate-needed', outcome: 'refused' });
    expect(r.reasons[0]).toMatch(/storage: "file" → "memory" cannot be changed in place/);
    const after = await jsm.streams.info(name);
    expect(after.config).toEqual(before.config);
    expect(after.created).toBe(before.created);
  });

  it('an invalid spec is refused without any JetStream call', async () => {
    const calls = [
      vi.spyOn(jsm.streams, 'info'),
      vi.spyOn(jsm.streams, 'add'),
      vi.spyOn(jsm.streams, 'update'),
      vi.spyOn(jsm.consumers, 'info'),
      vi.spyOn(jsm.consumers, 'add'),
    ];
    await withoutCalls(calls, async () => {
      const s = await reconcileStream(jsm, { ...base, maxAge: 'a while' });
      expect(s).toMatchObject({ action: 'refuse', outcome: 'refused' });
      expect(s.reasons[0]).toContain('spec.maxAge invalid duration "a while"');
      const c = await reconcileConsumer(jsm, { ...cons, maxDeliver: 2, backoff: ['1s', '2s', '3s'] });
      expect(c).toMatchObject({ action: 'refuse', outcome: 'refused' });
    });
  });

  it('a server-side rejection is reported as failed, with the server reason', async () => {
    // A filter outside the stream's subjects is refused by 2.9 but accepted since 2.10, so the
    // rejection both lines share is used: R3 on a server that is not clustered.
    const r = await reconcileStream(jsm, { ...base, name: names.stream('R3'), subjects: [names.subject('r3.>')], replicas: 3 });
    expect(r.outcome).toBe('failed');
    expect(r.error).toContain('replicas > 1 not supported');
    const missing = await reconcileConsumer(jsm, { ...cons, streamName: names.stream('NOPE') });
    expect(missing).toMatchObject({ outcome: 'failed', error: `stream ${names.stream('NOPE')} does not exist` });
  });

  it('delete removes, and deleting again is not an error', async () => {
    expect(await deleteConsumer(jsm, name, 'worker')).toBe(true);
    expect(await deleteConsumer(jsm, name, 'worker')).toBe(false);
    expect(await deleteStream(jsm, name)).toBe(true);
    expect(await deleteStream(jsm, name)).toBe(false);
    expect(await readStream(jsm, name)).toBeUndefined();
  });
});
