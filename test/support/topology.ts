/**
 * The platform's services and its JetStream topology, derived from their definitions: the kit
 * does not know the services, so whoever needs the whole platform's streams and consumers (tests,
 * the manifests' and the chart's checks, the NATS permissions) takes them from here.
 */
import { topologyOf, type ServiceDefinition, type Topology, type TopologyOptions } from '@orderflow/kit';
import { inventoryService } from '../../services/inventory-service/src/definition.js';
import { orderService } from '../../services/order-service/src/definition.js';
import { paymentService } from '../../services/payment-service/src/definition.js';

// Typed as plain definitions: the services' own state types stay theirs.
const DEFINITIONS = {
  'inventory-service': (): ServiceDefinition => inventoryService(),
  'payment-service': (): ServiceDefinition => paymentService(),
  'order-service': (): ServiceDefinition => orderService(),
};

export type ServiceName = keyof typeof DEFINITIONS;

/** The services of the platform by name (each definition's `name`; a test checks they agree). */
export const SERVICES: Readonly<Record<ServiceName, () => ServiceDefinition>> = DEFINITIONS;

/** The three definitions (inventory, payment, order: the order the consumers have always been listed in). */
export function platformDefinitions(): ServiceDefinition[] {
  return Object.values(SERVICES).map((make) => make());
}

/** The platform's topology: its streams and every consumer the definitions declare. */
export function platformTopology(opts: TopologyOptions = {}): Topology {
  return topologyOf(platformDefinitions(), opts);
}
