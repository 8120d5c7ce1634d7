// The worker bundles this file: it must only export workflows (and their signal/query definitions).
export * from './notification';
export * from './order';
export * from './reconciliation';
export * from './refund';
export * from './review';
