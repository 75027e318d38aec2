/**
 * NatsConnection resources and NATS accounts, on a REAL control plane with a nats-server of this
 * file's own in operator mode (operator, account and user JWTs signed by @nats-io/jwt, memory
 * resolver): the operator's default connection is a user of account OTHER; NatsConnections reach
 * account ORDERS with a `.creds` file from a Secret.
 *
 * - creds: a Stream naming a NatsConnection whose Secret holds a user's creds file is Ready and
 *   its stream lives in ORDERS, not in the default connection's account; creds whose seed is not
 *   the user's → ConnectionUnavailable naming the server's refusal;
 * - dead letters: a MAX_DELIVERIES advisory of a Consumer naming the NatsConnection is captured in
 *   ORDERS (the capture runs on that connection) and its dead letter copied to the DLQ there;
 * - that capture removed: its durable when no Consumer with deadLetter names the connection any
 *   more (in OTHER, beside the default connection's capture, which stays), its durable and the
 *   stream it made when the NatsConnection is deleted (account CAPTURE); with the server down the
 *   deletion goes through and a Warning event names what was left;
 * - a Stream deleted while its NatsConnection (or that connection's Secret) is gone for good —
 *   nothing left could ever reach its account — lets go (Warning event Kept naming why) and its
 *   stream stays in JetStream; one whose connection is only away (server down) stays Terminating
 *   until it is back, then deletes its stream there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { readStream } from '@orderflow/kit';
import { freePort, TestNatsServer, waitFor } from '@orderflow/kit/testing';
import type { ControlPlane } from '../../test/support/control-plane.js';
import { CAPTURE_CREATOR, DEFAULT_ADVISORY_STREAM } from '../src/advisory-stream.js';
import { apiStatus } from '../src/kube-api.js';
import { API_VERSION, FINALIZER, type Kind } from '../src/resources.js';
import { operatorTestFixture } from './support/fixture.js';
import { cr, deadLetterConsumer, kubectlApply, ready, readyForGeneration, waitForObject, type Obj } from './support/kube.js';
import { eventsFor, startTestOperator, type TestOperator } from './support/operator.js';
import { operatorMode, type OperatorMode } from './support/operator-mode.js';

const fx = operatorTestFixture('opacct', 'accounts');
const { names, K8S_NS, log, lines, get } = fx;
const dir = mkdtempSync(join(tmpdir(), 'operator-accounts-'));

let cp: ControlPlane;
let kc: KubeConfig;
let accounts: OperatorMode;
let server: TestNatsServer;
/** A user of ORDERS and one of OTHER (the operator's default connection). */
let orders: NatsConnection;
let other: NatsConnection;
let t: TestOperator | undefined;

type AccountName = 'ORDERS' | 'OTHER' | 'CAPTURE';
const enc = new TextEncoder();
const userOf = async (account: AccountName, url = server.url): Promise<NatsConnection> =>
  connect({ servers: url, authenticator: credsAuthenticator(enc.encode(await accounts.accounts[account]!.creds())) });

/** A nats-server of this file's own in operator mode, trusting this file's accounts (not started). */
const operatorModeServer = (name: string, monitorPort?: number): Promise<TestNatsServer> =>
  TestNatsServer.create({ name, args: ['-c', join(dir, 'operator-mode.conf'), ...(monitorPort ? ['-m', String(monitorPort)] : [])] });

const exists = async (nc: NatsConnection, stream: string): Promise<boolean> =>
  (await readStream(await jetstreamManager(nc), stream)) !== undefined;

async function applySecret(name: string, stringData: Record<string, string>): Promise<void> {
  await cp.kubectl(['apply', '-n', K8S_NS, '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, stringData }),
  });
}

/** A Secret whose `user.creds` are those of a user of `account`. */
const applyCreds = async (secret: string, account: AccountName, user?: string): Promise<void> =>
  applySecret(secret, { 'user.creds': await accounts.accounts[account]!.creds(user) });

