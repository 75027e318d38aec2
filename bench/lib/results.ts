import type { BrokerResults } from '../sections/broker.js';
import type { HttpResults } from '../sections/http.js';
import type { E2EResults } from '../sections/e2e.js';
import type { ProfileResults } from '../sections/profile.js';
import type { WakeupCost } from './wakeup-cost.js';

export interface Results {
  startedAt: string;
  quick: boolean;
  durationS: number;
  machine: {
    cpus: number;
    /** The bench's own Node: load generator, in-process consumers of the broker section. */
    node: string;
    /** The Node the services, gateway and HTTP baseline ran on, and where it came from. */
    serviceNode: string;
    loadavgAtStart: number[];
    busyBeforeStartPct: number;
    busyBeforeSectionPct: Record<string, number>;
    /** CPU per round trip of a bare Node TCP echo at a low and a higher rate (lib/wakeup-cost.ts). */
    wakeupCost?: WakeupCost[];
  };
  /** The NATS the figures are on, and the one measured beside it for comparison. */
  nats?: { main: string; compared?: string };
  broker?: BrokerResults;
  /** The broker section again on the compared NATS (the machine's 2.9). */
  brokerCompared?: BrokerResults;
  http?: HttpResults;
  e2e?: E2EResults[];
  profile?: ProfileResults;
  targets?: Array<{ target: string; measured: string; met: boolean }>;
  errors: string[];
}
