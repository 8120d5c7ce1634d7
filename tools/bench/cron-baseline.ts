import { insertOrder } from '../../src/db/orders';
import { newOrderId } from '../../src/order/start';
import {
  cpuPerOrder,
  designMeter,
  type E2EResult,
  machineCpuPerMqOrder,
  perMqOrder,
  providerQueriesPerPaidOrder,
} from './e2e';
import { type FallbackResult, runFallback } from './fallback';
import type { BenchContext } from './lib/context';
import { driveOrders, randomAmount } from './lib/drive';
import { configEnv, sleep } from './lib/env';
import { BenchProcess, cpuMeter } from './lib/procs';

export const CRON_INTERVAL_MS = 20_000;

export interface CronBaselineResult {
  e2e: E2EResult[];
  fallback: FallbackResult | null;
}

/** The seeds' design creates only the row (no workflow); the driver opens the simulator trade. */
function cronOrderFactory(ctx: BenchContext) {
  return async () => {
    const row = await insertOrder(ctx.db, {
      id: newOrderId(),
      amount: randomAmount(),
      currency: 'CNY',
      payDeadline: new Date(Date.now() + ctx.config.PAY_DEADLINE),
    });
    return { id: row.id, amount: row.amount, currency: row.currency };
  };
}

/**
 * The seeds' design without Temporal (tools/bench/cron-service.ts, one process: consumer + 20 s scan) on the
 * same database, broker queue and simulator, at the same offered rates; then lost notifications, which
 * only its scan can find.
 */
export async function runCronBaseline(
  ctx: BenchContext,
  options: {
    rates: number[];
    durationMs: number;
    payDelayMs: number;
    fallback: { orders: number; rate: number; payDelayMaxMs: number } | null;
  },
): Promise<CronBaselineResult> {
  const service = new BenchProcess(
    'cron-baseline',
    'tools/bench/cron-service.ts',
    configEnv(ctx.config, { BENCH_CRON_INTERVAL_MS: String(CRON_INTERVAL_MS) }),
  );
  const results: E2EResult[] = [];
  let fallback: FallbackResult | null = null;
  try {
    await service.waitFor(/"msg":"cron baseline started"/);
    for (const rate of options.rates) {
      service.resetPeak();
      const cpuBefore = service.cpuSeconds();
      const meter = cpuMeter();
      // No Temporal server: the seeds' design does not use one (the dev server idles meanwhile).
      const attributed = designMeter(ctx, { consumer: service.pid }, { temporal: false });
      const result = await driveOrders(ctx, {
        rate,
        durationMs: options.durationMs,
        payDelayMs: options.payDelayMs,
        createOrder: cronOrderFactory(ctx),
        drainTimeoutMs: 120_000,
      });
      const cpu = meter.stop(result.settled);
      const designCpu = perMqOrder(attributed.stop(), result.byPath);
      const consumerCpuAfter = service.cpuSeconds();
      results.push({
        ...result,
        ...cpu,
        verifyNotices: null,
        startDelay: null,
        machineCpuMsPerMqOrder: machineCpuPerMqOrder(cpu.machineBusyMs, result.byPath),
        ...designCpu,
        providerQueriesPerPaidOrder: await providerQueriesPerPaidOrder(
          ctx,
          result.orderIds,
          result.byStatus.PAID ?? 0,
        ),
        workerPeakMb: null,
        consumerPeakMb: service.peakMb(),
        workerCpuMsPerOrder: null,
        consumerCpuMsPerOrder: cpuPerOrder(cpuBefore, consumerCpuAfter, result.settled),
        breakdown: null,
      });
      ctx.log(
        `  cron baseline @ ${rate}/s: ${result.settled}/${result.orders} settled, ${result.throughput}/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
      );
      await sleep(2_000);
    }
    if (options.fallback) {
      fallback = await runFallback(ctx, {
        design: 'cron baseline',
        mechanism: `scan of every unpaid order every ${CRON_INTERVAL_MS / 1000} s`,
        createOrder: cronOrderFactory(ctx),
        ...options.fallback,
        drainTimeoutMs: CRON_INTERVAL_MS * 2 + 10_000,
      });
    }
  } finally {
    await service.stop();
  }
  return { e2e: results, fallback };
}