const credsConnection = (name: string, secret: string, servers = [server.url]): Obj =>
  ({
    apiVersion: API_VERSION,
    kind: 'NatsConnection',
    metadata: { name },
    spec: { servers, creds: { name: secret, key: 'user.creds' } },
  }) as Obj;

const waitCondition = (kind: Kind, name: string, what: string, fits: (o: Obj) => boolean): Promise<Obj> =>
  waitForObject(get, K8S_NS, kind, name, what, fits);

const waitReadyTrue = (kind: 'Stream' | 'NatsConnection', name: string): Promise<Obj> =>
  waitCondition(kind, name, 'Ready=True', readyForGeneration);

const gone = (kind: 'Stream' | 'NatsConnection', name: string): Promise<boolean> =>
  waitFor(`${kind} ${name} gone`, async () => (await get(kind, K8S_NS, name)) === undefined, 30_000);

/** NatsConnections whose next finalizer removal meets a write made in between (a real 409), and the 409s met. */
const conflictOn = new Set<string>();
let conflicts = 0;

const operatorOn = (identity: string): Promise<TestOperator> =>
  startTestOperator({
    kc,
    nc: other,
    natsServers: [server.url],
    namespace: K8S_NS,
    log,
    identity,
    wrapApi: (api) => ({
      ...api,
      async setFinalizers(kind, namespace, name, finalizers, resourceVersion) {
        if (kind === 'NatsConnection' && !finalizers.includes(FINALIZER) && conflictOn.delete(name))
          // Someone else writes the object first: the operator's copy is stale, the API server answers 409.
          await cp.kubectl(['annotate', '-n', namespace, 'natsconnections.jetstream.orderflow.dev', name, 'test/bump=1', '--overwrite']);
        try {
          return await api.setFinalizers(kind, namespace, name, finalizers, resourceVersion);
        } catch (err) {
          if (apiStatus(err) === 409) conflicts++;
          throw err;
        }
      },
    }),
  });

/** The connections a nats-server with monitoring (`-m port`) holds for operators (their client name), by client id. */
async function operatorClients(monitorPort: number): Promise<number[]> {
  const res = await fetch(`http://127.0.0.1:${monitorPort}/connz?limit=1024`);
  const body = (await res.json()) as { connections?: { cid: number; name?: string }[] };
  return (body.connections ?? [])
    .filter((c) => c.name?.startsWith('orderflow-operator-'))
    .map((c) => c.cid)
    .sort((a, b) => a - b);
}

beforeAll(async () => {
  accounts = await operatorMode(['ORDERS', 'OTHER', 'CAPTURE']);
  accounts.writeConfig(join(dir, 'operator-mode.conf'));
  server = await operatorModeServer('acct');
  await server.start();
  orders = await userOf('ORDERS');
  other = await userOf('OTHER');
  ({ cp, kc } = await fx.start());
  t = await operatorOn('op-a');
  await waitFor('leader with synced caches', () => t!.op.isLeader() && t!.op.ready(), 30_000);
}, 180_000);

