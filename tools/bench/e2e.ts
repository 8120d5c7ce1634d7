import { createOrder } from '../../src/order/start';
import type { Config } from '../../src/platform/config';
import { type Breakdown, breakdown } from './breakdown';
import type { BenchContext } from './lib/context';
import { type DriveResult, driveOrders, randomAmount } from './lib/drive';
import { configEnv, sleep } from './lib/env';
import { BenchProcess, cpuMeter } from './lib/procs';

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

/** Creates an order the way the shop does: row, workflow (default ladder and deadline), simulator trade. */
export function payreconOrderFactory(
  ctx: BenchContext,
  overrides: { pollLadder?: Config['POLL_LADDER'] } = {},
) {
  return async () => {
    const { order } = await createOrder(
      { db: ctx.db, client: ctx.temporal, config: ctx.config },
      {
        amount: randomAmount(),
        currency: 'CNY',
        ...(overrides.pollLadder
          ? { pollLadder: { stepsMs: overrides.pollLadder, repeatMs: overrides.pollLadder.at(-1) ?? 5_000 } }
          : {}),
      },
    );
    return { id: order.id, amount: order.amount, currency: order.currency };
  };
}

export function cpuPerOrder(before: number | null | undefined, after: number | null, orders: number) {
  if (before === null || before === undefined || after === null || orders === 0) return null;
  return Math.round(((after - before) * 1000 * 10) / orders) / 10;
}

/** End to end at each offered rate: payment published → order PAID in Postgres. */
export async function runE2E(
  ctx: BenchContext,
  service: RunningPayrecon,
  options: { rates: number[]; durationMs: number; payDelayMs: number },
): Promise<E2EResult[]> {
  const results: E2EResult[] = [];
  for (const rate of options.rates) {
    service.worker.resetPeak();
    service.consumer.resetPeak();
    const cpuBefore = [service.worker.cpuSeconds(), service.consumer.cpuSeconds()];
    const meter = cpuMeter();
    const result = await driveOrders(ctx, {
      rate,
      durationMs: options.durationMs,
      payDelayMs: options.payDelayMs,
      createOrder: payreconOrderFactory(ctx),
      drainTimeoutMs: 120_000,
    });
    const cpu = meter.stop(result.settled);
    results.push({
      ...result,
      ...cpu,
      workerPeakMb: service.worker.peakMb(),
      consumerPeakMb: service.consumer.peakMb(),
      workerCpuMsPerOrder: cpuPerOrder(cpuBefore[0], service.worker.cpuSeconds(), result.settled),
      consumerCpuMsPerOrder: cpuPerOrder(cpuBefore[1], service.consumer.cpuSeconds(), result.settled),
      breakdown: await breakdown(ctx.temporal, result.sentAt).catch(() => null),
    });
    ctx.log(
      `  payrecon @ ${rate}/s: ${result.settled}/${result.orders} settled, ${result.throughput}/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
    );
    await sleep(2_000);
  }
  return results;
}
