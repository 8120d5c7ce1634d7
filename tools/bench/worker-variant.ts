import path from 'node:path';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { assertDatabaseReachable, createDatabase } from '../../src/db/client';
import { loadConfig } from '../../src/platform/config';
import { createLogger } from '../../src/platform/logger';
import { HttpPaymentGateway } from '../../src/provider/http';
import { installWorkerRuntime } from '../../workers/runtime';

/**
 * Bench-only copy of workers/worker.ts's createOrderWorker with extra Temporal WorkerOptions from
 * BENCH_WORKER_OPTIONS (JSON). Everything else (workflows, activities, pool, gateway, runtime) is the
 * real thing.
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
  const options = parseOptions(process.env.BENCH_WORKER_OPTIONS);
  const metrics = installWorkerRuntime('WARN', config.WORKER_METRICS_ADDRESS);
  const database = createDatabase(config.DATABASE_URL, { max: config.DATABASE_POOL_MAX });
  await assertDatabaseReachable(database.sql, config.DATABASE_URL);
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowsPath: path.resolve(__dirname, '../../workflows'),
    activities: createActivities({
      db: database.db,
      gateway: new HttpPaymentGateway({ baseUrl: config.PROVIDER_URL }),
      metrics,
    }),
    ...options,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  log.info({ taskQueue: config.TEMPORAL_TASK_QUEUE, options }, 'worker started');
  try {
    await worker.run();
  } finally {
    await database.close();
    await connection.close();
  }
}

main().catch((error) => {
  console.error(`bench worker failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