afterAll(async () => {
  await t?.op.stop();
  for (const nc of [orders, other]) await nc?.close().catch(() => undefined);
  await fx.stop();
  await server?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('creds (operator mode: user JWT + seed from a Secret)', () => {
  it("a Stream naming a NatsConnection with a user's creds is Ready; its stream lives in that user's account only", async () => {
    const STREAM = names.stream('CREDS');
    await applyCreds('orders-creds', 'ORDERS', 'orders-operator');
    await kubectlApply(
      cp,
      K8S_NS,
      credsConnection('orders', 'orders-creds'),
      cr('Stream', 'creds-stream', { name: STREAM, subjects: [names.subject('creds.>')], connection: 'orders' }),
    );
    await waitReadyTrue('Stream', 'creds-stream');
    expect(await exists(orders, STREAM), 'in account ORDERS').toBe(true);
    expect(await exists(other, STREAM), 'not in account OTHER (the default connection)').toBe(false);
    // Reconciled before its informer saw the Stream, it may first say "not in use" (a probe); the
    // next reconcile (the connection made, a resync) says it is the pool's.
    const conn = await waitCondition(
      'NatsConnection',
      'orders',
      'Ready=True, in use',
      (o) => readyForGeneration(o) && !/not in use/.test(ready(o)?.message ?? ''),
    );
    expect(ready(conn)).toMatchObject({ reason: 'Connected', observedGeneration: 1 });
    expect(ready(conn)?.message).toMatch(/^connected to .* \(nats-server 2\.\d+\.\d+\), JetStream enabled$/);
  });

  it("creds whose seed is not the user JWT's → ConnectionUnavailable naming the server's refusal; nothing created", async () => {
    const STREAM = names.stream('MISMATCH');
    await applySecret('mismatched-creds', { 'user.creds': await accounts.accounts.ORDERS!.mismatchedCreds() });
    await kubectlApply(
      cp,
      K8S_NS,
      credsConnection('mismatched', 'mismatched-creds'),
      cr('Stream', 'mismatch-stream', { name: STREAM, subjects: [names.subject('mismatch.>')], connection: 'mismatched' }),
    );
    const refused = await waitCondition(
      'Stream',
      'mismatch-stream',
      'ConnectionUnavailable naming the refusal',
      (o) => ready(o)?.reason === 'ConnectionUnavailable' && /authorization violation/i.test(ready(o)?.message ?? ''),
    );
    expect(ready(refused)).toMatchObject({ status: 'False', observedGeneration: 1 });
    expect(ready(refused)?.message).toMatch(
      /^NatsConnection mismatched \(nats:\/\/127\.0\.0\.1:\d+\) is not connected: Authorization Violation/,
    );
    const conn = await waitCondition(
      'NatsConnection',
      'mismatched',
      'ConnectionUnavailable',
      (o) => ready(o)?.reason === 'ConnectionUnavailable' && /authorization violation/i.test(ready(o)?.message ?? ''),
    );
    expect(ready(conn)?.status).toBe('False');
    expect(await exists(orders, STREAM)).toBe(false);
  });
});

describe('dead letters of a Consumer naming a NatsConnection', () => {
  it("a MAX_DELIVERIES advisory in the connection's account is captured there and its dead letter copied to the DLQ there", async () => {
    const DL = names.stream('DL');
    const DLQ = names.stream('DLQ');
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'dl', { name: DL, subjects: [names.subject('dl.>')], connection: 'orders' }),
      deadLetterConsumer(names, 'dl-c', DL, { maxDeliver: 1, ackWait: '1s', connection: 'orders' }),
    );
    await waitCondition('Consumer', 'dl-c', 'Ready=True', (o) => ready(o)?.status === 'True');
    const jsm = await jetstreamManager(orders);
    // The capture in ORDERS — its stream and this deployment's durable for this connection —
    // before the poison message, which would otherwise be announced to nobody.
    const durable = await waitFor('the advisory capture in account ORDERS', async () =>
      (
        await jsm.consumers
          .list(DEFAULT_ADVISORY_STREAM)
          .next()
          .catch(() => [])
      ).find((c) => c.name.endsWith('_orders')),
    );
    expect(durable.name).toBe(`orderflow-operator_${K8S_NS}_orderflow-operator_${K8S_NS}_orders`);

    await jetstream(orders).publish(names.subject('dl.x'), 'poison');
    const m = await (await jetstream(orders).consumers.get(DL, 'dl-c')).next({ expires: 5000 });
    expect(m?.info.deliveryCount).toBe(1);
    // Never acked: after 1 s the server gives up (max_deliver 1) and announces it in ORDERS.
    const copied = await waitFor(
      'dead letter in the DLQ of account ORDERS',
      async () => {
        const s = await readStream(jsm, DLQ);
        return s && s.state.messages > 0 ? s : undefined;
      },
      30_000,
    );
    const dl = await jsm.streams.getMessage(DLQ, { seq: copied.state.last_seq });
    expect(dl?.header.get('Dlq-Reason')).toBe('max_deliveries');
    expect(dl?.header.get('Dlq-Consumer')).toBe('dl-c');
    expect(new TextDecoder().decode(dl?.data)).toBe('poison');
    expect(lines.some((l) => l.msg === 'dead letter copied' && l.consumer === 'dl-c' && l.connection === `${K8S_NS}/orders`)).toBe(true);
  });
});

