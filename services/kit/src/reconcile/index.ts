// Reconcile core (spec → JetStream config → plan → apply). Filled in by the operator work.
export {};
