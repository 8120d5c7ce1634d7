import type { Client } from '@temporalio/client';
import type { Sql } from '../../../src/db/client';
import { migrateDatabase } from '../../../src/db/migrate';
import { declareAndPurge, topologyFor } from '../../../src/mq/topology';
import { type Config, loadConfig } from '../../../src/platform/config';
import { migrateSimulatorSchema } from '../../simulator/db/migrate';

/**
 * Where a benchmark run lives, away from dev, test and chaos data: its own database (payrecon_bench),
 * RabbitMQ prefix and Temporal task queue. BENCH_DATABASE_URL overrides the database.
 */
export const BENCH_PREFIX = 'payrecon-bench';

export function benchConfig(overrides: Partial<Config> = {}, env: NodeJS.ProcessEnv = process.env): Config {
  // A developer-machine run with the public development secret, as `npm start` and the demo do: without
  // PAYRECON_ENV=development the worker and the consumer refuse that secret. An explicit value wins.
  const base = loadConfig({ ...env, PAYRECON_ENV: env.PAYRECON_ENV || 'development' });
  const url = new URL(base.DATABASE_URL);
  url.pathname = '/payrecon_bench';
  return {
    ...base,
    DATABASE_URL: env.BENCH_DATABASE_URL || url.toString(),
    AMQP_PREFIX: BENCH_PREFIX,
    TEMPORAL_TASK_QUEUE: BENCH_PREFIX,
    // Other engineers' workers may hold the default ports.
    WORKER_METRICS_ADDRESS: undefined,
    CONSUMER_METRICS_ADDRESS: undefined,
    ...overrides,
  };
}

/** The environment of a child process that runs with `config` (what loadConfig() there will read). */
export function configEnv(config: Config, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
    TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
    DATABASE_URL: config.DATABASE_URL,
    DATABASE_POOL_MAX: String(config.DATABASE_POOL_MAX),
    AMQP_URL: config.AMQP_URL,
    AMQP_PREFIX: config.AMQP_PREFIX,
    CONSUMER_PREFETCH: String(config.CONSUMER_PREFETCH),
    CONSUMER_MAX_ATTEMPTS: String(config.CONSUMER_MAX_ATTEMPTS),
    CONSUMER_RETRY_DELAY: String(config.CONSUMER_RETRY_DELAY),
    PAYRECON_ENV: config.PAYRECON_ENV,
    NOTIFY_HMAC_SECRET: config.NOTIFY_HMAC_SECRET,
    PROVIDER_URL: config.PROVIDER_URL,
    // The merchant simulator listens on 127.0.0.1: the SSRF guard must let the worker reach it.
    MERCHANT_PRIVATE_ALLOWLIST: config.MERCHANT_PRIVATE_ALLOWLIST ?? '127.0.0.1/32',
    SIMULATOR_PORT: String(config.SIMULATOR_PORT),
    POLL_LADDER: config.POLL_LADDER.join(','),
    POLL_REPEAT: String(config.POLL_REPEAT),
    PAY_DEADLINE: String(config.PAY_DEADLINE),
    VERIFY_PAID_NOTICES: config.VERIFY_PAID_NOTICES,
    ORDER_START_DELAY: config.ORDER_START_DELAY,
    WORKER_METRICS_ADDRESS: config.WORKER_METRICS_ADDRESS ?? 'off',
    CONSUMER_METRICS_ADDRESS: config.CONSUMER_METRICS_ADDRESS ?? 'off',
    LOG_LEVEL: config.LOG_LEVEL,
    ...extra,
  };
}

/** Creates and migrates the bench database (payrecon's tables and the simulator's) and empties it: every run starts from zero rows. */
export async function prepareDatabase(config: Config, sql: () => Sql): Promise<void> {
  await migrateDatabase(config.DATABASE_URL);
  await migrateSimulatorSchema(config.DATABASE_URL);
  await sql()`truncate orders, payment_events, payment_discrepancies, provider.trades`;
}

/** Declares the prefix's topology and purges its queues (leftovers of an aborted run). */
export async function prepareBroker(config: Config): Promise<void> {
  await declareAndPurge(config.AMQP_URL, topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY));
}

/** Terminates workflows an aborted bench run left running on `taskQueue`; returns how many. */
export async function terminateLeftovers(temporal: Client, taskQueue: string): Promise<number> {
  let terminated = 0;
  const running = temporal.workflow.list({
    query: `TaskQueue="${taskQueue}" AND ExecutionStatus="Running"`,
  });
  for await (const execution of running) {
    await temporal.workflow
      .getHandle(execution.workflowId, execution.runId)
      .terminate('left over by an aborted bench run')
      .catch(() => {});
    terminated++;
  }
  return terminated;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