describe('the dead-letter advisory capture of a NatsConnection, removed when it is no longer used', () => {
  /** This deployment's capture durable: on the default connection, or on a NatsConnection's. */
  const durableOf = (connection?: string): string =>
    `orderflow-operator_${K8S_NS}_orderflow-operator${connection ? `_${K8S_NS}_${connection}` : ''}`;
  const capturesIn = async (nc: NatsConnection): Promise<{ name: string; created: string }[]> => {
    const jsm = await jetstreamManager(nc);
    if (!(await readStream(jsm, DEFAULT_ADVISORY_STREAM))) return [];
    return (await jsm.consumers.list(DEFAULT_ADVISORY_STREAM).next()).map((c) => ({ name: c.name, created: c.created }));
  };
  const hasCapture = (nc: NatsConnection, durable: string) =>
    waitFor(`capture durable ${durable}`, async () => (await capturesIn(nc)).find((c) => c.name === durable));

  it(
    "a Consumer's deadLetter gone: that connection's durable goes, " + "the default connection's capture in the same account stays",
    async () => {
      const SHARED = names.stream('SHARED');
      // A user of OTHER, the default connection's account: both captures read one stream there.
      await applyCreds('shared-creds', 'OTHER');
      await kubectlApply(
        cp,
        K8S_NS,
        credsConnection('shared', 'shared-creds'),
        // preventDelete: no finalizer of their own holds the NatsConnection, only the capture does.
        cr('Stream', 'shared', { name: SHARED, subjects: [names.subject('shared.>')], connection: 'shared', preventDelete: true }),
        deadLetterConsumer(names, 'shared-c', SHARED, { connection: 'shared', preventDelete: true }),
      );
      const before = await hasCapture(other, durableOf());
      await hasCapture(other, durableOf('shared'));
      await waitCondition('NatsConnection', 'shared', 'with our finalizer (the capture)', (o) =>
        (o.metadata.finalizers ?? []).includes(FINALIZER),
      );

      await cp.kubectl(['delete', '-n', K8S_NS, 'consumers.jetstream.orderflow.dev', 'shared-c']);
      await waitFor('the durable of NatsConnection shared gone', async () =>
        (await capturesIn(other)).every((c) => c.name !== durableOf('shared')),
      );
      expect(await capturesIn(other), "the default connection's capture, untouched").toEqual([before]);
      await waitCondition('NatsConnection', 'shared', 'without our finalizer', (o) => !(o.metadata.finalizers ?? []).includes(FINALIZER));
      await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'shared']);
      await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'shared']);
    },
  );

  it('the NatsConnection deleted: its durable and the capture stream it made go; the default capture stays', async () => {
    const CAP = names.stream('CAP');
    const capture = await userOf('CAPTURE');
    try {
      await applyCreds('capture-creds', 'CAPTURE');
      await kubectlApply(
        cp,
        K8S_NS,
        credsConnection('capture', 'capture-creds'),
        cr('Stream', 'cap', { name: CAP, subjects: [names.subject('cap.>')], connection: 'capture', preventDelete: true }),
        deadLetterConsumer(names, 'cap-c', CAP, { connection: 'capture', preventDelete: true }),
      );
      await hasCapture(capture, durableOf('capture'));
      const made = await readStream(await jetstreamManager(capture), DEFAULT_ADVISORY_STREAM);
      expect(made?.config.metadata?.[CAPTURE_CREATOR], 'the stream names the capture that made it').toBe(durableOf('capture'));
      await waitCondition('NatsConnection', 'capture', 'with our finalizer', (o) => (o.metadata.finalizers ?? []).includes(FINALIZER));
      const defaults = await capturesIn(other);

      await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'capture', '--wait=false']);
      await gone('NatsConnection', 'capture');
      expect(await readStream(await jetstreamManager(capture), DEFAULT_ADVISORY_STREAM), 'capture stream deleted').toBeUndefined();
      expect(await exists(capture, CAP), 'the Stream (preventDelete) is kept').toBe(true);
      expect(await capturesIn(other), "the default connection's capture, untouched").toEqual(defaults);
      expect(
        lines.some((l) => l.msg === 'dead-letter advisory capture removed from the account' && l.connection === `${K8S_NS}/capture`),
      ).toBe(true);
      await cp.kubectl(['delete', '-n', K8S_NS, 'consumers.jetstream.orderflow.dev', 'cap-c']);
      await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'cap']);
    } finally {
      await capture.close();
    }
  });

  it(
    'the NatsConnection deleted while its server is down: it goes all the same, ' +
      'one Warning event (a 409 on the finalizer write in between) names the durable left',
    async () => {
      const DOWN = names.stream('DOWN');
      const down = await operatorModeServer('acct-down');
      try {
        await down.start();
        await applyCreds('down-creds', 'CAPTURE');
        await kubectlApply(
          cp,
          K8S_NS,
          credsConnection('down', 'down-creds', [down.url]),
          cr('Stream', 'down', { name: DOWN, subjects: [names.subject('down.>')], connection: 'down', preventDelete: true }),
          deadLetterConsumer(names, 'down-c', DOWN, { connection: 'down', preventDelete: true }),
        );
        const nc = await userOf('CAPTURE', down.url);
        try {
          await hasCapture(nc, durableOf('down'));
        } finally {
          await nc.close();
        }
        await waitCondition('NatsConnection', 'down', 'with our finalizer', (o) => (o.metadata.finalizers ?? []).includes(FINALIZER));

        await down.stop();
        const seen = lines.length;
        const conflictsBefore = conflicts;
        conflictOn.add('down');
        await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'down', '--wait=false']);
        await gone('NatsConnection', 'down');
        expect(conflicts, 'the first finalizer write met a 409 and was retried').toBeGreaterThan(conflictsBefore);
        const kept = await waitFor('Kept event of NatsConnection down', async () =>
          (await eventsFor(kc, K8S_NS, 'NatsConnection', 'down')).find((e) => e.reason === 'Kept' && e.type === 'Warning'),
        );
        expect(kept.note).toContain(`dead-letter advisory capture left in the account of NatsConnection down`);
        expect(kept.note).toContain(`nats consumer rm ${DEFAULT_ADVISORY_STREAM} ${durableOf('down')}`);
        // Told once per deletion, though the deletion ran twice: logged (synchronously, before the
        // finalizer came off) and recorded once.
        const told = lines
          .slice(seen)
          .filter((l) => String(l.msg).startsWith('dead-letter advisory capture left in the account of NatsConnection down'));
        expect(told).toHaveLength(1);
        expect((await eventsFor(kc, K8S_NS, 'NatsConnection', 'down')).filter((e) => e.reason === 'Kept')).toHaveLength(1);
        await cp.kubectl(['delete', '-n', K8S_NS, 'consumers.jetstream.orderflow.dev', 'down-c']);
        await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'down']);
      } finally {
        await down.dispose();
      }
    },
  );
});

