export { inventoryService } from './definition.js';
export { MIGRATIONS } from './migrations.js';
export {
  mergeItems,
  planReservation,
  roundCents,
  type LineItem,
  type PricedItem,
  type ReservePlan,
  type Shortage,
  type StockLevel,
} from './stock/plan.js';
export * from './stock/repository.js';
export { parseSeed } from './seed.js';
