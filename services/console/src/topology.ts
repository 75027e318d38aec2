/**
 * The platform's topology as the console reads it: the kit's streams and the consumers the three
 * service definitions declare (the dead-letter page lists every consumer's DLQ subject, empty ones
 * too). Taken from the definitions, so a consumer a service adds shows up here without a second list.
 */
import { topologyOf, type Topology } from '@orderflow/kit';
import { inventoryService } from '@orderflow/inventory-service';
import { orderService } from '@orderflow/order-service';
import { paymentService } from '@orderflow/payment-service';

export function platformTopology(namespace: string): Topology {
  return topologyOf([inventoryService(), paymentService(), orderService()], { namespace });
}
