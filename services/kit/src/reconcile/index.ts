// Reconcile core (spec → JetStream config → plan → apply), independent of Kubernetes.
export * from './validate.js';
export * from './config.js';
export * from './plan.js';
export * from './apply.js';
export * from './subjects.js';
export * from './dead-letter-stream.js';
export * from './topology.js';
