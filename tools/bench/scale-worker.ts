import path from 'node:path';
import { type InjectedSinks, NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { loadConfig } from '../../src/platform/config';
import { installWorkerRuntime } from '../../workers/runtime';
import { LatencyHistogram } from './lib/hist';
import type { ProbeSinks } from './scale-workflows';

/**
 * The scale probe's worker process: runs bench/scale-workflows and measures, on this process's clock,
 * how late each timer fired (workflow time at the fire) and when the worker got to process it.
 * Sends its counts to the parent over IPC once a second. BENCH_WORKER_OPTIONS as in worker-variant.ts.
 */
async function main() {
  const config = loadConfig();
  installWorkerRuntime('WARN');
  const options = JSON.parse(process.env.BENCH_WORKER_OPTIONS || '{}') as Partial<WorkerOptions>;
  const timer = new LatencyHistogram();
  const processed = new LatencyHistogram();
  let fired = 0;
  let early = 0;
  let started = 0;
  const firstTask = new LatencyHistogram();
  const sinks: InjectedSinks<ProbeSinks> = {
    probe: {
      started: {
        fn(_info, startedAt) {
          started++;
          firstTask.recordMs(Math.max(0, Date.now() - startedAt));
        },
        callDuringReplay: false,
      },
      fired: {
        fn(_info, dueAt, firedAt) {
          fired++;
          if (firedAt < dueAt) early++;
          timer.recordMs(Math.max(0, firedAt - dueAt));
          processed.recordMs(Math.max(0, Date.now() - dueAt));
        },
        callDuringReplay: false,
      },
    },
  };
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowsPath: path.resolve(__dirname, 'scale-workflows'),
    sinks,
    ...options,
  });
  const report = () =>
    process.send?.({
      started,
      firstTask: firstTask.summary(),
      fired,
      early,
      timer: timer.summary(),
      processed: processed.summary(),
    });
  const reporter = setInterval(report, 1_000);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  console.log(JSON.stringify({ msg: 'scale worker started', options }));
  await worker.run();
  clearInterval(reporter);
  report();
  await connection.close();
}

main().catch((error) => {
  console.error(`scale worker failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
