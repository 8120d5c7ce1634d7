import type { TradeFaults } from '../../simulator/faults';
import type { BenchContext } from './context';
import { sleep } from './env';
import { LatencyHistogram, type LatencySummary } from './hist';
import { type SettlementStats, summarize } from './paid-watch';
import { openLoop } from './rate';

export interface BenchOrder {
  id: string;
  amount: number;
  currency: string;
  /** true: the design opened the order's trade itself (payrecon, through its gateway), so the driver
   * must not open it again; otherwise the driver opens it through the simulator (the cron baseline). */
  tradeOpened?: boolean;
}

export interface DriveOptions {
  /** Orders per second, created and (after payDelayMs) paid. */
  rate: number;
  durationMs: number;
  /** How long after its creation a buyer pays (ms), fixed or drawn per order. */
  payDelayMs: number | (() => number);
  /** Creates the order on the design under test (payrecon: trade + row + workflow; the cron baseline: row only). */
  createOrder: (index: number) => Promise<BenchOrder>;
  /** Per-payment fault knobs of the simulator, e.g. `{ drop: true }`. */
  faults?: TradeFaults;
  /** How long to wait for the last orders to settle after the last payment. */
  drainTimeoutMs: number;
}

export interface DriveResult extends SettlementStats {
  offeredRate: number;
  durationMs: number;
  /** Simulator pay request: trade update + publish with broker confirm (a part of every latency). */
  payRequest: LatencySummary;
  generator: { launched: number; failed: number; lateLaunches: number; errors: string[] };
  orderIds: string[];
  /** When each order's payment was sent (epoch ms). */
  sentAt: Map<string, number>;
}

export const randomAmount = () => 100 * (1 + Math.floor(Math.random() * 500));

/**
 * One offered rate: each arrival creates an order and, unless the design opened it, its simulator trade,
 * waits, then pays through the simulator; the watcher measures payment sent → order settled in Postgres.
 */
export async function driveOrders(
  ctx: Pick<BenchContext, 'simulator' | 'watcher'>,
  options: DriveOptions,
): Promise<DriveResult> {
  const { simulator, watcher } = ctx;
  watcher.reset();
  const payRequest = new LatencyHistogram();
  const orderIds: string[] = [];
  const sentAtById = new Map<string, number>();
  let firstSentAt = Number.POSITIVE_INFINITY;
  const generator = await openLoop(options.rate, options.durationMs, async (index) => {
    const order = await options.createOrder(index);
    orderIds.push(order.id);
    if (!order.tradeOpened) {
      await simulator.openTrade({ orderId: order.id, amount: order.amount, currency: order.currency });
    }
    const delay = typeof options.payDelayMs === 'number' ? options.payDelayMs : options.payDelayMs();
    if (delay > 0) await sleep(delay);
    const sentAt = Date.now();
    firstSentAt = Math.min(firstSentAt, sentAt);
    sentAtById.set(order.id, sentAt);
    watcher.track(order.id, sentAt);
    await simulator.pay(order.id, options.faults ? { faults: options.faults } : {});
    payRequest.recordMs(Date.now() - sentAt);
  });
  const settlements = await watcher.drain(options.drainTimeoutMs);
  return {
    offeredRate: options.rate,
    durationMs: options.durationMs,
    ...summarize(orderIds.length, Number.isFinite(firstSentAt) ? firstSentAt : Date.now(), settlements),
    payRequest: payRequest.summary(),
    generator: {
      launched: generator.launched,
      failed: generator.failed,
      lateLaunches: generator.lateLaunches,
      errors: generator.errors,
    },
    orderIds,
    sentAt: sentAtById,
  };
}
