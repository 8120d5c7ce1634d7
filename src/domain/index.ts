/**
 * The payment domain shared by workflows, activities, workers and the CLI: types and pure rules.
 * Everything here stays free of I/O: workflow code imports it.
 */
export * from './discrepancy';
export * from './order';
export * from './payment-notice';
export * from './refund-notice';
export * from './trade';
