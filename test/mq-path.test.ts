import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { orderWorkflowId } from '../src/domain';
import { HEADERS } from '../src/mq/topology';
import { createOrder } from '../src/order/start';
import { activityTypes } from '../src/platform/history';
import { deleteTopology, eventually, testConfig } from './support/env';
import { paidNotification, type Stack, startStack } from './support/stack';

// Long ladder: nothing but the notification can settle these orders within the test.
const noPolls = { stepsMs: [3_600_000], repeatMs: 3_600_000 };

describe('MQ path on the real dev server, Postgres and RabbitMQ', () => {
  const config = testConfig('mq');
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(config);
  });
  afterAll(async () => {
    await stack?.stop();
    await deleteTopology(config);
  });

  const newOrder = (amount = 12_345) =>
    createOrder(
      { db: stack.db, client: stack.temporal, config },
      { amount, currency: 'CNY', payWithinMs: 3_600_000, pollLadder: noPolls },
    );

  const orderRow = async (id: string) => {
    const [row] = await stack.sql`select status, settled_by, trade_no, paid_at from orders where id = ${id}`;
    return row;
  };
  const eventRows = (id: string) =>
    stack.sql`select source, message_id from payment_events where order_id = ${id}`;

  it('a published paid event makes the order PAID with settled_by=mq and one payment_events row', async () => {
    const { order, workflowId } = await newOrder();
    const notification = paidNotification(order);
    await stack.publish(notification);

    const row = await eventually('order PAID', async () => {
      const r = await orderRow(order.id);
      return r?.status === 'PAID' ? r : undefined;
    });
    expect(row.settled_by).toBe('mq');
    expect(row.trade_no).toBe(notification.tradeNo);
    expect(await eventRows(order.id)).toEqual([{ source: 'mq', message_id: notification.messageId }]);

    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'mq', pollAttempts: 0 });
  });

  it('the same event published twice gives one transition and one event row', async () => {
    const { order, workflowId } = await newOrder();
    const notification = paidNotification(order);
    const deliveredBefore = stack.consumer?.stats.delivered ?? 0;
    await stack.publish(notification);
    await stack.publish(notification);
    await eventually('both deliveries handled', async () =>
      (stack.consumer?.stats.delivered ?? 0) >= deliveredBefore + 2 ? true : undefined,
    );
    await stack.temporal.workflow.getHandle(workflowId).result();

    expect((await orderRow(order.id))?.status).toBe('PAID');
    expect(await eventRows(order.id)).toHaveLength(1);
    const history = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    expect(activityTypes(history).filter((type) => type === 'markOrderPaidByNotice')).toHaveLength(1);
  });

  it('an event that arrives before the workflow exists starts it (signalWithStart)', async () => {
    const id = `ord_early_${randomUUID().slice(0, 8)}`;
    await stack.sql`insert into orders (id, amount, currency, pay_deadline) values (${id}, 500, 'CNY', now() + interval '1 hour')`;
    await stack.publish(paidNotification({ id, amount: 500, currency: 'CNY' }));
    const row = await eventually('early order PAID', async () => {
      const r = await orderRow(id);
      return r?.status === 'PAID' ? r : undefined;
    });
    expect(row.settled_by).toBe('mq');
    const result = await stack.temporal.workflow.getHandle(orderWorkflowId(id)).result();
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'mq' });
  });

  it('forged, malformed and unknown-order messages are parked with their reason and pay nothing', async () => {
    const { order } = await newOrder();
    const forged = paidNotification(order);
    await stack.publish(forged, { secret: 'an-attacker-secret-of-16+' });
    await stack.publish(paidNotification(order), { unsigned: true });
    await stack.publish('{"version":1, not json');
    await stack.publish(JSON.stringify({ version: 1, orderId: order.id, amount: 'lots' }));
    const unknown = paidNotification({
      id: `ord_nobody_${randomUUID().slice(0, 8)}`,
      amount: 1,
      currency: 'CNY',
    });
    await stack.publish(unknown);

    const parked = await eventually('five parked messages', async () => {
      const total = Object.values(stack.consumer?.stats.parked ?? {}).reduce((a, b) => a + b, 0);
      return total >= 5 ? stack.drainParking() : undefined;
    });
    const reasons = parked.map((m) => m.properties.headers?.[HEADERS.reason]).sort();
    expect(reasons).toEqual([
      'BAD_SIGNATURE',
      'BAD_SIGNATURE',
      'NOT_JSON',
      'SCHEMA_VIOLATION',
      'UNKNOWN_ORDER',
    ]);
    for (const message of parked) {
      expect(message.properties.headers?.[HEADERS.originalRoutingKey]).toBe('trade.paid');
      expect(message.properties.headers?.[HEADERS.attempts]).toBe(1);
      expect(String(message.properties.headers?.[HEADERS.detail])).not.toBe('');
    }
    expect((await orderRow(order.id))?.status).toBe('UNPAID');
    expect(await eventRows(order.id)).toHaveLength(0);
    const discrepancies =
      await stack.sql`select kind from payment_discrepancies where order_id = ${unknown.orderId}`;
    expect(discrepancies).toEqual([{ kind: 'UNKNOWN_ORDER' }]);
  });
});
