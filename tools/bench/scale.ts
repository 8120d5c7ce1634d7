import { randomBytes } from 'node:crypto';
import { connectTemporal } from '../../src/platform/temporal';
import type { BenchContext } from './lib/context';
import { startDedicatedDevServer } from './lib/dev-server';
import { configEnv, sleep } from './lib/env';
import type { LatencySummary } from './lib/hist';
import { BenchProcess, readMemory } from './lib/procs';
import type { WaitingOrderInput } from './scale-workflows';

export interface ScaleResult {
  target: number;
  started: number;
  /** Workflows started per second (one client, `startConcurrency` starts in flight). */
  startRate: number;
  /** Started before the first sampled timer was due: how many waited at once. */
  waitingAtOnce: number;
  /** The worker's maxCachedWorkflows ('default': the SDK's, from the heap size). */
  workerCache: number | 'default';
  /** Workflow start → its first workflow task processed by the worker (did the worker keep up?). */
  firstTaskLag: LatencySummary;
  /** Seconds after the last start until the worker had run every first task (null: it had not). */
  catchUpSeconds: number | null;
  /** Worker RSS once every probe's first task ran and all wait, and its peak over the whole probe (MiB). */
  workerRssWaitingMb: number | null;
  workerPeakMb: number | null;
  /** The dedicated dev server's RSS with nothing, and with everything waiting (MiB). */
  serverRssBeforeMb: number | null;
  serverRssWaitingMb: number | null;
  /** Timers due during the probe (spread at `fireRate`/s); the others keep waiting. */
  sampled: number;
  fired: number;
  /** Timer due → workflow task with the fired timer started (workflow time). */
  timerLateness: LatencySummary;
  /** Timer due → the worker processed that workflow task. */
  processedLateness: LatencySummary;
  fireRate: number;
  outcome: 'ok' | 'partial' | 'failed';
  note: string;
}

interface ProbeStats {
  started: number;
  firstTask: LatencySummary;
  fired: number;
  early: number;
  timer: LatencySummary;
  processed: LatencySummary;
}

const SETTLE_MS = 15_000;
const CALIBRATION_STARTS = 200;
const FAR_AWAY_MS = 24 * 3600_000;
const EMPTY: LatencySummary = { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };

/**
 * How many waiting orders one dev server and one worker sustain. For each size N, on a dedicated,
 * throwaway dev server (same CLI and SQLite persistence as scripts/temporal-dev.sh; discarding it ends
 * the probe workflows) and a fresh worker process: N - `sample` bench workflows that each wait on one
 * durable timer due in a day (bench/scale-workflows); once the worker has run all their first tasks,
 * worker and server memory; then `sample` more whose timers are due at `fireRate` per second, and how
 * late each fired as the worker saw it, while all N wait.
 */
