export { orderService } from './definition.js';
export { transition, type OrderStatus, type SagaInput } from './saga/transitions.js';
