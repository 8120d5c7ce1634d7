import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import type { BenchContext } from './lib/context';
import { sleep } from './lib/env';
import { LatencyHistogram, type LatencySummary } from './lib/hist';
import { cpuMeter } from './lib/procs';
import { openLoop } from './lib/rate';

export interface FloorResult {
  offeredRate: number;
  orders: number;
  settled: number;
  throughput: number;
  /** Signal sent → the trivial activity ran. */
  latency: LatencySummary;
  /** client.workflow.start round trip (what createOrder pays on top of its INSERT). */
  start: LatencySummary;
  errors: string[];
  serverCpuMsPerOrder: number | null;
  machineBusyPct: number | null;
  /** The whole machine's busy CPU over the phase ÷ orders settled (the floor's worker is in the bench process). */
  machineCpuMsPerOrder: number | null;
}

/**
 * The Temporal floor on the same dev server: a bare workflow per order, started like an order's, then
 * after the same pay delay one signal wakes it and it runs one trivial activity. Its worker runs in this
 * process on its own task queue; the activity notes when it ran, on this process's clock.
 */
export async function runTemporalFloor(
  ctx: BenchContext,
  options: { rates: number[]; durationMs: number; payDelayMs: number },
): Promise<FloorResult[]> {
  const taskQueue = `${ctx.config.TEMPORAL_TASK_QUEUE}-floor`;
  const settledAt = new Map<string, number>();
  const connection = await NativeConnection.connect({ address: ctx.config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: ctx.config.TEMPORAL_NAMESPACE,
    taskQueue,
    workflowsPath: path.resolve(__dirname, 'floor-workflows'),
    activities: {
      async settle(id: string) {
        settledAt.set(id, Date.now());
      },
    },
  });
  const running = worker.run();
  const results: FloorResult[] = [];
  try {
    let run = 0;
    for (const rate of options.rates) {
      run++;
      settledAt.clear();
      const sentAt = new Map<string, number>();
      const start = new LatencyHistogram();
      const meter = cpuMeter();
      const generator = await openLoop(rate, options.durationMs, async (index) => {
        const id = `floor-${Date.now().toString(36)}-${run}-${index}`;
        const t0 = Date.now();
        const handle = await ctx.temporal.workflow.start('floorWorkflow', {
          workflowId: id,
          taskQueue,
          args: [id],
        });
        start.recordMs(Date.now() - t0);
        await sleep(options.payDelayMs);
        sentAt.set(id, Date.now());
        await handle.signal('go');
      });
      const until = Date.now() + 120_000;
      while (settledAt.size < sentAt.size && Date.now() < until) await sleep(25);
      const latency = new LatencyHistogram();
      let first = Number.POSITIVE_INFINITY;
      let last = 0;
      for (const [id, sent] of sentAt) {
        first = Math.min(first, sent);
        const done = settledAt.get(id);
        if (done === undefined) continue;
        latency.recordMs(done - sent);
        last = Math.max(last, done);
      }
      const cpu = meter.stop(latency.count);
      const seconds = (last - first) / 1000;
      const result: FloorResult = {
        offeredRate: rate,
        orders: generator.launched,
        settled: latency.count,
        throughput: seconds > 0 ? Math.round((latency.count / seconds) * 10) / 10 : 0,
        latency: latency.summary(),
        start: start.summary(),
        errors: generator.errors,
        serverCpuMsPerOrder: cpu.serverCpuMsPerOrder,
        machineBusyPct: cpu.machineBusyPct,
        machineCpuMsPerOrder:
          cpu.machineBusyMs !== null && latency.count > 0
            ? Math.round((cpu.machineBusyMs * 10) / latency.count) / 10
            : null,
      };
      results.push(result);
      ctx.log(
        `  temporal floor @ ${rate}/s: ${result.settled}/${result.orders}, ${result.throughput}/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms`,
      );
      await sleep(2_000);
    }
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
  }
  return results;
}
