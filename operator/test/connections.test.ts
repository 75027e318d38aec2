/**
 * NatsConnection resources and NATS that is away, on a REAL control plane with nats-servers of
 * this file's own: the operator's default connection is the kit's NatsManager (as main.ts builds
 * it) pointed at a server that is not running when the operator starts; a second server demands
 * TLS with client certificates plus user/password, a third a token. One operator reaches all three.
 *
 * - started while its NATS is down: a Stream is Ready=False/ConnectionUnavailable, then Ready=True
 *   once the server starts, without restarting the operator;
 * - a Stream naming a NatsConnection whose Secret holds user/password and the TLS CA, client
 *   certificate and key is created on THAT server and not on the default one; deleting it deletes it there;
 * - a missing Secret → SecretNotFound; a Secret with a wrong token → ConnectionUnavailable naming
 *   the refusal; the Secret corrected → Ready=True (the connection is rebuilt from the new Secret);
 * - a NatsConnection that does not exist → ConnectionNotFound until it does;
 * - KeyValue and ObjectStore resources naming a NatsConnection: buckets on that server only;
 * - an nkey seed from a Secret and a JetStream domain (a fourth server, domain `hub`): Ready and
 *   the domain in the status; a wrong domain → JetStreamUnavailable, nothing created;
 * - the NatsConnection's own status: Ready with the server version and observedGeneration; one
 *   nothing references is checked without keeping a connection;
 * - a NatsConnection deleted while a Stream names it stays (Terminating, our finalizer) until the
 *   Stream has deleted its stream through it;
 * - tls.handshakeFirst against a server configured with handshake_first;
 * - admission (CEL): user without password, two kinds of credentials, a changed spec.connection;
 * - the built operator (dist/main.js, needs `npx turbo run build`) with NATS away at start: the
 *   Stream's status says so, then Ready once the server starts; /health 200, /ready 503 meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { nkeyAuthenticator, nkeys } from '@nats-io/nats-core';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { NatsManager, readBucket, readStream } from '@orderflow/kit';
import {
  freePort,
  httpReady,
  launchProcess,
  makeTestTlsSet,
  natsMutualTlsArgs,
  TestNatsServer,
  waitFor,
  type LaunchedProcess,
} from '@orderflow/kit/testing';
import type { ControlPlane } from '../../test/support/control-plane.js';
import { API_VERSION, FINALIZER, type Kind } from '../src/resources.js';
import { operatorTestFixture } from './support/fixture.js';
import { cr, kubectlApply, ready, readyForGeneration, waitForObject, type Obj } from './support/kube.js';
import { startTestOperator, type TestOperator } from './support/operator.js';

const fx = operatorTestFixture('opconn', 'connections');
const { names, K8S_NS, log, get } = fx;
const dir = mkdtempSync(join(tmpdir(), 'operator-connections-'));
const f = (n: string): string => join(dir, n);

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const TOKEN = 'tok-9f2c';
const USER = 'orders-admin';
const PASSWORD = 'pw-7d1e';

let cp: ControlPlane;
let kc: KubeConfig;
let defaultServer: TestNatsServer;
let tlsServer: TestNatsServer;
let tokenServer: TestNatsServer;
/** JetStream domain `hub`, one nkey user. */
let domainServer: TestNatsServer;
const userKey = nkeys.createUser();
let defaultNats: NatsManager;
let t: TestOperator | undefined;
const admins: NatsConnection[] = [];

async function admin(opts: ConnectionOptions): Promise<NatsConnection> {
  const nc = await connect(opts);
  admins.push(nc);
  return nc;
}

/** Whether a stream exists on the server behind `nc`. */
const exists = async (nc: NatsConnection, stream: string): Promise<boolean> =>
  (await readStream(await jetstreamManager(nc), stream)) !== undefined;

async function applySecret(name: string, stringData: Record<string, string>): Promise<void> {
  await cp.kubectl(['apply', '-n', K8S_NS, '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name }, stringData }),
  });
}

const connection = (name: string, spec: Record<string, unknown>): Obj =>
  ({ apiVersion: API_VERSION, kind: 'NatsConnection', metadata: { name }, spec }) as Obj;

const waitCondition = (kind: Kind, name: string, what: string, fits: (o: Obj) => boolean): Promise<Obj> =>
  waitForObject(get, K8S_NS, kind, name, what, fits);

const waitReason = (kind: 'Stream' | 'NatsConnection', name: string, reason: string): Promise<Obj> =>
  waitCondition(kind, name, `Ready reason ${reason}`, (o) => ready(o)?.reason === reason);

