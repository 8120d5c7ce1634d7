import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { assertDatabaseReachable, createDatabase } from '../src/db/client';
import { watchStuckNotifications } from '../src/merchant/stuck';
import { assertSecretsConfigured, type Config, loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { temporalConnectionOptions } from '../src/platform/temporal';
import type { PaymentGateway } from '../src/provider/gateway';
import { createPaymentGateways, type PaymentGateways } from '../src/provider/select';
import { installWorkerRuntime } from './runtime';
import { workflowCode } from './workflow-bundle';

export interface OrderWorkerOptions {
  config: Config;
  /** Defaults to a gateway per provider PAYMENT_PROVIDERS enables; one PaymentGateway answers for every order. */
  gateway?: PaymentGateway | PaymentGateways;
  connection?: NativeConnection;
  /** Serve Prometheus metrics here (the worker process passes WORKER_METRICS_ADDRESS; tests none). */
  metricsAddress?: string;
  /** Extra Temporal tuning (task slots, pollers, cache size): the bench's worker variants. */
  tuning?: Partial<WorkerOptions>;
}

/** Builds the Temporal worker that runs order workflows and their activities. */
export async function createOrderWorker({
  config,
  gateway,
  connection,
  metricsAddress,
  tuning,
}: OrderWorkerOptions) {
  const metrics = installWorkerRuntime(
    config.LOG_LEVEL === 'debug' || config.LOG_LEVEL === 'trace' ? 'DEBUG' : 'WARN',
    metricsAddress,
  );
  const database = createDatabase(config.DATABASE_URL, { max: config.DATABASE_POOL_MAX });
  await assertDatabaseReachable(database.sql, config.DATABASE_URL);
  let ownConnection: NativeConnection | undefined;
  if (!connection) {
    try {
      // The same address, TLS and API key as the client's connection.
      ownConnection = await NativeConnection.connect(temporalConnectionOptions(config));
    } catch (error) {
      await database.close();
      throw new Error(
        `Temporal server is not reachable at ${config.TEMPORAL_ADDRESS}: ${(error as Error).message}`,
      );
    }
  }
  const code = workflowCode();
  const worker = await Worker.create({
    connection: connection ?? ownConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    // dist/workflow-bundle.js when built (npm run build), else workflows/ bundled now (tsx, vitest).
    ...code,
    activities: createActivities({
      db: database.db,
      gateway: gateway ?? createPaymentGateways(config),
      metrics,
      config,
      merchantAllowlist: config.MERCHANT_PRIVATE_ALLOWLIST,
    }),
    // Waiting orders evicted from the cache cost nothing until their timer fires (tools/bench/README.md).
    ...(config.WORKER_MAX_CACHED_WORKFLOWS ? { maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS } : {}),
    ...tuning,
  });
  return {
    worker,
    /** Which workflow code it runs, for the start-up log line. */
    workflows: 'workflowBundle' in code ? 'prebuilt bundle' : 'bundled at start',
    /** Runs until shutdown() is called, then releases the pool and connection. */
    async run() {
      const log = createLogger('worker', config.LOG_LEVEL);
      const stopWatch = watchStuckNotifications(database.db, metrics, (error) =>
        log.warn({ err: error }, 'counting stuck merchant notifications failed'),
      );
      try {
        await worker.run();
      } finally {
        stopWatch();
        await database.close();
        await ownConnection?.close();
      }
    },
  };
}

async function main() {
  const config = loadConfig();
  assertSecretsConfigured(config);
  const log = createLogger('worker', config.LOG_LEVEL);
  const { worker, run, workflows } = await createOrderWorker({
    config,
    metricsAddress: config.WORKER_METRICS_ADDRESS,
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log.info({ signal }, 'shutting down: finishing in-flight tasks');
      worker.shutdown();
    });
  }
  log.info(
    {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      address: config.TEMPORAL_ADDRESS,
      metrics: config.WORKER_METRICS_ADDRESS,
      workflows,
    },
    'worker started',
  );
  await run();
  log.info('worker stopped');
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`worker failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
