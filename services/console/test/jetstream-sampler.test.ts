import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { createLogger, type Topology } from '@orderflow/kit';
import { platformTopology } from '../../../test/support/topology.js';
import { deleteNamespaceStreams, testNamespace, testNats } from '@orderflow/kit/testing';
import { JetStreamSampler } from '../src/sources/jetstream.js';

// Real NATS: a consumer nobody reads falls behind while messages keep coming → flagged "growing";
// once it catches up the flag clears and its last activity is recorded.
describe('JetStreamSampler', () => {
  const ns = testNamespace('con');
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let topo: Topology;
  const stream = () => topo.streams[0]!.name;

  beforeAll(async () => {
    nc = await testNats();
    jsm = await jetstreamManager(nc);
    topo = platformTopology({ namespace: ns });
    await jsm.streams.add({ name: stream(), subjects: topo.streams[0]!.subjects });
    await jsm.consumers.add(stream(), { durable_name: 'slow-reader', ack_policy: AckPolicy.Explicit, filter_subject: `${ns}.orders.>` });
  });
  afterAll(async () => {
    await deleteNamespaceStreams(nc, ns);
    await nc.close();
  });

  test('flags a consumer whose pending keeps growing, with resource names; missing streams carry an error', async () => {
    const sampler = new JetStreamSampler(topo, createLogger('test', 'silent'));
    const js = jetstream(nc);
    let t = Date.now();
    for (let i = 0; i < 4; i++) {
      await js.publish(`${ns}.orders.created`, new TextEncoder().encode(`{"n":${i}}`));
      await sampler.sample(jsm, (t += 2000));
    }
    const snap = sampler.snapshot;
    const s = snap.streams.find((x) => x.name === stream())!;
    expect(s).toMatchObject({ messages: 4, subjectCount: 1, resource: `${ns.replace(/_/g, '-')}-orders` });
    expect(s.consumers[0]).toMatchObject({
      name: 'slow-reader',
      numPending: 4,
      growing: true,
      pendingHistory: [1, 2, 3, 4],
      resource: `${ns.replace(/_/g, '-')}-orders-slow-reader`,
    });
    expect(snap.streams.find((x) => x.name !== stream())!.error).toMatch(/not found/i);

    // Read and ack everything: pending drops, the flag clears, last activity is recent.
    const c = await js.consumers.get(stream(), 'slow-reader');
    const batch = await c.fetch({ max_messages: 4, expires: 2000 });
    for await (const m of batch) {
      await m.ackAck();
      if (m.info.pending === 0) break;
    }
    await sampler.sample(jsm, t + 2000);
    const after = sampler.snapshot.streams.find((x) => x.name === stream())!.consumers[0]!;
    expect(after).toMatchObject({ numPending: 0, numAckPending: 0, growing: false });
    // The server's last_active when it reports one (2.9.10 does once delivered), else our sample time.
    expect(Date.now() - Date.parse(after.lastActivity!)).toBeLessThan(60_000);
  });
});
