/**
 * The one reader of NATS settings, shared by the services, the console, the operator and the CLI:
 * where the servers are and how to prove who we are. Files are named, not read here: the
 * connection reads them at every (re)connect, so rotated credentials are picked up.
 */
import { readFileSync } from 'node:fs';
import {
  credsAuthenticator,
  nkeyAuthenticator,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
  type Authenticator,
  type ConnectionOptions,
} from '@nats-io/transport-node';

type Env = Record<string, string | undefined>;

export interface NatsAccess {
  /** NATS_URL: a comma list for a cluster. */
  servers: string[];
  /** NATS_USER (or the file NATS_USER_FILE names). */
  user?: string;
  /** NATS_PASSWORD. */
  password?: string;
  /** NATS_PASSWORD_FILE: read at every connect and reconnect (wins over `password`), so a rotated password is used. */
  passwordFile?: string;
  /** NATS_CREDS (a path; NATS_CREDS_FILE is the same): read at every connect and reconnect. */
  credsFile?: string;
  /** NATS_TLS_CA, NATS_TLS_CERT, NATS_TLS_KEY (paths; a `_FILE` suffix is accepted too). */
  tls?: {
    caFile?: string;
    certFile?: string;
    keyFile?: string;
    /** PEM contents instead of paths (the operator's connection resources, from Secrets). */
    ca?: string;
    cert?: string;
    key?: string;
    /** TLS before the server's INFO (the server must be configured with `handshake_first`). */
    handshakeFirst?: boolean;
  };
  /**
   * Credentials held in memory rather than named files: the operator's connection resources read
   * them from Secrets and rebuild the connection when a Secret changes. Not read from env.
   */
  creds?: string;
  nkeySeed?: string;
  token?: string;
  /** JetStream domain (a leaf node's or a hub's JetStream, reached through `$JS.<domain>.API`). */
  jsDomain?: string;
}

const DEFAULT_URL = 'nats://127.0.0.1:4222';

/** A setting whose value is a path: `<NAME>` or `<NAME>_FILE` both name the file. */
function pathSetting(name: string, env: Env): string | undefined {
  return env[name] || env[`${name}_FILE`] || undefined;
}

/** A secret: the value itself, or the contents of the file `<NAME>_FILE` names. */
function secretSetting(name: string, env: Env): string | undefined {
  const direct = env[name];
  if (direct) return direct;
  const file = env[`${name}_FILE`];
  return file ? readFileSync(file, 'utf8').trim() : undefined;
}

export function natsAccessFromEnv(env: Env = process.env): NatsAccess {
  const caFile = pathSetting('NATS_TLS_CA', env);
  const certFile = pathSetting('NATS_TLS_CERT', env);
  const keyFile = pathSetting('NATS_TLS_KEY', env);
  // A password given directly wins; a password file is kept as a path and read at each connect.
  const passwordFile = env.NATS_PASSWORD ? undefined : env.NATS_PASSWORD_FILE || undefined;
  return {
    servers: (env.NATS_URL || DEFAULT_URL)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    user: secretSetting('NATS_USER', env),
    password: env.NATS_PASSWORD || (passwordFile ? readFileSync(passwordFile, 'utf8').trim() : undefined),
    passwordFile,
    credsFile: pathSetting('NATS_CREDS', env),
    tls: caFile || certFile ? { caFile, certFile, keyFile } : undefined,
  };
}

/** Credentials are functions, so nats.js reads the files again at every (re)connect. */
function authenticators(a: NatsAccess): Authenticator[] {
  const auth: Authenticator[] = [];
  if (a.user) {
    const file = a.passwordFile;
    auth.push(usernamePasswordAuthenticator(a.user, file ? () => readFileSync(file, 'utf8').trim() : a.password));
  }
  const creds = a.credsFile;
  if (creds) auth.push(credsAuthenticator(() => readFileSync(creds)));
  const enc = new TextEncoder();
  if (a.creds) auth.push(credsAuthenticator(enc.encode(a.creds)));
  if (a.nkeySeed) auth.push(nkeyAuthenticator(enc.encode(a.nkeySeed.trim())));
  if (a.token) auth.push(tokenAuthenticator(a.token));
  return auth;
}

/** Servers, name, credentials and TLS as nats.js takes them; reconnect policy is the caller's. */
export function natsConnectionOptions(a: NatsAccess, name: string): ConnectionOptions {
  const opts: ConnectionOptions = { servers: a.servers, name };
  const auth = authenticators(a);
  if (auth.length) opts.authenticator = auth;
  if (a.tls) {
    opts.tls = {
      ...(a.tls.caFile ? { caFile: a.tls.caFile } : {}),
      ...(a.tls.certFile ? { certFile: a.tls.certFile } : {}),
      ...(a.tls.keyFile ? { keyFile: a.tls.keyFile } : {}),
      ...(a.tls.ca ? { ca: a.tls.ca } : {}),
      ...(a.tls.cert ? { cert: a.tls.cert } : {}),
      ...(a.tls.key ? { key: a.tls.key } : {}),
      ...(a.tls.handshakeFirst ? { handshakeFirst: true } : {}),
    };
  }
  return opts;
}