const waitReadyTrue = (kind: 'Stream' | 'NatsConnection', name: string): Promise<Obj> =>
  waitCondition(kind, name, 'Ready=True', readyForGeneration);

beforeAll(async () => {
  makeTestTlsSet(dir);
  ({ cp, kc } = await fx.start());
  // Created, not started: the operator comes up while its NATS is away.
  defaultServer = await TestNatsServer.create({ name: 'conn-default' });
  tlsServer = await TestNatsServer.create({
    name: 'conn-tls',
    args: [...natsMutualTlsArgs(dir), '--user', USER, '--pass', PASSWORD],
  });
  tokenServer = await TestNatsServer.create({ name: 'conn-token', args: ['--auth', TOKEN] });
  writeFileSync(f('domain.conf'), `jetstream { domain: hub }\nauthorization { users: [ { nkey: "${userKey.getPublicKey()}" } ] }\n`);
  domainServer = await TestNatsServer.create({ name: 'conn-domain', args: ['-c', f('domain.conf')] });
  await tlsServer.start();
  await tokenServer.start();
  await domainServer.start();
  // main.ts's default connection: the kit's manager over the settings, retrying the first connect.
  defaultNats = new NatsManager(
    { servers: [defaultServer.url], name: 'operator-default', rebuildTimeoutMs: 0, backoff: { initialMs: 100, maxMs: 1000 } },
    log,
  );
  defaultNats.start();
  t = await startTestOperator({ kc, nats: defaultNats, natsServers: [defaultServer.url], namespace: K8S_NS, log });
  await waitFor('leader with synced caches, NATS or not', () => t!.op.isLeader() && t!.op.ready(), 30_000);
}, 180_000);