describe('the capture of a NatsConnection: left-behind durables, deletion in progress', () => {
  const durableOf = (connection: string): string => `orderflow-operator_${K8S_NS}_orderflow-operator_${K8S_NS}_${connection}`;
  const capturesOn = async (nc: NatsConnection): Promise<string[]> => {
    const jsm = await jetstreamManager(nc);
    if (!(await readStream(jsm, DEFAULT_ADVISORY_STREAM))) return [];
    return (await jsm.consumers.list(DEFAULT_ADVISORY_STREAM).next()).map((c) => c.name);
  };

  it(
    'a durable left behind (server down when the last Consumer with deadLetter went) is removed at a later sync, ' +
      'once the server is back',
    async () => {
      const LATER = names.stream('LATER');
      const later = await operatorModeServer('acct-later');
      try {
        await later.start();
        await applyCreds('later-creds', 'CAPTURE');
        await kubectlApply(
          cp,
          K8S_NS,
          credsConnection('later', 'later-creds', [later.url]),
          cr('Stream', 'later', { name: LATER, subjects: [names.subject('later.>')], connection: 'later', preventDelete: true }),
          deadLetterConsumer(names, 'later-c', LATER, { connection: 'later', preventDelete: true }),
        );
        const user = (): Promise<NatsConnection> => userOf('CAPTURE', later.url);
        let nc = await user();
        try {
          await waitFor('the capture durable on NatsConnection later', async () => (await capturesOn(nc)).includes(durableOf('later')));
        } finally {
          await nc.close();
        }

        await later.stop();
        const seen = lines.length;
        // The last Consumer with deadLetter goes while nothing can reach the server: the durable stays for now.
        await cp.kubectl(['delete', '-n', K8S_NS, 'consumers.jetstream.orderflow.dev', 'later-c']);
        await waitFor('the removal tried and left for later', () =>
          lines
            .slice(seen)
            .some(
              (l) =>
                l.connection === `${K8S_NS}/later` &&
                String(l.msg).startsWith('dead-letter advisory capture could not be removed; left in the account'),
            ),
        );
        expect((await get('NatsConnection', K8S_NS, 'later'))?.metadata.finalizers, 'kept while its durable is left').toContain(FINALIZER);

        // No event, no deletion: the server back, a resync removes it.
        await later.start();
        nc = await user();
        try {
          await waitFor('the durable left behind removed', async () => !(await capturesOn(nc)).includes(durableOf('later')), 30_000);
        } finally {
          await nc.close();
        }
        // Logged once the whole removal (the durable, then the stream check) is through.
        await waitFor('the removal logged', () =>
          lines
            .slice(seen)
            .some((l) => l.msg === 'dead-letter advisory capture removed from the account' && l.connection === `${K8S_NS}/later`),
        );
        await waitCondition('NatsConnection', 'later', 'without our finalizer', (o) => !(o.metadata.finalizers ?? []).includes(FINALIZER));
        await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'later']);
        await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'later']);
      } finally {
        await later.dispose();
      }
    },
  );

  it(
    'a NatsConnection marked for deletion keeps its connection (same client ' +
      'on the server) and its capture while resources still delete through it',
    async () => {
      const HELD = names.stream('HELD');
      const DLQ = names.stream('DLQ');
      const monitor = await freePort();
      const held = await operatorModeServer('acct-held', monitor);
      let nc: NatsConnection | undefined;
      try {
        await held.start();
        await applyCreds('held-creds', 'CAPTURE');
        // No preventDelete: the Stream and the Consumer carry our finalizer and need the connection to delete.
        await kubectlApply(
          cp,
          K8S_NS,
          credsConnection('held', 'held-creds', [held.url]),
          cr('Stream', 'held', { name: HELD, subjects: [names.subject('held.>')], connection: 'held' }),
          deadLetterConsumer(names, 'held-c', HELD, { maxDeliver: 1, ackWait: '1s', connection: 'held' }),
        );
        await waitCondition('Consumer', 'held-c', 'Ready=True', (o) => ready(o)?.status === 'True');
        nc = await userOf('CAPTURE', held.url);
        const user = nc;
        await waitFor('the capture durable on NatsConnection held', async () => (await capturesOn(user)).includes(durableOf('held')));
        await waitCondition('NatsConnection', 'held', 'with our finalizer', (o) => (o.metadata.finalizers ?? []).includes(FINALIZER));
        const clients = await waitFor('one operator connection on the server', async () => {
          const c = await operatorClients(monitor);
          return c.length === 1 ? c : undefined;
        });

        const seen = lines.length;
        await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'held', '--wait=false']);
        const marked = await waitCondition('NatsConnection', 'held', 'marked for deletion', (o) => Boolean(o.metadata.deletionTimestamp));
        // Every resource naming it resolved its connection again since (the resync re-reconciles them all).
        const reconciled = await t!.reconciles('Consumer');
        await waitFor('the Consumer reconciled twice since', async () => (await t!.reconciles('Consumer')) >= reconciled + 2);
        expect(await operatorClients(monitor), 'the same connection: deletion changes no connection setting').toEqual(clients);
        expect(
          lines
            .slice(seen)
            .some((l) => l.connection === `${K8S_NS}/held` && l.msg === 'NatsConnection changed: reconnecting with the new settings'),
        ).toBe(false);

        // Still captured: a poison message's dead letter reaches the DLQ in that account.
        await jetstream(user).publish(names.subject('held.x'), 'poison');
        const m = await (await jetstream(user).consumers.get(HELD, 'held-c')).next({ expires: 5000 });
        expect(m?.info.deliveryCount).toBe(1);
        const jsm = await jetstreamManager(user);
        await waitFor(
          'dead letter in the DLQ while the NatsConnection is Terminating',
          async () => ((await readStream(jsm, DLQ))?.state.messages ?? 0) > 0,
          30_000,
        );
        expect((await get('NatsConnection', K8S_NS, 'held'))?.metadata.deletionTimestamp, 'still Terminating').toBe(
          marked.metadata.deletionTimestamp,
        );
        expect((await capturesOn(user)).includes(durableOf('held')), 'its durable still there').toBe(true);
        expect(await operatorClients(monitor)).toEqual(clients);

        // The last resources go (deleting their objects through it): then the capture and the NatsConnection.
        await cp.kubectl(['delete', '-n', K8S_NS, 'consumers.jetstream.orderflow.dev', 'held-c', '--wait=false']);
        await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'held', '--wait=false']);
        await gone('NatsConnection', 'held');
        expect(await exists(user, HELD), 'the Stream deleted its stream through it').toBe(false);
        expect(await readStream(jsm, DEFAULT_ADVISORY_STREAM), 'the capture (and the stream it made) removed').toBeUndefined();
      } finally {
        await nc?.close();
        await held.dispose();
      }
    },
  );
});

