import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderWorkflowId } from '../src/domain';
import { PaymentEventPublisher } from '../src/mq/publisher';
import { HEADERS, TRADE_PAID_ROUTING_KEY } from '../src/mq/topology';
import { createOrder } from '../src/order/start';
import { activityTypes } from '../src/platform/history';
import { orderStateQuery } from '../workflows/order';
import { deleteTopology, eventually, testConfig } from './support/env';
import { lazyTemporalClient, paidNotification, type Stack, startStack, TcpProxy } from './support/stack';

/**
 * The consumer's links of the reliability chain on the real services: duplicates, Temporal outages
 * (through a TCP proxy the test cuts), a RabbitMQ restart mid-stream and a graceful stop mid-batch.
 * Every test starts its own consumer(s), so none of them reads another test's messages.
 */

const run = promisify(execFile);
const RABBITMQCTL = process.env.RABBITMQCTL ?? '/usr/sbin/rabbitmqctl';

// Long ladder: nothing but a notification can settle these orders within the test.
const noPolls = { stepsMs: [3_600_000], repeatMs: 3_600_000 };

describe('consumer reliability on the real dev server, Postgres and RabbitMQ', () => {
  // A retry delay long enough to see a message sitting in the retry queue.
  const config = testConfig('consumer', { CONSUMER_RETRY_DELAY: '800' });
  let stack: Stack;
  /** Workflows a test may leave running (Temporal kept down): terminated at the end. */
  const openWorkflows = new Set<string>();
  const clients: Client[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    stack = await startStack(config, { consumer: false, simulator: true });
  });
  afterAll(async () => {
    for (const workflowId of openWorkflows) {
      await stack?.temporal.workflow
        .getHandle(workflowId)
        .terminate('test cleanup')
        .catch(() => {});
    }
    for (const client of clients) await client.connection.close().catch(() => {});
    for (const proxy of proxies) await proxy.close();
    await stack?.stop();
    await deleteTopology(config);
  });

  const newOrder = async (amount = 12_345) => {
    const created = await createOrder(
      { db: stack.db, client: stack.temporal, config },
      { amount, currency: 'CNY', payWithinMs: 3_600_000, pollLadder: noPolls },
    );
    return created;
  };
  const orderRow = async (id: string) => {
    const [row] = await stack.sql`select status, settled_by, trade_no from orders where id = ${id}`;
    return row;
  };
  const waitPaid = (id: string, timeoutMs = 20_000) =>
    eventually(
      `order ${id} PAID`,
      async () => {
        const row = await orderRow(id);
        return row?.status === 'PAID' ? row : undefined;
      },
      timeoutMs,
    );
  const eventRows = (id: string) =>
    stack.sql`select source, message_id from payment_events where order_id = ${id}`;
  const markOrderPaidCount = async (workflowId: string) => {
    const history = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    return activityTypes(history).filter(
      (type) => type === 'markOrderPaid' || type === 'markOrderPaidByNotice',
    ).length;
  };
  const totalParked = (parked: Record<string, number>) => Object.values(parked).reduce((a, b) => a + b, 0);
  /** A Temporal client through a proxy of its own, closed at the end. */
  const proxiedClient = async (options: { up: boolean }) => {
    const proxy = await TcpProxy.start(config.TEMPORAL_ADDRESS, options);
    proxies.push(proxy);
    const client = lazyTemporalClient(config, proxy.address);
    clients.push(client);
    return { proxy, client };
  };

  it('a notification published five times (simulator duplicate) settles the order exactly once', async () => {
    const consumer = stack.startConsumer();
    await consumer.ready;
    try {
      const { order, workflowId } = await newOrder();
      const simulator = stack.simulator as NonNullable<Stack['simulator']>;
      const trade = await fetch(`${simulator.url}/trades`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ orderId: order.id, amount: order.amount, currency: order.currency }),
      });
      expect(trade.status).toBe(201);
      const paid = await fetch(`${simulator.url}/trades/${order.id}/pay`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ faults: { duplicate: 5 } }),
      });
      expect(paid.status).toBe(200);
      const { notification } = (await paid.json()) as {
        notification: { messageId: string; copies: number; outcome: string };
      };
      expect(notification).toMatchObject({ outcome: 'published', copies: 5 });

      await eventually('all five copies handled', async () =>
        consumer.stats.delivered >= 5 ? true : undefined,
      );
      const result = await stack.temporal.workflow.getHandle(workflowId).result();
      expect(result).toMatchObject({ status: 'PAID', settledBy: 'mq', pollAttempts: 0 });

      expect(await markOrderPaidCount(workflowId)).toBe(1);
      expect(await eventRows(order.id)).toEqual([{ source: 'mq', message_id: notification.messageId }]);
      expect(await orderRow(order.id)).toMatchObject({ status: 'PAID', settled_by: 'mq' });
      expect(await stack.sql`select kind from payment_discrepancies where order_id = ${order.id}`).toEqual(
        [],
      );
      // Every copy after the first was recognised as one: by the workflow, or after it ended.
      const state = await stack.temporal.workflow.getHandle(workflowId).query(orderStateQuery);
      expect(state.noticesReceived).toBe(1);
      expect(state.duplicateNotices + consumer.stats.late).toBe(4);
      expect(consumer.stats).toMatchObject({ delivered: 5, retried: 0, parked: {} });
    } finally {
      await consumer.close();
    }
  });

  it('Temporal unreachable for a while: delayed retries through the retry queue, then delivered', async () => {
    const { proxy, client } = await proxiedClient({ up: false });
    // Enough attempts to outlast the outage; the default would park after five.
    const consumer = stack.startConsumer({ temporal: client, config: { CONSUMER_MAX_ATTEMPTS: 50 } });
    await consumer.ready;
    try {
      const { order, workflowId } = await newOrder();
      const notification = paidNotification(order);
      await stack.publish(notification);

      let seenInRetryQueue = false;
      await eventually('three retries, one seen waiting in the retry queue', async () => {
        if ((await stack.queueDepth(stack.topology.retryQueue)) > 0) seenInRetryQueue = true;
        return consumer.stats.retried >= 3 && seenInRetryQueue ? true : undefined;
      });
      expect(consumer.stats.delivered).toBe(0);
      expect((await orderRow(order.id))?.status).toBe('UNPAID');

      await proxy.up();
      const row = await waitPaid(order.id);
      expect(row.settled_by).toBe('mq');
      expect(row.trade_no).toBe(notification.tradeNo);
      await stack.temporal.workflow.getHandle(workflowId).result();
      expect(await eventRows(order.id)).toEqual([{ source: 'mq', message_id: notification.messageId }]);
      expect(consumer.stats.delivered).toBe(1);
      expect(consumer.stats.parked).toEqual({});
      expect(await stack.drainParking()).toEqual([]);
      expect(await stack.queueDepth(stack.topology.retryQueue)).toBe(0);
      expect(await stack.queueDepth(stack.topology.paySuccessQueue)).toBe(0);
    } finally {
      await consumer.close();
    }
  });

  it('Temporal down the whole time: parked RETRIES_EXHAUSTED after CONSUMER_MAX_ATTEMPTS', async () => {
    const { client } = await proxiedClient({ up: false });
    const consumer = stack.startConsumer({ temporal: client, config: { CONSUMER_MAX_ATTEMPTS: 3 } });
    await consumer.ready;
    try {
      const { order, workflowId } = await newOrder();
      openWorkflows.add(workflowId);
      const notification = paidNotification(order);
      await stack.publish(notification);

      const [parked, ...more] = await eventually('the message parked', async () =>
        totalParked(consumer.stats.parked) >= 1 ? stack.drainParking() : undefined,
      );
      expect(more).toEqual([]);
      expect(consumer.stats).toMatchObject({ retried: 2, delivered: 0, parked: { RETRIES_EXHAUSTED: 1 } });
      const headers = parked?.properties.headers ?? {};
      expect(parked?.properties.messageId).toBe(notification.messageId);
      expect(JSON.parse(parked?.content.toString() ?? '')).toEqual(notification);
      expect(headers[HEADERS.reason]).toBe('RETRIES_EXHAUSTED');
      expect(headers[HEADERS.attempts]).toBe(3);
      // Classified by the error's type (ServiceCallError), which names the service that failed.
      expect(String(headers[HEADERS.detail])).toMatch(/^3 attempts; last error: Temporal call failed: /);
      // Not the pay-success queue it came back from after each delay: where the payment service sent it.
      expect(headers[HEADERS.originalRoutingKey]).toBe(TRADE_PAID_ROUTING_KEY);
      expect(headers[HEADERS.originalExchange]).toBe(stack.topology.paymentExchange);
      // The broker's own record: it waited out the retry delay twice.
      const deaths = (headers['x-death'] ?? []) as { queue: string; reason: string; count: number }[];
      expect(deaths.find((d) => d.queue === stack.topology.retryQueue)).toMatchObject({
        reason: 'expired',
        count: 2,
      });

      expect((await orderRow(order.id))?.status).toBe('UNPAID');
      expect(await eventRows(order.id)).toEqual([]);
      expect(await stack.queueDepth(stack.topology.retryQueue)).toBe(0);
      expect(await stack.queueDepth(stack.topology.paySuccessQueue)).toBe(0);
    } finally {
      await consumer.close();
    }
  });

  it('a broker restart mid-stream loses nothing: every order PAID exactly once, nothing parked', async () => {
    const N = 30;
    const consumer = stack.startConsumer();
    await consumer.ready;
    const publisher = new PaymentEventPublisher({
      url: config.AMQP_URL,
      topology: stack.topology,
      secret: config.NOTIFY_HMAC_SECRET,
      // Outlast the restart: each attempt waits up to 3 s for a confirm, then backs off and tries again.
      publishTimeoutMs: 3_000,
      maxRetries: 20,
      retryBaseMs: 200,
      retryMaxMs: 1_000,
      reconnectSeconds: 1,
    });
    try {
      await publisher.waitForConnect();
      const orders = (await Promise.all(Array.from({ length: N }, (_, i) => newOrder(1_000 + i)))).map(
        (created) => created.order,
      );
      const notifications = orders.map((order) => paidNotification(order));

      // Steady pace: one every 150 ms, about 4.5 s in all, with the broker stopped and started meanwhile.
      const sentAt: number[] = [];
      const publishing = (async () => {
        const sent: Promise<void>[] = [];
        for (const notification of notifications) {
          sentAt.push(Date.now());
          sent.push(publisher.publishTradePaid(notification));
          await sleep(150);
        }
        return Promise.allSettled(sent);
      })();
      let stoppedAt = Number.POSITIVE_INFINITY;
      let startingAt = Number.NEGATIVE_INFINITY;
      try {
        await sleep(800);
        await run(RABBITMQCTL, ['stop_app'], { timeout: 60_000 });
        stoppedAt = Date.now();
        await sleep(1_000);
        startingAt = Date.now();
        await run(RABBITMQCTL, ['start_app'], { timeout: 60_000 });
      } finally {
        // Whatever happened above, leave the broker running for the next test and the next file.
        await run(RABBITMQCTL, ['start_app'], { timeout: 60_000 }).catch(() => {});
        await run(RABBITMQCTL, ['await_startup'], { timeout: 60_000 });
      }
      const outcomes = await publishing;
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
      // The restart really happened mid-stream: some publishes were made while the broker was stopped.
      expect(sentAt.filter((t) => t >= stoppedAt && t <= startingAt).length).toBeGreaterThan(0);
      expect(sentAt.filter((t) => t < stoppedAt).length).toBeGreaterThan(0);

      const ids = orders.map((o) => o.id);
      const rows = await eventually(
        `all ${N} orders PAID`,
        async () => {
          const paid = await stack.sql`
            select id, settled_by from orders where id = any(${ids}) and status = 'PAID'`;
          return paid.length === N ? paid : undefined;
        },
        40_000,
      );
      expect(rows.every((r) => r.settled_by === 'mq')).toBe(true);
      const events = await stack.sql`
        select order_id, message_id from payment_events where order_id = any(${ids}) and source = 'mq'`;
      expect(events).toHaveLength(N);
      expect(new Set(events.map((e) => e.message_id))).toEqual(
        new Set(notifications.map((n) => n.messageId)),
      );
      for (const order of orders) {
        expect(await markOrderPaidCount(orderWorkflowId(order.id))).toBe(1);
      }
      expect(consumer.stats.parked).toEqual({});
      expect(await stack.drainParking()).toEqual([]);
      // Copies redelivered after the restart (acks lost with the old channel) were recognised as duplicates.
      expect(consumer.stats.delivered).toBeGreaterThanOrEqual(N);
    } finally {
      await publisher.close({ timeoutMs: 1_000 });
      await consumer.close();
    }
  });

  it('close() mid-batch finishes the messages in flight; the rest stay queued for the next consumer', async () => {
    const N = 10;
    // Slow Temporal (400 ms each way), small prefetch: signals go out in waves of three, ~800 ms apart.
    const { proxy, client } = await proxiedClient({ up: true });
    proxy.latencyMs = 400;
    const first = stack.startConsumer({ temporal: client, config: { CONSUMER_PREFETCH: 3 } });
    await first.ready;
    const orders = (await Promise.all(Array.from({ length: N }, (_, i) => newOrder(2_000 + i)))).map(
      (created) => created.order,
    );
    const notifications = orders.map((order) => paidNotification(order));
    for (const notification of notifications) await stack.publish(notification);

    await eventually('the first delivery', async () => (first.stats.delivered >= 1 ? true : undefined));
    // Well inside the next wave: its signals are on the wire when close() is called.
    await sleep(250);
    const deliveredAtClose = first.stats.delivered;
    await first.close();
    const settledByFirst = first.stats.delivered;
    // close() waited for the ones in flight, and stopped taking new ones.
    expect(settledByFirst).toBeGreaterThan(deliveredAtClose);
    expect(settledByFirst).toBeLessThan(N);
    expect(first.stats.retried + totalParked(first.stats.parked)).toBe(0);

    const ids = orders.map((o) => o.id);
    const paidCount = async () =>
      (await stack.sql`select id from orders where id = any(${ids}) and status = 'PAID'`).length;
    // Each settled message is a signal Temporal accepted: its workflow pays the order, and no other does.
    await eventually('the settled orders PAID', async () =>
      (await paidCount()) === settledByFirst ? true : undefined,
    );
    // Every message the first consumer settled was acked: only the others are back in the queue.
    expect(await stack.queueDepth(stack.topology.paySuccessQueue)).toBe(N - settledByFirst);

    const second = stack.startConsumer();
    await second.ready;
    try {
      await eventually('all orders PAID', async () => ((await paidCount()) === N ? true : undefined));
      expect(second.stats.delivered).toBe(N - settledByFirst);
      expect(second.stats.late).toBe(0);
      const events = await stack.sql`
        select order_id from payment_events where order_id = any(${ids}) and source = 'mq'`;
      expect(events).toHaveLength(N);
      expect(await stack.drainParking()).toEqual([]);
    } finally {
      await second.close();
    }
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
