// Reconcile core (spec → JetStream config → plan → apply), independent of Kubernetes.
export * from './validate.js';
export * from './config.js';
export * from './duration.js';
export * from './server-version.js';
export * from './server-support.js';
export { NEWEST, type ChangeCheck, type FieldChange, type FieldRule } from './field-rule.js';
export * from './stream-fields.js';
export * from './consumer-fields.js';
export * from './plan.js';
export * from './apply.js';
export * from './subjects.js';
export * from './dead-letter-stream.js';
export * from './topology.js';