export async function runScale(
  ctx: BenchContext,
  options: {
    sizes: number[];
    sample: number;
    fireRate: number;
    startConcurrency: number;
    workerOptions?: Record<string, number>;
    serverPragmas?: string[];
  },
): Promise<ScaleResult[]> {
  const taskQueue = `${ctx.config.TEMPORAL_TASK_QUEUE}-scale`;
  const results: ScaleResult[] = [];
  for (const target of options.sizes) {
    const sampled = Math.min(target, options.sample);
    const result: ScaleResult = {
      target,
      started: 0,
      startRate: 0,
      waitingAtOnce: 0,
      workerCache: options.workerOptions?.maxCachedWorkflows ?? 'default',
      firstTaskLag: EMPTY,
      catchUpSeconds: null,
      workerRssWaitingMb: null,
      workerPeakMb: null,
      serverRssBeforeMb: null,
      serverRssWaitingMb: null,
      sampled,
      fired: 0,
      timerLateness: EMPTY,
      processedLateness: EMPTY,
      fireRate: options.fireRate,
      outcome: 'ok',
      note: '',
    };
    const server = await startDedicatedDevServer(options.serverPragmas);
    const serverRss = () => readMemory(server.pid)?.rssMb ?? null;
    result.serverRssBeforeMb = serverRss();
    const temporal = await connectTemporal({ ...ctx.config, TEMPORAL_ADDRESS: server.address });
    const worker = new BenchProcess(
      'scale-worker',
      'tools/bench/scale-worker.ts',
      configEnv(
        { ...ctx.config, TEMPORAL_ADDRESS: server.address, TEMPORAL_TASK_QUEUE: taskQueue },
        options.workerOptions ? { BENCH_WORKER_OPTIONS: JSON.stringify(options.workerOptions) } : {},
      ),
      { ipc: true },
    );
    let stats: ProbeStats = {
      started: 0,
      firstTask: EMPTY,
      fired: 0,
      early: 0,
      timer: EMPTY,
      processed: EMPTY,
    };
    worker.child.on('message', (message) => {
      stats = message as ProbeStats;
    });
    const start = (input: WaitingOrderInput) =>
      temporal.workflow.start('waitingOrderProbe', { workflowId: input.orderId, taskQueue, args: [input] });
    try {
      await worker.waitFor(/scale worker started/, 120_000);
      const run = randomBytes(3).toString('hex');
      // Calibration: how fast does this server start workflows? (Plans when the sampled timers are due.)
      const calibrationBegin = Date.now();
      let calibrated = 0;
      await Promise.all(
        Array.from({ length: options.startConcurrency }, async () => {
          while (calibrated < CALIBRATION_STARTS) {
            const id = `scale-${run}-calibration-${calibrated++}`;
            await start({
              orderId: id,
              amount: 9900,
              currency: 'CNY',
              dueAt: Date.now() + 2_000,
              calibration: true,
            });
          }
        }),
      );
      const calibratedRate = CALIBRATION_STARTS / ((Date.now() - calibrationBegin) / 1000);
      await sleep(3_000);
      let failures = 0;
      let lastError = '';
      const startsBegan = Date.now();
      let startingMs = 0;
      /** Starts `count` probes, `startConcurrency` at a time; stops after 20 failures. */
      const startMany = async (count: number, input: (index: number) => WaitingOrderInput) => {
        const began = Date.now();
        let next = 0;
        await Promise.all(
          Array.from({ length: options.startConcurrency }, async () => {
            while (next < count && failures < 20) {
              const index = next++;
              try {
                await start(input(index));
                result.started++;
              } catch (error) {
                failures++;
                lastError = error instanceof Error ? error.message : String(error);
              }
              if (result.started % 10_000 === 0 && result.started > 0) {
                const rate = result.started / ((Date.now() - startsBegan) / 1000);
                ctx.log(
                  `    ${result.started}/${target} started (${rate.toFixed(0)}/s), worker ran ${stats.started} first tasks, ${worker.rssMb()?.toFixed(0)} MiB, server ${serverRss()?.toFixed(0)} MiB`,
                );
              }
            }
          }),
        );
        startingMs += Date.now() - began;
      };

      // 1. N - sample waiting orders, due in a day: the load the sampled timers fire under.
      const background = target - sampled;
      const begin = Date.now();
      ctx.log(
        `    ${target}: calibrated at ${calibratedRate.toFixed(0)} starts/s; starting ${background} waiting`,
      );
      await startMany(background, (index) => ({
        orderId: `scale-${run}-${index}`,
        amount: 9900,
        currency: 'CNY',
        dueAt: begin + FAR_AWAY_MS,
      }));
      const startsDone = Date.now();
      // 2. Until the worker has run every first task (starts and workflow tasks share the server).
      const catchUpLimit = Math.max(300_000, (background / calibratedRate) * 3_000);
      while (stats.started < result.started && Date.now() - startsDone < catchUpLimit) await sleep(500);
      if (stats.started >= result.started) {
        result.catchUpSeconds = Math.round((Date.now() - startsDone) / 100) / 10;
      } else {
        result.note += `the worker had run ${stats.started}/${result.started} first tasks ${catchUpLimit / 1000} s after the last start; `;
      }
      await sleep(2_000);
      result.workerRssWaitingMb = worker.rssMb();
      result.serverRssWaitingMb = serverRss();

      // 3. The sampled timers, due once they have all started, `fireRate` per second.
      const firstDue = Date.now() + ((sampled / calibratedRate) * 1000) / 0.75 + SETTLE_MS;
      const lastSampleDue = firstDue + ((sampled - 1) * 1000) / options.fireRate;
      await startMany(sampled, (index) => ({
        orderId: `scale-${run}-sample-${index}`,
        amount: 9900,
        currency: 'CNY',
        dueAt: Math.max(firstDue + (index * 1000) / options.fireRate, Date.now() + 10_000),
      }));
      if (Date.now() < firstDue) result.waitingAtOnce = result.started;
      result.startRate = startingMs > 0 ? Math.round(result.started / (startingMs / 1000)) : 0;
      if (failures > 0) {
        if (result.started < target) result.outcome = 'failed';
        result.note += `${failures} starts failed, stopped at ${result.started} (last: ${lastError.slice(0, 160)}); `;
      }
      const expected = Math.min(sampled, result.started);
      const until = Math.max(lastSampleDue, Date.now()) + 120_000;
      while (stats.fired < expected && Date.now() < until) await sleep(500);
      await sleep(1_200);
      result.fired = stats.fired;
      result.firstTaskLag = stats.firstTask;
      result.timerLateness = stats.timer;
      result.processedLateness = stats.processed;
      if (result.fired < expected) {
        if (result.outcome === 'ok') result.outcome = 'partial';
        result.note += `${expected - result.fired} sampled timers had not fired 120 s after the last was due; `;
      }
      if (stats.early > 0) result.note += `${stats.early} fired early; `;
    } catch (error) {
      result.outcome = 'failed';
      result.note += error instanceof Error ? error.message : String(error);
    } finally {
      result.workerPeakMb = worker.peakMb();
      await worker.stop();
      await temporal.connection.close().catch(() => {});
      await server.stop();
    }
    result.note = result.note.replace(/; $/, '');
    results.push(result);
    ctx.log(
      `  scale ${target}: ${result.started} started (${result.startRate}/s), worker ${result.workerRssWaitingMb?.toFixed(0)} MiB waiting / ${result.workerPeakMb?.toFixed(0)} MiB peak, server ${result.serverRssWaitingMb?.toFixed(0)} MiB, timer lateness p50 ${result.timerLateness.p50} ms p99 ${result.timerLateness.p99} ms (${result.fired}/${sampled}), ${result.outcome}`,
    );
  }
  return results;
}
