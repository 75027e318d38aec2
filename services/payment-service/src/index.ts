export { paymentService, resilienceConfig, type PaymentServiceOptions } from './definition.js';
export {
  HttpPaymentGateway,
  TransientGatewayError,
  PermanentGatewayError,
  type PaymentGateway,
  type ChargeRequest,
  type ChargeResult,
} from './gateway/client.js';
export { gatewayPolicy, type BreakerState, type ResilienceConfig } from './gateway/resilience.js';
export type { PaymentStatus, PaymentView } from './payments/repository.js';
