import { randomBytes } from 'node:crypto';
import { connectAny } from '../../src/mq/connect';
import { topologyFor } from '../../src/mq/topology';
import { type Config, loadConfig } from '../../src/platform/config';

/** A unique suffix per test file, so files never read each other's queues or task queues. */
export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

/**
 * The configuration tests run with: the environment scripts/test.sh exports (test database, test
 * broker prefix), plus a prefix and task queue of this file's own.
 */
export function testConfig(
  name: string,
  overrides: Record<string, string> = {},
  purpose?: Parameters<typeof loadConfig>[1],
): Config {
  const suffix = uniqueSuffix();
  return loadConfig(
    {
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/payrecon_test',
      ...process.env,
      AMQP_PREFIX: `payrecon-test-${name}-${suffix}`,
      TEMPORAL_TASK_QUEUE: `payrecon-test-${name}-${suffix}`,
      CONSUMER_RETRY_DELAY: '300',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      // The tests' merchants (their own HTTP servers, the merchant simulator) listen on 127.0.0.1.
      MERCHANT_PRIVATE_ALLOWLIST: '127.0.0.1/32',
      ...overrides,
    },
    purpose,
  );
}

/** Deletes the exchanges and queues a test file declared under its own prefix. */
export async function deleteTopology(config: Config): Promise<void> {
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const connection = await connectAny(config.AMQP_URL);
  // An unheard 'error' event (a queue whose node is down) would crash the test run.
  connection.on('error', () => {});
  const channel = await connection.createChannel();
  channel.on('error', () => {});
  for (const queue of [topology.paySuccessQueue, topology.retryQueue, topology.parkingQueue]) {
    await channel.deleteQueue(queue);
  }
  await channel.deleteExchange(topology.paymentExchange);
  await channel.deleteExchange(topology.errorExchange);
  await connection.close();
}

/** Polls `probe` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}
