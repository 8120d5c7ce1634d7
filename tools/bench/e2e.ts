import { createOrder } from '../../src/order/start';
import type { Config } from '../../src/platform/config';
import { HttpPaymentGateway } from '../../src/provider/http';
import { type Breakdown, breakdown } from './breakdown';
import type { BenchContext } from './lib/context';
import { type DriveResult, driveOrders, randomAmount } from './lib/drive';
import { configEnv, sleep } from './lib/env';
import { BenchProcess, cpuMeter } from './lib/procs';

/** VERIFY_PAID_NOTICES: read where an order is created and carried in its workflow's input. */
export type VerifyNotices = Config['VERIFY_PAID_NOTICES'];

/** A payrecon build to measure: the real worker, or the bench-only worker with other options. */
export interface PayreconVariant {
  name: string;
  /** Extra Temporal WorkerOptions (maxCachedWorkflows, maxConcurrent...): runs bench/worker-variant.ts. */
  workerOptions?: Record<string, number>;
  /** Environment overrides for both processes (CONSUMER_PREFETCH, DATABASE_POOL_MAX, ...). */
  env?: Record<string, string>;
}

export interface RunningPayrecon {
  worker: BenchProcess;
  consumer: BenchProcess;
  stop(): Promise<void>;
}

/** Starts the worker and the consumer as separate processes, so each one's memory can be read. */
export async function startPayrecon(config: Config, variant: PayreconVariant): Promise<RunningPayrecon> {
  const custom = Boolean(variant.workerOptions);
  const env = configEnv(config, {
    ...variant.env,
    ...(variant.workerOptions ? { BENCH_WORKER_OPTIONS: JSON.stringify(variant.workerOptions) } : {}),
  });
  const worker = new BenchProcess(
    'worker',
    custom ? 'tools/bench/worker-variant.ts' : 'workers/worker.ts',
    env,
  );
  const consumer = new BenchProcess('consumer', 'workers/consumer.ts', env);
  const stop = async () => {
    await Promise.all([worker.stop(), consumer.stop()]);
  };
  try {
    await Promise.all([
      worker.waitFor(/"msg":"worker started"/, 120_000),
      consumer.waitFor(/"msg":"consumer started"/),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }
  return { worker, consumer, stop };
}

export interface E2EResult extends DriveResult {
  /** VERIFY_PAID_NOTICES of the orders of this row (the cron baseline has none: null). */
  verifyNotices: VerifyNotices | null;
  /** Provider status queries (payment_events with source poll: ladder checks and notice verifications)
   * ÷ orders that ended PAID. */
  providerQueriesPerPaidOrder: number | null;
  workerPeakMb: number | null;
  consumerPeakMb: number | null;
  /** CPU time per settled order (user + system, ms) of the worker and the consumer processes. */
  workerCpuMsPerOrder: number | null;
  consumerCpuMsPerOrder: number | null;
  /** The Temporal dev server's CPU per settled order (when it is the one scripts/temporal-dev.sh started;
   * shared with anything else using it), and how busy the whole machine was (%). */
  serverCpuMsPerOrder: number | null;
  machineBusyPct: number | null;
  /** Where the time went, from a sample of workflow histories (payrecon only). */
  breakdown: Breakdown | null;
}

/**
 * Creates an order the way the shop does: payrecon opens the trade through its gateway (the simulator's
 * HTTP API) and keeps its number, then the row and the workflow (default ladder and deadline), with
 * VERIFY_PAID_NOTICES of `overrides.verifyNotices` (else the run's configuration) in its input.
 */
export function payreconOrderFactory(
  ctx: BenchContext,
  overrides: { pollLadder?: Config['POLL_LADDER']; verifyNotices?: VerifyNotices } = {},
) {
  const gateway = new HttpPaymentGateway({ baseUrl: ctx.simulator.url });
  const config: Config = {
    ...ctx.config,
    VERIFY_PAID_NOTICES: overrides.verifyNotices ?? ctx.config.VERIFY_PAID_NOTICES,
  };
  return async () => {
    const { order, tradeError } = await createOrder(
      { db: ctx.db, client: ctx.temporal, config, gateway },
      {
        amount: randomAmount(),
        currency: 'CNY',
        ...(overrides.pollLadder
          ? { pollLadder: { stepsMs: overrides.pollLadder, repeatMs: overrides.pollLadder.at(-1) ?? 5_000 } }
          : {}),
      },
    );
    if (tradeError) throw new Error(`the simulator did not open the trade of ${order.id}: ${tradeError}`);
    return { id: order.id, amount: order.amount, currency: order.currency, tradeOpened: true };
  };
}

/** Provider status queries recorded for these orders (payment_events, source poll) per order that ended PAID. */
export async function providerQueriesPerPaidOrder(
  ctx: Pick<BenchContext, 'sql'>,
  orderIds: string[],
  paid: number,
): Promise<number | null> {
  if (paid === 0 || orderIds.length === 0) return null;
  const [row] = await ctx.sql<{ n: number }[]>`
    select count(*)::int as n from payment_events where source = 'poll' and order_id = any(${orderIds})`;
  return Math.round(((row?.n ?? 0) / paid) * 100) / 100;
}

export function cpuPerOrder(before: number | null | undefined, after: number | null, orders: number) {
  if (before === null || before === undefined || after === null || orders === 0) return null;
  return Math.round(((after - before) * 1000 * 10) / orders) / 10;
}

/**
 * End to end at each offered rate and VERIFY_PAID_NOTICES mode: payment published → order PAID in
 * Postgres. The modes share the worker and consumer processes (the setting travels in each order's
 * workflow input) and run back to back at each rate, in alternating order (at the 1st, 3rd, ... rate as
 * given, at the others reversed), so they are measured under the same load; `--rates 10,20,20,10` gives
 * each rate both orders (A B, B A, A B, B A).
 */
export async function runE2E(
  ctx: BenchContext,
  service: RunningPayrecon,
  options: {
    rates: number[];
    durationMs: number;
    payDelayMs: number;
    verifyModes: VerifyNotices[];
    /** Before measuring: each mode at the first rate for this long, not reported, so the processes' and a
     * fresh server's warm-up does not land on the first phase measured (it did not remove all of it in
     * tools/bench/README.md's run: swap the order too, e.g. --rates 10,20,20,10). */
    warmupMs: number;
  },
): Promise<E2EResult[]> {
  const results: E2EResult[] = [];
  const firstRate = options.rates[0];
  if (options.warmupMs > 0 && firstRate !== undefined) {
    for (const verifyNotices of options.verifyModes) {
      const warm = await driveOrders(ctx, {
        rate: firstRate,
        durationMs: options.warmupMs,
        payDelayMs: options.payDelayMs,
        createOrder: payreconOrderFactory(ctx, { verifyNotices }),
        drainTimeoutMs: 60_000,
      });
      ctx.log(
        `  warm-up (not reported), verify ${verifyNotices} @ ${firstRate}/s: ${warm.settled}/${warm.orders} settled, p50 ${warm.latency.p50} ms`,
      );
      await sleep(2_000);
    }
  }
  for (const [index, rate] of options.rates.entries()) {
    const modes = index % 2 === 0 ? options.verifyModes : [...options.verifyModes].reverse();
    for (const verifyNotices of modes) {
      service.worker.resetPeak();
      service.consumer.resetPeak();
      const cpuBefore = [service.worker.cpuSeconds(), service.consumer.cpuSeconds()];
      const meter = cpuMeter();
      const result = await driveOrders(ctx, {
        rate,
        durationMs: options.durationMs,
        payDelayMs: options.payDelayMs,
        createOrder: payreconOrderFactory(ctx, { verifyNotices }),
        drainTimeoutMs: 120_000,
      });
      const cpu = meter.stop(result.settled);
      const workerCpuAfter = service.worker.cpuSeconds();
      const consumerCpuAfter = service.consumer.cpuSeconds();
      const queries = await providerQueriesPerPaidOrder(ctx, result.orderIds, result.byStatus.PAID ?? 0);
      results.push({
        ...result,
        ...cpu,
        verifyNotices,
        providerQueriesPerPaidOrder: queries,
        workerPeakMb: service.worker.peakMb(),
        consumerPeakMb: service.consumer.peakMb(),
        workerCpuMsPerOrder: cpuPerOrder(cpuBefore[0], workerCpuAfter, result.settled),
        consumerCpuMsPerOrder: cpuPerOrder(cpuBefore[1], consumerCpuAfter, result.settled),
        breakdown: await breakdown(ctx.temporal, result.sentAt).catch(() => null),
      });
      const tag =
        options.verifyModes.length > 1 || verifyNotices === 'always' ? ` verify ${verifyNotices}` : '';
      ctx.log(
        `  payrecon${tag} @ ${rate}/s: ${result.settled}/${result.orders} settled, ${result.throughput}/s, p50 ${result.latency.p50} ms, p95 ${result.latency.p95} ms, ${queries ?? '-'} provider queries/paid order`,
      );
      await sleep(2_000);
    }
  }
  // Report order: by mode as given, then by rate (a rate given twice keeps its run order).
  const modeIndex = (r: E2EResult) => options.verifyModes.indexOf(r.verifyNotices ?? 'on-mismatch');
  return results.sort((a, b) => modeIndex(a) - modeIndex(b) || a.offeredRate - b.offeredRate);
}
