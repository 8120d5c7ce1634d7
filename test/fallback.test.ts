import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HEADERS } from '../src/mq/topology';
import { createOrder } from '../src/order/start';
import { type PayOptions, SimulatorClient } from '../tools/simulator/client';
import { deleteTopology, eventually, testConfig } from './support/env';
import { paidNotification, type Stack, startStack } from './support/stack';

/**
 * The fallback path end to end: the payment simulator in-process over HTTP (PROVIDER_URL points at
 * it), the worker polling it on a short ladder, and the consumer reading what the simulator publishes,
 * dropped, forged, underpaid or late.
 */

// Checks at 300 ms, 900 ms, then every 600 ms.
const shortLadder = { stepsMs: [300, 600], repeatMs: 600 };
const AMOUNT = 8_800;

describe('fallback path on the dev server with the real simulator over HTTP', () => {
  const config = testConfig('fallback');
  let stack: Stack;
  const orderIds: string[] = [];

  beforeAll(async () => {
    stack = await startStack(config, { simulator: true });
  });
  afterAll(async () => {
    if (stack) await stack.sql`delete from provider.trades where order_id = any(${orderIds})`;
    await stack?.stop();
    await deleteTopology(config);
  });

  const simulator = () => new SimulatorClient(stack.config.PROVIDER_URL);

  /** An order with the short ladder and its trade at the simulator, waiting for the buyer. */
  const newOrderWithTrade = async (payWithinMs = 30_000) => {
    const created = await createOrder(
      { db: stack.db, client: stack.temporal, config: stack.config },
      { amount: AMOUNT, currency: 'CNY', payWithinMs, pollLadder: shortLadder },
    );
    orderIds.push(created.order.id);
    const trade = await simulator().openTrade({ orderId: created.order.id, amount: AMOUNT, currency: 'CNY' });
    expect(trade).toMatchObject({ created: true, status: 'WAIT_BUYER_PAY' });
    return { ...created, tradeNo: trade.tradeNo };
  };

  const pay = (orderId: string, options: PayOptions) => simulator().pay(orderId, options);

  const orderRow = async (id: string) => {
    const [row] = await stack.sql`
      select status, settled_by, trade_no, close_reason from orders where id = ${id}`;
    return row;
  };
  const waitStatus = (id: string, status: string, timeoutMs = 20_000) =>
    eventually(
      `order ${id} ${status}`,
      async () => {
        const row = await orderRow(id);
        return row?.status === status ? row : undefined;
      },
      timeoutMs,
    );
  const events = (id: string) =>
    stack.sql`select source, message_id, trade_status from payment_events where order_id = ${id} order by id`;
  const discrepancies = (id: string) =>
    stack.sql`select kind, details from payment_discrepancies where order_id = ${id}`;

  it('a dropped notification: the ladder polls the provider and settles the order PAID by poll', async () => {
    const { order, workflowId, tradeNo } = await newOrderWithTrade();
    const { notification } = await pay(order.id, { faults: { drop: true } });
    expect(notification.outcome).toBe('dropped');

    const row = await waitStatus(order.id, 'PAID');
    expect(row).toMatchObject({ settled_by: 'poll', trade_no: tradeNo });
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'poll' });
    expect(result.pollAttempts).toBeGreaterThanOrEqual(1);
    const log = await events(order.id);
    expect(log.filter((e) => e.source === 'mq')).toEqual([]);
    expect(log.at(-1)).toMatchObject({ source: 'poll', trade_status: 'TRADE_SUCCESS' });
  });

  it('an order never paid closes at its deadline, and the trade is closed at the provider', async () => {
    const { order, workflowId } = await newOrderWithTrade(2_500);

    const row = await waitStatus(order.id, 'CLOSED');
    expect(row).toMatchObject({ settled_by: 'poll', close_reason: 'PAY_DEADLINE_PASSED' });
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'CLOSED', discrepancies: [] });
    // Ladder checks from 300 ms on (how many depends on the machine's speed), then the final check.
    expect(result.pollAttempts).toBeGreaterThanOrEqual(2);
    const trade = await simulator().getTrade(order.id);
    expect(trade).toMatchObject({ status: 'TRADE_CLOSED', paidAt: null });
    expect(trade?.closedAt).not.toBeNull();
    expect((await events(order.id)).at(-1)).toMatchObject({ source: 'poll', trade_status: 'TRADE_CLOSED' });
  });

  it('a buyer who pays the wrong amount: NEEDS_REVIEW with one AMOUNT_MISMATCH, never PAID', async () => {
    const { order, workflowId } = await newOrderWithTrade();
    const { trade } = await pay(order.id, { faults: { wrongAmount: true } });
    expect(trade.amount).toBe(AMOUNT - 1);

    await waitStatus(order.id, 'NEEDS_REVIEW');
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'NEEDS_REVIEW', discrepancies: ['AMOUNT_MISMATCH'] });
    const found = await discrepancies(order.id);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      kind: 'AMOUNT_MISMATCH',
      details: { expected: { amount: AMOUNT, currency: 'CNY' }, reported: { amount: AMOUNT - 1 } },
    });
  });

  it('a paid notice after the order CLOSED: order stays CLOSED, PAID_AFTER_CLOSE once despite redelivery', async () => {
    const { order, workflowId } = await newOrderWithTrade(2_000);
    await waitStatus(order.id, 'CLOSED');
    await stack.temporal.workflow.getHandle(workflowId).result();

    const consumer = stack.consumer as NonNullable<Stack['consumer']>;
    const lateBefore = consumer.stats.late;
    // The buyer's payment races the close at the provider: the closed trade is paid after all, and the
    // notice arrives three times.
    const { trade, notification } = await pay(order.id, { force: true, faults: { duplicate: 3 } });
    expect(notification).toMatchObject({ outcome: 'published', copies: 3 });
    await eventually('three late deliveries', async () =>
      consumer.stats.late >= lateBefore + 3 ? true : undefined,
    );
    // And once more, redelivered long after (same message id).
    await stack.publish(
      paidNotification(
        { id: order.id, amount: trade.amount, currency: 'CNY' },
        { messageId: notification.messageId, tradeNo: trade.tradeNo, paidAt: trade.paidAt ?? undefined },
      ),
    );
    await eventually('the redelivery handled', async () =>
      consumer.stats.late >= lateBefore + 4 ? true : undefined,
    );

    expect(await orderRow(order.id)).toMatchObject({ status: 'CLOSED', close_reason: 'PAY_DEADLINE_PASSED' });
    const found = await discrepancies(order.id);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      kind: 'PAID_AFTER_CLOSE',
      details: { messageId: notification.messageId, tradeNo: trade.tradeNo, amount: AMOUNT, source: 'mq' },
    });
    const mqEvents = (await events(order.id)).filter((e) => e.source === 'mq');
    expect(mqEvents).toEqual([
      { source: 'mq', message_id: notification.messageId, trade_status: 'TRADE_SUCCESS' },
    ]);
    expect(await stack.drainParking()).toEqual([]);
  });

  it('a forged notification is parked BAD_SIGNATURE, and the poll still settles the order PAID', async () => {
    const { order, workflowId, tradeNo } = await newOrderWithTrade();
    const { notification } = await pay(order.id, { faults: { forge: true } });
    expect(notification).toMatchObject({ outcome: 'published', copies: 1 });

    const parked = await eventually('the forged notice parked', async () => {
      const messages = await stack.drainParking();
      return messages.length > 0 ? messages : undefined;
    });
    expect(parked).toHaveLength(1);
    expect(parked[0]?.properties.messageId).toBe(notification.messageId);
    expect(parked[0]?.properties.headers?.[HEADERS.reason]).toBe('BAD_SIGNATURE');

    const row = await waitStatus(order.id, 'PAID');
    expect(row).toMatchObject({ settled_by: 'poll', trade_no: tradeNo });
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'poll' });
    expect((await events(order.id)).filter((e) => e.source === 'mq')).toEqual([]);
  });
});
