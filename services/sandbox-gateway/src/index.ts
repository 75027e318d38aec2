export {
  createGatewayApp,
  startGateway,
  gatewayConfigFromEnv,
  type GatewayConfig,
  type GatewayStats,
  type Charge,
  type RunningGateway,
} from './gateway.js';