describe('a Stream deleted while its connection is gone', () => {
  it('gone for good (NatsConnection or its Secret deleted while no operator ran): the resource goes, the stream is kept', async () => {
    const NO_CONN = names.stream('KEPT_CONN');
    const NO_SECRET = names.stream('KEPT_SECRET');
    await applyCreds('kept-conn-creds', 'ORDERS');
    await applyCreds('kept-secret-creds', 'ORDERS');
    await kubectlApply(
      cp,
      K8S_NS,
      credsConnection('kept-conn', 'kept-conn-creds'),
      credsConnection('kept-secret', 'kept-secret-creds'),
      cr('Stream', 'kept-conn', { name: NO_CONN, subjects: [names.subject('keptconn.>')], connection: 'kept-conn' }),
      cr('Stream', 'kept-secret', { name: NO_SECRET, subjects: [names.subject('keptsecret.>')], connection: 'kept-secret' }),
    );
    for (const s of ['kept-conn', 'kept-secret']) await waitReadyTrue('Stream', s);
    expect(await exists(orders, NO_CONN)).toBe(true);
    expect(await exists(orders, NO_SECRET)).toBe(true);
    // The NatsConnection carries our finalizer while the Stream needs it.
    await waitCondition('NatsConnection', 'kept-conn', 'with our finalizer', (o) => (o.metadata.finalizers ?? []).includes(FINALIZER));

    // No operator runs (its connections closed with it) while the NatsConnection is deleted —
    // its finalizer taken off by hand, nothing else would — and the other one's Secret too.
    await t!.op.stop();
    t = undefined;
    await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'kept-conn', '--wait=false']);
    await cp.kubectl([
      'patch',
      '-n',
      K8S_NS,
      'natsconnections.jetstream.orderflow.dev',
      'kept-conn',
      '--type=merge',
      '-p',
      '{"metadata":{"finalizers":null}}',
    ]);
    await gone('NatsConnection', 'kept-conn');
    await cp.kubectl(['delete', '-n', K8S_NS, 'secret', 'kept-secret-creds']);
    await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'kept-conn', 'kept-secret', '--wait=false']);

    // An operator starts: nothing can reach the account any more, so nothing ever could delete
    // the streams — the resources go, the streams stay, each Stream's Warning says why.
    t = await operatorOn('op-b');
    await gone('Stream', 'kept-conn');
    await gone('Stream', 'kept-secret');
    expect(await exists(orders, NO_CONN), 'stream kept in JetStream').toBe(true);
    expect(await exists(orders, NO_SECRET), 'stream kept in JetStream').toBe(true);
    const kept = async (name: string) =>
      waitFor(`Kept event of Stream ${name}`, async () =>
        (await eventsFor(kc, K8S_NS, 'Stream', name)).find((e) => e.reason === 'Kept' && e.type === 'Warning'),
      );
    expect((await kept('kept-conn')).note).toMatch(
      new RegExp(`^stream ${NO_CONN} kept: NatsConnection kept-conn \\(spec.connection\\) not found in namespace ${K8S_NS}`),
    );
    expect((await kept('kept-secret')).note).toMatch(
      new RegExp(
        `^stream ${NO_SECRET} kept: Secret ${K8S_NS}/kept-secret-creds \\(NatsConnection ${K8S_NS}/kept-secret, spec.creds\\) not found`,
      ),
    );
    // The NatsConnection left is needed by nothing now: our finalizer comes off it.
    await waitCondition(
      'NatsConnection',
      'kept-secret',
      'without our finalizer',
      (o) => !(o.metadata.finalizers ?? []).includes(FINALIZER),
    );
  });

  it('only away (its server down): the resource stays Terminating, and deletes the stream once the server is back', async () => {
    const STREAM = names.stream('AWAY');
    const away = await operatorModeServer('acct-away');
    try {
      await away.start();
      await applyCreds('away-creds', 'ORDERS');
      await kubectlApply(
        cp,
        K8S_NS,
        credsConnection('away', 'away-creds', [away.url]),
        cr('Stream', 'away', { name: STREAM, subjects: [names.subject('away.>')], connection: 'away' }),
      );
      await waitReadyTrue('Stream', 'away');
      await away.stop();
      const seen = lines.length;
      await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'away', '--wait=false']);
      // The operator tried and is waiting, not giving up: the resource is still there, Terminating.
      // (Its connection reconnecting still counts as open, so the try is made and fails — or, once
      // nats.js gave up on it, the resolver says it is unavailable.)
      await waitFor('a deletion tried and requeued', () =>
        lines
          .slice(seen)
          .some((l) => l.key === `Stream/${K8S_NS}/away` && /^(cannot delete yet: .*|reconcile error; requeued)$/.test(String(l.msg))),
      );
      const waiting = await get('Stream', K8S_NS, 'away');
      expect(waiting?.metadata.deletionTimestamp).toBeDefined();
      expect(waiting?.metadata.finalizers).toContain(FINALIZER);

      await away.start();
      await gone('Stream', 'away');
      const nc = await connect({
        servers: away.url,
        authenticator: credsAuthenticator(enc.encode(await accounts.accounts.ORDERS!.creds())),
      });
      try {
        expect(await exists(nc, STREAM), 'deleted on its server').toBe(false);
      } finally {
        await nc.close();
      }
      const deleted = await waitFor('Deleted event of Stream away', async () =>
        (await eventsFor(kc, K8S_NS, 'Stream', 'away')).find((e) => e.reason === 'Deleted'),
      );
      expect(deleted.note).toBe(`stream ${STREAM} deleted`);
    } finally {
      await away.dispose();
    }
  });
});
