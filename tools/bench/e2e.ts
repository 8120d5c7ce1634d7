import { amqpUrls } from '../../src/mq/connect';
import { createOrder } from '../../src/order/start';
import type { Config } from '../../src/platform/config';
import { HttpPaymentGateway } from '../../src/provider/http';
import { type Breakdown, breakdown } from './breakdown';
import type { BenchContext } from './lib/context';
import { type DriveResult, driveOrders, randomAmount } from './lib/drive';
import { configEnv, sleep } from './lib/env';
import {
  type AttributedCpu,
  attributedCpuMeter,
  BenchProcess,
  cpuMeter,
  temporalServerPid,
} from './lib/procs';

/** VERIFY_PAID_NOTICES: read where an order is created and carried in its workflow's input. */
export type VerifyNotices = Config['VERIFY_PAID_NOTICES'];
/** ORDER_START_DELAY: read where an order is created (createOrder in the bench process); the workflow
 * finds its first check in its input (firstCheckAt), so the worker and consumer need not know it. */
export type StartDelay = Config['ORDER_START_DELAY'];

/** What one end-to-end phase's orders are created with; the phases of a rate share the processes. */
export interface PayreconDesign {
  verifyNotices: VerifyNotices;
  startDelay: StartDelay;
}

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
  /** ORDER_START_DELAY of the orders of this row (the cron baseline has none: null). */
  startDelay: StartDelay | null;
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
  /** The whole machine's busy CPU (/proc/stat, every process: also Postgres, RabbitMQ, the simulator,
   * the bench itself and anything else running) over the phase ÷ orders settled by MQ. */
  machineCpuMsPerMqOrder: number | null;
  /** The CPU of the processes the design's orders go through (lib/procs.ts attributedCpuMeter: its
   * services, the simulator, the Temporal server, Postgres backends of the bench database, the broker, the
   * bench process) ÷ orders settled by MQ; `designCpuParts`: the same per process, ms per MQ order. */
  designCpuMsPerMqOrder: number | null;
  designCpuParts: Record<string, number> | null;
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
  overrides: {
    pollLadder?: Config['POLL_LADDER'];
    verifyNotices?: VerifyNotices;
    startDelay?: StartDelay;
  } = {},
) {
  const gateway = new HttpPaymentGateway({ baseUrl: ctx.simulator.url });
  const config: Config = {
    ...ctx.config,
    VERIFY_PAID_NOTICES: overrides.verifyNotices ?? ctx.config.VERIFY_PAID_NOTICES,
    ORDER_START_DELAY: overrides.startDelay ?? ctx.config.ORDER_START_DELAY,
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

/** Busy CPU of the whole machine over a phase ÷ the orders of it settled by MQ. */
export function machineCpuPerMqOrder(busyMs: number | null, byPath: Record<string, number>) {
  const mq = byPath.mq ?? 0;
  return busyMs === null || mq === 0 ? null : Math.round((busyMs * 10) / mq) / 10;
}

/** Starts an attributed CPU meter over `processes`, the bench database's backends and the broker. */
export function designMeter(
  ctx: Pick<BenchContext, 'config' | 'simulatorPid'>,
  processes: Record<string, number | null | undefined>,
  options: { temporal: boolean } = { temporal: true },
) {
  const database = decodeURIComponent(new URL(ctx.config.DATABASE_URL).pathname.slice(1));
  const port = Number(new URL(amqpUrls(ctx.config.AMQP_URL)[0] ?? 'amqp://localhost').port || 5672);
  return attributedCpuMeter(
    {
      ...processes,
      simulator: ctx.simulatorPid,
      ...(options.temporal ? { temporal: temporalServerPid() } : {}),
    },
    database,
    port,
  );
}

/** An attributed CPU reading ÷ orders settled by MQ: the total and each part. */
export function perMqOrder(cpu: AttributedCpu, byPath: Record<string, number>) {
  const mq = byPath.mq ?? 0;
  if (mq === 0) return { designCpuMsPerMqOrder: null, designCpuParts: null };
  const per = (ms: number) => Math.round((ms * 10) / mq) / 10;
  return {
    designCpuMsPerMqOrder: per(cpu.totalMs),
    designCpuParts: Object.fromEntries(Object.entries(cpu.parts).map(([k, v]) => [k, per(v)])),
  };
}

/** A short name of a design in logs and tables. */
export function designTag(design: Partial<PayreconDesign>, all: PayreconDesign[]): string {
  const parts: string[] = [];
  if (new Set(all.map((d) => d.verifyNotices)).size > 1 || design.verifyNotices === 'always')
    parts.push(`verify ${design.verifyNotices}`);
  if (new Set(all.map((d) => d.startDelay)).size > 1 || design.startDelay === 'first-step')
    parts.push(`start delay ${design.startDelay}`);
  return parts.join(', ');
}

export function cpuPerOrder(before: number | null | undefined, after: number | null, orders: number) {
  if (before === null || before === undefined || after === null || orders === 0) return null;
  return Math.round(((after - before) * 1000 * 10) / orders) / 10;
}

/**
 * End to end at each offered rate and design (VERIFY_PAID_NOTICES × ORDER_START_DELAY): payment published
 * → order PAID in Postgres. The designs share the worker and consumer processes (both settings are read
 * where the order is created and travel in its workflow input) and run back to back at each rate, in
 * alternating order (at the 1st, 3rd, ... rate as given, at the others reversed), so they are measured
 * under the same load; `--rates 10,20,20,10` gives each rate both orders (A B, B A, A B, B A).
 */
export async function runE2E(
  ctx: BenchContext,
  service: RunningPayrecon,
  options: {
    rates: number[];
    durationMs: number;
    payDelayMs: number;
    designs: PayreconDesign[];
    /** Before measuring: each mode at the first rate for this long, not reported, so the processes' and a
     * fresh server's warm-up does not land on the first phase measured (it did not remove all of it in
     * tools/bench/README.md's run: swap the order too, e.g. --rates 10,20,20,10). */
    warmupMs: number;
  },
): Promise<E2EResult[]> {
  const results: E2EResult[] = [];
  const firstRate = options.rates[0];
  if (options.warmupMs > 0 && firstRate !== undefined) {
    for (const design of options.designs) {
      const warm = await driveOrders(ctx, {
        rate: firstRate,
        durationMs: options.warmupMs,
        payDelayMs: options.payDelayMs,
        createOrder: payreconOrderFactory(ctx, design),
        drainTimeoutMs: 60_000,
      });
      ctx.log(
        `  warm-up (not reported), ${designTag(design, options.designs) || 'defaults'} @ ${firstRate}/s: ${warm.settled}/${warm.orders} settled, p50 ${warm.latency.p50} ms`,
      );
      await sleep(2_000);
    }
  }
  for (const [index, rate] of options.rates.entries()) {
    const designs = index % 2 === 0 ? options.designs : [...options.designs].reverse();
    for (const design of designs) {
      service.worker.resetPeak();
      service.consumer.resetPeak();
      const cpuBefore = [service.worker.cpuSeconds(), service.consumer.cpuSeconds()];
      const meter = cpuMeter();
      const attributed = designMeter(ctx, { worker: service.worker.pid, consumer: service.consumer.pid });
      const result = await driveOrders(ctx, {
        rate,
        durationMs: options.durationMs,
        payDelayMs: options.payDelayMs,
        createOrder: payreconOrderFactory(ctx, design),
        drainTimeoutMs: 120_000,
      });
      const cpu = meter.stop(result.settled);
      const designCpu = perMqOrder(attributed.stop(), result.byPath);
      const workerCpuAfter = service.worker.cpuSeconds();
      const consumerCpuAfter = service.consumer.cpuSeconds();
      const queries = await providerQueriesPerPaidOrder(ctx, result.orderIds, result.byStatus.PAID ?? 0);
      results.push({
        ...result,
        ...cpu,
        ...design,
        machineCpuMsPerMqOrder: machineCpuPerMqOrder(cpu.machineBusyMs, result.byPath),
        ...designCpu,
        providerQueriesPerPaidOrder: queries,
        workerPeakMb: service.worker.peakMb(),
        consumerPeakMb: service.consumer.peakMb(),
        workerCpuMsPerOrder: cpuPerOrder(cpuBefore[0], workerCpuAfter, result.settled),
        consumerCpuMsPerOrder: cpuPerOrder(cpuBefore[1], consumerCpuAfter, result.settled),
        breakdown: await breakdown(ctx.temporal, result.sentAt).catch(() => null),
      });
      const tag = designTag(design, options.designs);
      ctx.log(
        `  payrecon${tag ? ` ${tag}` : ''} @ ${rate}/s: ${result.settled}/${result.orders} settled, ${result.throughput}/s, p50 ${result.latency.p50} ms, p95 ${result.latency.p95} ms, p99 ${result.latency.p99} ms, ${queries ?? '-'} provider queries/paid order`,
      );
      await sleep(2_000);
    }
  }
  // Report order: by design as given, then by rate (a rate given twice keeps its run order).
  const designIndex = (r: E2EResult) =>
    options.designs.findIndex((d) => d.verifyNotices === r.verifyNotices && d.startDelay === r.startDelay);
  return results.sort((a, b) => designIndex(a) - designIndex(b) || a.offeredRate - b.offeredRate);
}
