import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readParkedAt } from '../src/mq/parking';
import { declareTopology, topologyFor } from '../src/mq/topology';
import { deleteTopology, testConfig } from './support/env';

const run = promisify(execFile);
const RABBITMQCTL = process.env.RABBITMQCTL ?? '/usr/sbin/rabbitmqctl';

/**
 * The parking queue is read by operators again and again (`payrecon dlq list`: basic.get, then one
 * nack-requeue). RabbitMQ 4 gives every quorum queue a delivery limit of 20 and drops a message over it
 * when there is no dead-letter target. The broker here is 3.10, so the test gives this prefix's queues a
 * policy `delivery-limit: 2`, which 3.10 applies to quorum queues exactly like 4's default: reading a
 * quorum parking queue three times would drop its messages. The parking queue must not count deliveries.
 */
describe('the parking queue loses nothing however often it is read', () => {
  const config = testConfig('parking');
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const policy = `${config.AMQP_PREFIX}-delivery-limit`;

  beforeAll(async () => {
    const pattern = `^${config.AMQP_PREFIX.replaceAll('.', '\\.')}\\.`;
    await run(RABBITMQCTL, ['set_policy', '--apply-to', 'queues', policy, pattern, '{"delivery-limit":2}']);
  });
  afterAll(async () => {
    await run(RABBITMQCTL, ['clear_policy', policy]).catch(() => {});
    await deleteTopology(config);
  });

  it('is a classic queue, and 25 reads under a delivery-limit policy keep every message in order', async () => {
    const connection = await amqplib.connect(config.AMQP_URL);
    try {
      const channel = await connection.createConfirmChannel();
      await declareTopology(channel, topology);
      const ids = ['p1', 'p2', 'p3'];
      for (const messageId of ids) {
        channel.publish(topology.errorExchange, '', Buffer.from(`{"orderId":"${messageId}"}`), {
          persistent: true,
          messageId,
          headers: { 'x-payrecon-reason': 'BAD_SIGNATURE' },
        });
      }
      await channel.waitForConfirms();
      await channel.close();

      const { stdout } = await run(RABBITMQCTL, [
        'list_queues',
        '--quiet',
        '--no-table-headers',
        'name',
        'type',
      ]);
      expect(stdout).toMatch(new RegExp(`^${topology.parkingQueue}\\s+classic$`, 'm'));

      for (let read = 1; read <= 25; read++) {
        const parked = await readParkedAt(config.AMQP_URL, topology);
        expect(
          parked.map((m) => m.messageId),
          `read ${read}`,
        ).toEqual(ids);
      }
    } finally {
      await connection.close();
    }
  });
});
