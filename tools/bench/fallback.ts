import { findPaymentEvents } from '../../src/db/orders';
import type { BenchContext } from './lib/context';
import { type BenchOrder, driveOrders } from './lib/drive';
import type { LatencySummary } from './lib/hist';

export interface FallbackResult {
  design: string;
  /** How the design notices a lost notification (payrecon: the ladder; the baseline: the scan). */
  mechanism: string;
  orders: number;
  settled: number;
  latency: LatencySummary;
  byPath: Record<string, number>;
  /** Provider status queries (payment_events with source poll) per order, until it settled. */
  providerQueriesPerOrder: number;
}

export interface FallbackOptions {
  design: string;
  mechanism: string;
  createOrder: (index: number) => Promise<BenchOrder>;
  orders: number;
  /** Orders per second. */
  rate: number;
  /** Buyers pay this long after the order was created: uniform in [0, payDelayMaxMs). */
  payDelayMaxMs: number;
  drainTimeoutMs: number;
}

/**
 * Every notification is dropped by the simulator (`{ drop: true }`): only the fallback path can settle
 * the orders. Latency is payment sent → order PAID, as in the end-to-end runs.
 */
export async function runFallback(ctx: BenchContext, options: FallbackOptions): Promise<FallbackResult> {
  const result = await driveOrders(ctx, {
    rate: options.rate,
    durationMs: (options.orders / options.rate) * 1000,
    payDelayMs: () => Math.random() * options.payDelayMaxMs,
    createOrder: options.createOrder,
    faults: { drop: true },
    drainTimeoutMs: options.drainTimeoutMs,
  });
  const polls = (await findPaymentEvents(ctx.db, result.orderIds)).filter((e) => e.source === 'poll').length;
  const fallback: FallbackResult = {
    design: options.design,
    mechanism: options.mechanism,
    orders: result.orders,
    settled: result.settled,
    latency: result.latency,
    byPath: result.byPath,
    providerQueriesPerOrder: Math.round((polls / Math.max(1, result.orders)) * 100) / 100,
  };
  ctx.log(
    `  ${options.design} fallback: ${fallback.settled}/${fallback.orders} settled, p50 ${fallback.latency.p50} ms, max ${fallback.latency.max} ms, ${fallback.providerQueriesPerOrder} queries/order`,
  );
  return fallback;
}
