import type { WorkerOptions } from '@temporalio/worker';
import { loadConfig } from '../../src/platform/config';
import { createLogger } from '../../src/platform/logger';
import { createOrderWorker } from '../../workers/worker';

/**
 * The real worker (workers/worker.ts's createOrderWorker) with extra Temporal WorkerOptions from
 * BENCH_WORKER_OPTIONS (JSON): one of the tuning knobs below, each a number.
 */
const TUNABLE = [
  'maxCachedWorkflows',
  'maxConcurrentWorkflowTaskExecutions',
  'maxConcurrentActivityTaskExecutions',
  'maxConcurrentLocalActivityExecutions',
  'maxConcurrentWorkflowTaskPolls',
  'maxConcurrentActivityTaskPolls',
  'workflowThreadPoolSize',
] as const;

function parseOptions(raw: string | undefined): Partial<WorkerOptions> {
  const parsed = JSON.parse(raw || '{}') as Record<string, unknown>;
  for (const [key, value] of Object.entries(parsed)) {
    if (!(TUNABLE as readonly string[]).includes(key) || typeof value !== 'number') {
      throw new Error(`BENCH_WORKER_OPTIONS: ${key} is not one of ${TUNABLE.join(', ')} with a number`);
    }
  }
  return parsed as Partial<WorkerOptions>;
}

async function main() {
  const config = loadConfig();
  const log = createLogger('worker', config.LOG_LEVEL);
  const tuning = parseOptions(process.env.BENCH_WORKER_OPTIONS);
  const { worker, run } = await createOrderWorker({
    config,
    metricsAddress: config.WORKER_METRICS_ADDRESS,
    tuning,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, options: tuning }, 'worker started');
  await run();
}

main().catch((error) => {
  console.error(`bench worker failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