afterAll(async () => {
  await t?.op.stop();
  await defaultNats?.stop();
  for (const nc of admins) await nc.close().catch(() => undefined);
  await fx.stop();
  for (const s of [defaultServer, tlsServer, tokenServer, domainServer]) await s?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('the default connection away at start', () => {
  it('Ready=False/ConnectionUnavailable while NATS is down; Ready=True once it starts, no restart', async () => {
    const STREAM = names.stream('DEFAULT');
    await kubectlApply(cp, K8S_NS, cr('Stream', 'on-default', { name: STREAM, subjects: [names.subject('default.>')] }));
    const down = await waitReason('Stream', 'on-default', 'ConnectionUnavailable');
    expect(ready(down)).toMatchObject({ status: 'False', observedGeneration: 1 });
    expect(ready(down)?.message).toContain(defaultServer.url);

    await defaultServer.start();
    await waitReadyTrue('Stream', 'on-default');
    const nc = await admin({ servers: defaultServer.url });
    expect(await exists(nc, STREAM)).toBe(true);
  });
});

describe('NatsConnection resources', () => {
  it(
    'a Stream naming a NatsConnection (user/password, ' + 'TLS CA and client certificate from a Secret) lives on that server only',
    async () => {
      const STREAM = names.stream('SECURE');
      await applySecret('secure-nats', {
        user: USER,
        password: PASSWORD,
        'ca.crt': readFileSync(f('ca.pem'), 'utf8'),
        'tls.crt': readFileSync(f('client.pem'), 'utf8'),
        'tls.key': readFileSync(f('client.key'), 'utf8'),
      });
      const ref = (key: string) => ({ name: 'secure-nats', key });
      await kubectlApply(
        cp,
        K8S_NS,
        connection('secure', {
          servers: [`tls://127.0.0.1:${tlsServer.port}`],
          user: ref('user'),
          password: ref('password'),
          tls: { ca: ref('ca.crt'), cert: ref('tls.crt'), key: ref('tls.key') },
        }),
        cr('Stream', 'secure-stream', { name: STREAM, subjects: [names.subject('secure.>')], connection: 'secure' }),
      );
      await waitReadyTrue('Stream', 'secure-stream');
      const secure = await admin({
        servers: tlsServer.url,
        user: USER,
        pass: PASSWORD,
        tls: { caFile: f('ca.pem'), certFile: f('client.pem'), keyFile: f('client.key') },
      });
      const plain = await admin({ servers: defaultServer.url });
      expect(await exists(secure, STREAM)).toBe(true);
      expect(await exists(plain, STREAM)).toBe(false);

      const conn = await waitReadyTrue('NatsConnection', 'secure');
      expect(ready(conn)).toMatchObject({ reason: 'Connected', observedGeneration: 1 });
      const status = conn.status as { serverVersion?: string };
      expect(status.serverVersion).toBe(secure.info?.version);

      // Deleting the resource deletes the stream where it lives.
      await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'secure-stream', '--timeout=30s']);
      await waitFor('stream deleted on the TLS server', async () => !(await exists(secure, STREAM)), 30_000);
    },
  );

  it('missing Secret → SecretNotFound; a wrong token → ConnectionUnavailable; the Secret corrected → Ready=True', async () => {
    const STREAM = names.stream('TOKEN');
    await kubectlApply(
      cp,
      K8S_NS,
      connection('tokened', { servers: [tokenServer.url], token: { name: 'token-nats', key: 'token' } }),
      cr('Stream', 'token-stream', { name: STREAM, subjects: [names.subject('token.>')], connection: 'tokened' }),
    );
    const missing = await waitReason('Stream', 'token-stream', 'SecretNotFound');
    expect(ready(missing)?.message).toContain(`Secret ${K8S_NS}/token-nats`);
    expect(ready(await waitReason('NatsConnection', 'tokened', 'SecretNotFound'))?.status).toBe('False');

    await applySecret('token-nats', { token: 'not-the-token' });
    // The server's refusal, named in the status (the first status may say 'not connected yet').
    const refused = await waitCondition(
      'Stream',
      'token-stream',
      'ConnectionUnavailable naming the refusal',
      (o) => ready(o)?.reason === 'ConnectionUnavailable' && /authorization violation/i.test(ready(o)?.message ?? ''),
    );
    expect(ready(refused)?.message).toMatch(
      /^NatsConnection tokened \(nats:\/\/127\.0\.0\.1:\d+\) is not connected: Authorization Violation/,
    );

    await applySecret('token-nats', { token: TOKEN });
    await waitReadyTrue('Stream', 'token-stream');
    const nc = await admin({ servers: tokenServer.url, token: TOKEN });
    expect(await exists(nc, STREAM)).toBe(true);
    expect(await exists(await admin({ servers: defaultServer.url }), STREAM)).toBe(false);
  });

  it('two NatsConnections to two servers and the default connection, all Ready from one operator', async () => {
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'token-two', { name: names.stream('TWO'), subjects: [names.subject('two.>')], connection: 'tokened' }),
      cr('Stream', 'secure-two', { name: names.stream('TWO'), subjects: [names.subject('two.>')], connection: 'secure' }),
    );
    // The same stream name on two servers: neither resource sees the other's object.
    for (const n of ['token-two', 'secure-two', 'on-default']) await waitReadyTrue('Stream', n);
    for (const n of ['tokened', 'secure']) expect(ready(await waitReadyTrue('NatsConnection', n))?.reason).toBe('Connected');
    expect(await t!.reconciles('NatsConnection', 'connected')).toBeGreaterThan(0);
  });

  it('KeyValue and ObjectStore resources naming a NatsConnection: their buckets live on that server only', async () => {
    const kv = names.stream('conn_kv').toLowerCase();
    const os = names.stream('conn_os').toLowerCase();
    await kubectlApply(
      cp,
      K8S_NS,
      cr('KeyValue', 'conn-kv', { bucket: kv, history: 2, connection: 'tokened' }),
      cr('ObjectStore', 'conn-os', { bucket: os, connection: 'tokened' }),
    );
    for (const [kind, name] of [
      ['KeyValue', 'conn-kv'],
      ['ObjectStore', 'conn-os'],
    ] as const)
      await waitCondition(kind, name, 'Ready=True', (o) => ready(o)?.status === 'True');
    const token = await jetstreamManager(await admin({ servers: tokenServer.url, token: TOKEN }));
    const plain = await jetstreamManager(await admin({ servers: defaultServer.url }));
    expect(await readBucket(token, 'KeyValue', kv), 'KeyValue on the token server').toBeDefined();
    expect(await readBucket(token, 'ObjectStore', os), 'ObjectStore on the token server').toBeDefined();
    expect(await readBucket(plain, 'KeyValue', kv), 'no KeyValue on the default server').toBeUndefined();
    expect(await readBucket(plain, 'ObjectStore', os), 'no ObjectStore on the default server').toBeUndefined();
  });

  it(
    'an nkey seed from a Secret and a JetStream domain: ' +
      'through the domain Ready (status names it); a wrong domain is JetStreamUnavailable',
    async () => {
      await applySecret('nkey-nats', { seed: new TextDecoder().decode(userKey.getSeed()) });
      const nkey = { name: 'nkey-nats', key: 'seed' };
      await kubectlApply(
        cp,
        K8S_NS,
        connection('hub', { servers: [domainServer.url], nkey, jsDomain: 'hub' }),
        connection('elsewhere', { servers: [domainServer.url], nkey, jsDomain: 'elsewhere' }),
        cr('Stream', 'hub-stream', { name: names.stream('HUB'), subjects: [names.subject('hub.>')], connection: 'hub' }),
        cr('Stream', 'elsewhere-stream', {
          name: names.stream('ELSEWHERE'),
          subjects: [names.subject('elsewhere.>')],
          connection: 'elsewhere',
        }),
      );
      await waitReadyTrue('Stream', 'hub-stream');
      const hub = await waitReadyTrue('NatsConnection', 'hub');
      expect(hub.status).toMatchObject({ jetStreamDomain: 'hub' });
      expect(ready(hub)?.message).toMatch(/JetStream enabled \(domain hub\)/);
      const nc = await admin({ servers: domainServer.url, authenticator: nkeyAuthenticator(userKey.getSeed()) });
      expect(await exists(nc, names.stream('HUB'))).toBe(true);

      const away = await waitReason('NatsConnection', 'elsewhere', 'JetStreamUnavailable');
      expect(ready(away)?.message).toMatch(/^connected to .*, but JetStream did not answer/);
      // Before the pool's connection for `elsewhere` is up the Stream is, rightly,
      // ConnectionUnavailable ("not connected yet"); it must end JetStreamUnavailable.
      const stream = await waitReason('Stream', 'elsewhere-stream', 'JetStreamUnavailable');
      expect(ready(stream)?.status).toBe('False');
      expect(await exists(nc, names.stream('ELSEWHERE'))).toBe(false);
    },
  );

  it('tls.handshakeFirst: a server that wants TLS first is reached with it, not without it', async () => {
    writeFileSync(f('first.conf'), `tls { cert_file: "${f('server.pem')}", key_file: "${f('server.key')}", handshake_first: true }\n`);
    const first = await TestNatsServer.create({ name: 'conn-tls-first', args: ['-c', f('first.conf')] });
    try {
      await first.start();
      await applySecret('first-ca', { 'ca.crt': readFileSync(f('ca.pem'), 'utf8') });
      const ca = { name: 'first-ca', key: 'ca.crt' };
      await kubectlApply(
        cp,
        K8S_NS,
        connection('tls-first', { servers: [`tls://127.0.0.1:${first.port}`], tls: { ca, handshakeFirst: true } }),
        connection('tls-later', { servers: [`tls://127.0.0.1:${first.port}`], tls: { ca } }),
      );
      // Nothing references them: each is checked with a short-lived connection.
      expect(ready(await waitReadyTrue('NatsConnection', 'tls-first'))?.reason).toBe('Connected');
      const later = await waitReason('NatsConnection', 'tls-later', 'ConnectionUnavailable');
      expect(ready(later)?.message).toContain(`cannot connect to tls://127.0.0.1:${first.port}`);
    } finally {
      await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'tls-first', 'tls-later', '--ignore-not-found']);
      await first.dispose();
    }
  });

  it('a NatsConnection that does not exist → ConnectionNotFound until it is created', async () => {
    await kubectlApply(
      cp,
      K8S_NS,
      cr('Stream', 'later', { name: names.stream('LATER'), subjects: [names.subject('later.>')], connection: 'later' }),
    );
    const o = await waitReason('Stream', 'later', 'ConnectionNotFound');
    expect(ready(o)?.message).toContain(`NatsConnection later`);
    await applySecret('later-nats', { token: TOKEN });
    await kubectlApply(cp, K8S_NS, connection('later', { servers: [tokenServer.url], token: { name: 'later-nats', key: 'token' } }));
    await waitReadyTrue('Stream', 'later');
    const nc = await admin({ servers: tokenServer.url, token: TOKEN });
    expect(await exists(nc, names.stream('LATER')), 'created on the token server').toBe(true);

    // Deleted while the Stream still names it (as a namespace or a Helm release is deleted): the
    // NatsConnection stays, Terminating, until the Stream has deleted its stream through it.
    // Its Secret goes at once (Secrets have no finalizer): the open connection is used.
    // The finalizer comes with the connection's own reconcile, which may trail the Stream's.
    await waitFor('NatsConnection later holds our finalizer', async () =>
      (await get('NatsConnection', K8S_NS, 'later'))?.metadata.finalizers?.includes(FINALIZER),
    );
    await cp.kubectl(['delete', '-n', K8S_NS, 'natsconnections.jetstream.orderflow.dev', 'later', '--wait=false']);
    await cp.kubectl(['delete', '-n', K8S_NS, 'secret', 'later-nats']);
    const terminating = await waitFor('NatsConnection later Terminating', async () => {
      const o = await get('NatsConnection', K8S_NS, 'later');
      return o?.metadata.deletionTimestamp ? o : undefined;
    });
    expect(terminating.metadata.finalizers).toContain('jetstream.orderflow.dev/finalizer');
    await cp.kubectl(['delete', '-n', K8S_NS, 'streams.jetstream.orderflow.dev', 'later', '--timeout=30s']);
    expect(await exists(nc, names.stream('LATER')), 'deleted on the token server').toBe(false);
    await waitFor('NatsConnection later gone', async () => (await get('NatsConnection', K8S_NS, 'later')) === undefined, 30_000);
  });

  it('a NatsConnection nothing references is checked and holds no connection: Ready=True, not in use', async () => {
    await kubectlApply(cp, K8S_NS, connection('idle', { servers: [tokenServer.url], token: { name: 'token-nats', key: 'token' } }));
    const o = await waitReadyTrue('NatsConnection', 'idle');
    expect(ready(o)?.message).toMatch(/^connected to .* \(nats-server [0-9.]+\), JetStream enabled; not in use/);
  });

  it('admission: user without password, two kinds of credentials, and a changed spec.connection are refused', async () => {
    const refused = async (obj: Obj, message: RegExp): Promise<void> => {
      const r = await cp.kubectlResult(['apply', '-n', K8S_NS, '-f', '-'], { input: JSON.stringify(obj) });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(message);
    };
    const ref = { name: 'token-nats', key: 'token' };
    await refused(connection('bad-user', { servers: [tokenServer.url], user: ref }), /user and password go together/);
    await refused(
      connection('bad-two', { servers: [tokenServer.url], token: ref, nkey: ref }),
      /one of creds, nkey, user\/password and token/,
    );
    await refused(
      cr('Stream', 'token-two', { name: names.stream('TWO'), subjects: [names.subject('two.>')], connection: 'secure' }),
      /connection is fixed/,
    );
    await refused(cr('Stream', 'token-two', { name: names.stream('TWO'), subjects: [names.subject('two.>')] }), /connection is fixed/);
  });
});

