/** What every /api/* route module is given. */
import type { Logger } from 'pino';
import type { Names, NatsManager, Topology } from '@orderflow/kit';
import type { ConsoleConfig } from '../config.js';
import type { JetStreamSampler } from '../sources/jetstream.js';
import type { SagaFigures, ServicesClient } from '../sources/services.js';

export interface ConsoleState {
  jetstream: JetStreamSampler;
  /** Latest saga figures scraped from order-service (undefined until the first scrape). */
  saga(): { figures?: SagaFigures; error?: string };
}

export interface RouteDeps {
  config: ConsoleConfig;
  log: Logger;
  nats: NatsManager;
  names: Names;
  topology: Topology;
  services: ServicesClient;
  state: ConsoleState;
}
