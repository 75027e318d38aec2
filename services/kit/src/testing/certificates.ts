/**
 * Throw-away certificates for tests of TLS against a real nats-server, made by openssl into a
 * directory the test owns: `<name>.pem` (certificate) and `<name>.key` (unencrypted key). They
 * are valid for one day, enough for any test run and useless after it.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** X.509 v3 extensions of a server certificate for this machine's loopback address. */
export const SERVER_CERT_EXT = 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n';
/** X.509 v3 extensions of a client certificate (mutual TLS). */
export const CLIENT_CERT_EXT = 'extendedKeyUsage=clientAuth\n';

function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  } catch (err) {
    const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
    throw new Error(`openssl ${args[0]} in ${dir} failed: ${stderr || (err as Error).message}`, { cause: err });
  }
}

/** openssl's `-name value` options from an object, in its order. */
const options = (o: Record<string, string>): string[] => Object.entries(o).flatMap(([k, v]) => [`-${k}`, v]);

/** A self-signed CA `<dir>/<name>.pem` with its key `<dir>/<name>.key`. */
export function makeTestCa(dir: string, name: string): void {
  const f = (n: string): string => join(dir, n);
  openssl(dir, [
    'req',
    '-x509',
    '-nodes',
    ...options({ newkey: 'rsa:2048', days: '1', subj: `/CN=${name}`, keyout: f(`${name}.key`), out: f(`${name}.pem`) }),
  ]);
}

/** A certificate `<dir>/<name>.pem` (key `<name>.key`) signed by the CA `<dir>/<ca>.pem`, with the extensions `ext`. */
export function makeTestCert(dir: string, ca: string, name: string, ext: string): void {
  const f = (n: string): string => join(dir, n);
  writeFileSync(f(`${name}.ext`), ext);
  openssl(dir, ['req', '-nodes', ...options({ newkey: 'rsa:2048', subj: `/CN=${name}`, keyout: f(`${name}.key`), out: f(`${name}.csr`) })]);
  openssl(dir, [
    'x509',
    '-req',
    '-CAcreateserial',
    ...options({
      in: f(`${name}.csr`),
      CA: f(`${ca}.pem`),
      CAkey: f(`${ca}.key`),
      days: '1',
      extfile: f(`${name}.ext`),
      out: f(`${name}.pem`),
    }),
  ]);
}

/** The usual set for mutual TLS: CA `ca`, a server certificate `server` and a client certificate `client`. */
export function makeTestTlsSet(dir: string): void {
  makeTestCa(dir, 'ca');
  makeTestCert(dir, 'ca', 'server', SERVER_CERT_EXT);
  makeTestCert(dir, 'ca', 'client', CLIENT_CERT_EXT);
}

/** nats-server arguments for mutual TLS with the set of makeTestTlsSet: its server certificate, clients verified against `ca`. */
export function natsMutualTlsArgs(dir: string): string[] {
  return [
    '--tls',
    '--tlscert',
    join(dir, 'server.pem'),
    '--tlskey',
    join(dir, 'server.key'),
    '--tlscacert',
    join(dir, 'ca.pem'),
    '--tlsverify',
  ];
}
