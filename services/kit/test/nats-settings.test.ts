import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { baseConfig, natsAccessFromEnv, natsConnectionOptions } from '@orderflow/kit';
import { TestNatsServer } from '@orderflow/kit/testing';
import { consoleConfig } from '../../console/src/config.js';

const dir = mkdtempSync(join(tmpdir(), 'nats-settings-'));
const file = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('one reader of NATS settings', () => {
  test('URL list, user and password (direct or from a file), creds and TLS paths (with or without _FILE)', () => {
    expect(natsAccessFromEnv({})).toEqual({
      servers: ['nats://127.0.0.1:4222'],
      user: undefined,
      password: undefined,
      passwordFile: undefined,
      credsFile: undefined,
      tls: undefined,
    });
    expect(natsAccessFromEnv({ NATS_URL: 'nats://a:1, nats://b:2' }).servers).toEqual(['nats://a:1', 'nats://b:2']);

    const pw = file('pw', 'from-file\n');
    const user = file('user', 'svc\n');
    expect(natsAccessFromEnv({ NATS_USER_FILE: user, NATS_PASSWORD_FILE: pw })).toMatchObject({
      user: 'svc',
      password: 'from-file',
      passwordFile: pw,
    });
    // A password given directly wins over the file.
    expect(natsAccessFromEnv({ NATS_USER: 'svc', NATS_PASSWORD: 'direct', NATS_PASSWORD_FILE: pw })).toMatchObject({
      password: 'direct',
      passwordFile: undefined,
    });

    // Creds and TLS settings are paths: the _FILE spelling names the same file, it is not read as a path.
    expect(natsAccessFromEnv({ NATS_CREDS: '/c/app.creds' }).credsFile).toBe('/c/app.creds');
    expect(natsAccessFromEnv({ NATS_CREDS_FILE: '/c/app.creds' }).credsFile).toBe('/c/app.creds');
    expect(natsAccessFromEnv({ NATS_TLS_CA: '/t/ca.pem', NATS_TLS_CERT_FILE: '/t/c.pem', NATS_TLS_KEY: '/t/k.pem' }).tls).toEqual({
      caFile: '/t/ca.pem',
      certFile: '/t/c.pem',
      keyFile: '/t/k.pem',
    });
  });

  test('services and console read the same settings from the same environment', () => {
    const env = {
      NATS_URL: 'nats://x:1,nats://y:2',
      NATS_USER: 'u',
      NATS_PASSWORD_FILE: file('pw2', 'p\n'),
      NATS_CREDS: '/c/x.creds',
      NATS_TLS_CA: '/t/ca.pem',
    };
    expect(consoleConfig(env).nats).toEqual(baseConfig('order-service', 3001, env).nats);
    expect(consoleConfig(env).nats).toEqual(natsAccessFromEnv(env));
  });
});

describe('connection options against a server that wants a password', () => {
  let server: TestNatsServer;
  beforeAll(async () => {
    server = await TestNatsServer.create({ args: ['--user', 'svc', '--pass', 's3cret'] });
    await server.start();
  });
  afterAll(async () => server?.dispose());

  test('the password file is read and used; without it the server refuses', async () => {
    const env = { NATS_URL: server.url, NATS_USER: 'svc', NATS_PASSWORD_FILE: file('pw3', 's3cret\n') };
    const nc = await connect(natsConnectionOptions(natsAccessFromEnv(env), 'settings-test'));
    await nc.flush();
    await nc.close();
    await expect(
      connect({ ...natsConnectionOptions(natsAccessFromEnv({ NATS_URL: server.url }), 'settings-test'), reconnect: false }),
    ).rejects.toThrow(/authorization/i);
  });
});
