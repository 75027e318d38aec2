/**
 * A nats-server in operator mode for the tests, the decentralized-auth way `nsc` sets one up: an
 * operator JWT, a system account and JetStream-enabled accounts, all signed with fresh nkeys by
 * @nats-io/jwt, served by the memory resolver (`resolver: MEMORY` + `resolver_preload`, no account
 * server). Users get `.creds` files (user JWT + seed) as a NatsConnection's Secret holds them.
 */
import { writeFileSync } from 'node:fs';
import {
  createAccount,
  createOperator,
  createUser,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fmtCreds,
  type KeyPair,
  type OperatorLimits,
} from '@nats-io/jwt';

/**
 * No limit on anything. The JWT carries only the limits given and the server reads a missing one
 * as 0 (no connections, no subscriptions, no JetStream), so every one is spelled out; the
 * JetStream limits are what enable JetStream for the account.
 */
const UNLIMITED: OperatorLimits = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
};

export interface TestAccount {
  name: string;
  key: KeyPair;
  /** A `.creds` file of a new user of this account. */
  creds(user?: string): Promise<string>;
  /** A `.creds` file whose user JWT is this account's but whose seed is another user's: the server refuses it. */
  mismatchedCreds(): Promise<string>;
}

export interface OperatorMode {
  accounts: Record<string, TestAccount>;
  /** Writes the server configuration to `path` (for `nats-server -c`). */
  writeConfig(path: string): void;
}

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

export async function operatorMode(accountNames: string[]): Promise<OperatorMode> {
  const operator = createOperator();
  const system = createAccount();
  const preload = new Map<string, string>();
  preload.set(system.getPublicKey(), await encodeAccount('SYS', system, {}, { signer: operator }));
  const operatorJwt = await encodeOperator('orderflow-test', operator, { system_account: system.getPublicKey() });

  const accounts: Record<string, TestAccount> = {};
  for (const name of accountNames) {
    const key = createAccount();
    preload.set(key.getPublicKey(), await encodeAccount(name, key, { limits: UNLIMITED }, { signer: operator }));
    accounts[name] = {
      name,
      key,
      async creds(user = `${name.toLowerCase()}-user`) {
        const u = createUser();
        return text(fmtCreds(await encodeUser(user, u, key), u));
      },
      async mismatchedCreds() {
        const u = createUser();
        return text(fmtCreds(await encodeUser(`${name.toLowerCase()}-user`, u, key), createUser()));
      },
    };
  }

  return {
    accounts,
    writeConfig(path) {
      const entries = [...preload].map(([pub, jwt]) => `  ${pub}: ${jwt}`).join('\n');
      writeFileSync(
        path,
        `operator: ${operatorJwt}\nsystem_account: ${system.getPublicKey()}\nresolver: MEMORY\nresolver_preload: {\n${entries}\n}\n`,
      );
    },
  };
}
