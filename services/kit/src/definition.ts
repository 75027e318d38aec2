/**
 * What a service is, declared: its consumers (which stream, which subject, under which durable
 * name), the events it emits, its routes and background work. Its consumer specs derive from them,
 * and so does the platform's topology (`topologyOf` over the definitions). `defineService` checks at
 * compile time that the handler map has exactly the declared consumers: a typo is an error, not a
 * service that silently consumes nothing.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { BaseConfig } from './config.js';
import type { Handlers } from './consumer/contract.js';
import type { Db } from './db/db.js';
import type { Migration } from './db/migrate.js';
import type { EventType } from './events/schemas.js';
import type { ReadinessCheck } from './http/ops.js';
import type { Metrics } from './metrics.js';
import type { NatsManager } from './nats/connection.js';
import type { OutboxRelay } from './outbox/relay.js';
import type { Names, Topology } from './topology.js';

export interface Lifecycle {
  start(): void | Promise<void>;
  stop(): Promise<void>;
}

/** Everything a service's code is given; nothing is reached through globals. */
export interface ServiceContext {
  config: BaseConfig;
  env: Record<string, string | undefined>;
  log: Logger;
  metrics: Metrics;
  db: Db;
  nats: NatsManager;
  names: Names;
  /** The platform's streams and this service's own consumers (not the other services'). */
  topology: Topology;
  relay: OutboxRelay;
}

/** Hono env of every service app: the correlation middleware sets `correlationId`. */
export type HttpEnv = { Variables: { correlationId: string } };

/** The platform's event streams (base names; a namespace prefixes them). */
export type StreamBase = 'ORDERS' | 'INVENTORY' | 'PAYMENTS';

/** One durable pull consumer: the stream it reads and its one filter subject (nats-server 2.9 allows one). */
export interface ConsumerDeclaration {
  stream: StreamBase;
  subject: string;
}

/** Consumers by durable name. */
export type ConsumerDeclarations = Readonly<Record<string, ConsumerDeclaration>>;

/** Handlers for each declared consumer, by durable name. */
export type HandlerMap<C extends ConsumerDeclarations> = { [K in keyof C]: Handlers };

/** H with no key outside C: an undeclared durable name fails to compile. */
type Exact<H, C> = H & Record<Exclude<keyof H, keyof C>, never>;

/**
 * A service. `setup(ctx)` builds the per-instance objects (metrics, breakers, processors) once per
 * started service; every other hook gets them as its second argument.
 */
export interface ServiceDefinition<
  C extends ConsumerDeclarations = ConsumerDeclarations,
  S = unknown,
  H extends HandlerMap<C> = HandlerMap<C>,
> {
  name: string;
  defaultPort: number;
  migrations: readonly Migration[];
  /** What it consumes: durable name → stream and subject. */
  consumers?: C;
  /** What it emits (through the outbox, from handlers and routes). */
  emits?: readonly EventType[];
  setup?(ctx: ServiceContext): S;
  routes(ctx: ServiceContext, state: S): Hono<HttpEnv>;
  /** Handlers for exactly the declared consumers. */
  handlers?(ctx: ServiceContext, state: S): Exact<H, C>;
  background?(ctx: ServiceContext, state: S): Lifecycle[];
  readiness?(ctx: ServiceContext, state: S): ReadinessCheck[];
  readyDetails?(ctx: ServiceContext, state: S): Record<string, unknown>;
}

/** Infers the consumer keys and the setup state, so the hooks are checked against them. */
export function defineService<
  const C extends ConsumerDeclarations = Record<never, never>,
  S = undefined,
  H extends HandlerMap<C> = HandlerMap<C>,
>(def: ServiceDefinition<C, S, H>): ServiceDefinition<C, S, H> {
  return def;
}
