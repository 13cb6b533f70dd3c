export * from './wire-number';
export * from './mode';
export * from './symbol';
export * from './inputs';
export * from './budget-hash';
export * from './violation-event';
export * from './permit';
export * from './worker-heartbeat';
