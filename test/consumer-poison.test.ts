import { randomUUID } from 'node:crypto';
import type { GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS } from '../src/mq/topology';
import { createOrder } from '../src/order/start';
import { deleteTopology, eventually, testConfig } from './support/env';
import { paidNotification, type Stack, startStack } from './support/stack';

/**
 * Messages an adversary (anyone allowed to publish to the exchange, no secret needed) can craft to
 * jam the consumer: headers that fit the client's 64 KiB field table only until payrecon adds its own,
 * a body of several MiB, header values of unusual AMQP types. Each must end in the parking queue with a
 * reason, and real notices behind them must still settle their orders. Prefetch 2, so two stuck
 * messages would stop all consumption.
 */
const noPolls = { stepsMs: [3_600_000], repeatMs: 3_600_000 };
/** With a short header or two, just under the 65,536-byte table the client encodes. */
const PAD_BYTES = 65_300;

describe('poison messages on the real broker', () => {
  const config = testConfig('poison', { CONSUMER_PREFETCH: '2', CONSUMER_PUBLISH_TIMEOUT: '1000' });
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(config);
  });
  afterAll(async () => {
    await stack?.stop();
    await deleteTopology(config);
  });

  const paidOrder = async () => {
    const { order } = await createOrder(
      { db: stack.db, client: stack.temporal, config },
      { amount: 4_200, currency: 'CNY', payWithinMs: 3_600_000, pollLadder: noPolls },
    );
    await stack.publish(paidNotification(order));
    return eventually(`order ${order.id} PAID by MQ`, async () => {
      const [row] = await stack.sql`select status from orders where id = ${order.id}`;
      return row?.status === 'PAID' ? order.id : undefined;
    });
  };

  const parkedCount = (n: number) =>
    eventually(`${n} messages parked`, async () => {
      const depth = await stack.queueDepth(stack.topology.parkingQueue);
      return depth >= n ? depth : undefined;
    });

  const reasonOf = (message: GetMessage) => {
    const headers = message.properties.headers ?? {};
    const death = Array.isArray(headers['x-death']) ? headers['x-death'][0]?.reason : undefined;
    return String(headers[HEADERS.reason] ?? `BROKER_${String(death).toUpperCase()}`);
  };

  it('headers that overflow 64 KiB once payrecon adds its own are parked with payrecon headers only', async () => {
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const messageId of ids) {
      await stack.publish('not a notice', {
        unsigned: true,
        messageId,
        headers: { 'x-pad': 'p'.repeat(PAD_BYTES) },
      });
    }
    // Behind the three jammers: a real notice must still pay its order.
    await paidOrder();
    await parkedCount(3);
    const parked = await stack.drainParking();
    expect(parked.map((m) => m.properties.messageId).sort()).toEqual([...ids].sort());
    for (const message of parked) {
      expect(reasonOf(message)).toBe('BAD_SIGNATURE');
      expect(message.properties.headers?.['x-pad']).toBeUndefined();
      expect(message.properties.headers?.[HEADERS.droppedHeaders]).toBe(1);
      expect(message.content.toString()).toBe('not a notice');
    }
    expect(stack.consumer?.stats.parked.BAD_SIGNATURE).toBe(3);
  });

  it('a body of several MiB is parked whole', async () => {
    const body = Buffer.alloc(6 * 1024 * 1024, 'x');
    const messageId = randomUUID();
    await stack.publish(body, { unsigned: true, messageId });
    await paidOrder();
    await parkedCount(1);
    const [message, ...rest] = await stack.drainParking();
    expect(rest).toHaveLength(0);
    expect(message?.properties.messageId).toBe(messageId);
    expect(message?.content.length).toBe(body.length);
    expect(message && reasonOf(message)).toBe('BAD_SIGNATURE');
  });

  it('header values of unusual AMQP types are parked with a reason, and nothing stays unacknowledged', async () => {
    const odd: Record<string, unknown> = {
      decimal: { '!': 'decimal', value: { places: 2, digits: 1999 } },
      timestamp: { '!': 'timestamp', value: Math.floor(Date.now() / 1000) },
      float: { '!': 'float', value: 1.5 },
      byte: { '!': 'byte', value: -3 },
      bytes: Buffer.from([0, 1, 2, 255]),
      array: [1, 'two', { three: 3 }, [4], null],
      nested: { a: { b: { c: 'deep' } } },
      void: null,
      big: 2 ** 53,
    };
    const ids = Object.keys(odd).map(() => randomUUID());
    await Promise.all(
      Object.entries(odd).map(([name, value], i) =>
        stack.publish('{"version":1}', { messageId: ids[i], headers: { [`x-odd-${name}`]: value } }),
      ),
    );
    await paidOrder();
    await parkedCount(ids.length);
    const parked = await stack.drainParking();
    expect(parked.map((m) => m.properties.messageId).sort()).toEqual([...ids].sort());
    for (const message of parked) expect(reasonOf(message)).toBe('SCHEMA_VIOLATION');
    expect(await stack.queueDepth(stack.topology.paySuccessQueue)).toBe(0);
  });

  it('close() returns after the poison: nothing is left waiting on a publish', async () => {
    const closing = stack.consumer?.close();
    const result = await Promise.race([
      closing?.then(() => 'closed'),
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), 15_000).unref()),
    ]);
    expect(result).toBe('closed');
  });
});
