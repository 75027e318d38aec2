export * from './topology.js';
export * from './events/headers.js';
export * from './dlq/index.js';
export * from './reconcile/index.js';
