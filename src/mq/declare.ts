/**
 * Declares payrecon's RabbitMQ topology (exchanges, queues, bindings) for the configured AMQP_PREFIX.
 * Idempotent; run by scripts/setup.sh as `npx tsx src/mq/declare.ts`.
 */
import type { ChannelModel } from 'amqplib';
import { loadConfig } from '../platform/config';
import { redactUrl } from '../platform/redact';
import { connectAny } from './connect';
import { declareTopology, topologyFor } from './topology';

async function main(): Promise<void> {
  const config = loadConfig();
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);

  let connection: ChannelModel;
  try {
    connection = await connectAny(config.AMQP_URL, { timeoutMs: 5_000 });
  } catch (error) {
    console.error(`RabbitMQ is not reachable at ${redactUrl(config.AMQP_URL)}: ${(error as Error).message}`);
    process.exit(1);
  }

  try {
    const channel = await connection.createChannel();
    await declareTopology(channel, topology);
    await channel.close();
  } finally {
    await connection.close();
  }

  console.log(
    `RabbitMQ topology declared at ${redactUrl(config.AMQP_URL)} (prefix "${config.AMQP_PREFIX}"):`,
  );
  console.log(`  exchange ${topology.paymentExchange} (topic) -> queue ${topology.paySuccessQueue}`);
  console.log(`  queue    ${topology.retryQueue} (retry after ${topology.retryDelayMs} ms)`);
  console.log(`  exchange ${topology.errorExchange} (fanout) -> queue ${topology.parkingQueue}`);
}

main().catch((error: unknown) => {
  console.error(`declaring the RabbitMQ topology failed: ${(error as Error).message}`);
  process.exit(1);
});