describe('the built operator (dist/main.js) started while its NATS is down', () => {
  it('a Stream is Ready=False/ConnectionUnavailable, then Ready=True when the server starts; /health 200 throughout', async () => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} missing: run npx turbo run build first`);
    const server = await TestNatsServer.create({ name: 'conn-main' });
    const BNS = `${K8S_NS}-main`;
    const port = await freePort();
    let proc: LaunchedProcess | undefined;
    try {
      await cp.kubectl(['create', 'namespace', BNS]);
      proc = await launchProcess({
        name: 'operator',
        args: [MAIN],
        inheritEnv: (k) => k === 'PATH' || k === 'HOME',
        env: {
          PORT: String(port),
          NATS_URL: server.url,
          KUBECONFIG: cp.kubeconfigPath,
          WATCH_NAMESPACE: BNS,
          POD_NAMESPACE: BNS,
          POD_NAME: 'op-main',
          RESYNC_SECONDS: '1',
          LOG_LEVEL: 'info',
        },
        ready: httpReady(`http://127.0.0.1:${port}/health`),
      });
      await kubectlApply(cp, BNS, cr('Stream', 'main', { name: names.stream('MAIN'), subjects: [names.subject('main.>')] }));
      const down = await waitFor('ConnectionUnavailable', async () => {
        const o = await get('Stream', BNS, 'main');
        return ready(o)?.reason === 'ConnectionUnavailable' ? o : undefined;
      });
      expect(ready(down)?.message).toContain(server.url);
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/ready`)).status).toBe(503);

      await server.start();
      await waitFor('Ready=True', async () => ready(await get('Stream', BNS, 'main'))?.status === 'True', 30_000);
      const nc = await admin({ servers: server.url });
      expect(await exists(nc, names.stream('MAIN'))).toBe(true);
      expect(proc.proc.exitCode).toBeNull();
    } finally {
      await proc?.stop();
      await server.dispose();
    }
  });
});
