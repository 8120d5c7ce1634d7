import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { orderWorkflowId } from '../src/domain';
import { reviewWorkflowId } from '../src/order/review';
import { createOrder } from '../src/order/start';
import { activityTypes } from '../src/platform/history';
import { SimulatorClient } from '../tools/simulator/client';
import { inProcessCli } from './support/cli';
import { deleteTopology, eventually, testConfig } from './support/env';
import { createOrderWithTrade, paidNotification, type Stack, startStack } from './support/stack';

/**
 * NEEDS_REVIEW is not a dead end: on the real dev server, RabbitMQ, Postgres and the simulator, a wrong
 * payment holds the order, a later payment by another trade is flagged, and an operator settles the
 * order with `payrecon review resolve`, through a workflow and a conditional update.
 */

describe('orders held for review', () => {
  const config = testConfig('review');
  let stack: Stack;
  let simulator: SimulatorClient;
  const { cli, cliJson } = inProcessCli(runCli, () => stack.config);

  beforeAll(async () => {
    stack = await startStack(config, { simulator: true });
    simulator = new SimulatorClient(stack.config.PROVIDER_URL);
  });
  afterAll(async () => {
    await stack?.stop();
    await deleteTopology(config);
  });

  /** An order whose buyer paid one fen short: the notice is checked with the provider, the order held. */
  const heldOrder = async () => {
    const { order, workflowId } = await createOrderWithTrade(stack, { amount: 5_000 });
    expect(order.providerTradeNo).toMatch(/\S/);
    await simulator.pay(order.id, { faults: { wrongAmount: true } });
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'NEEDS_REVIEW', discrepancies: ['AMOUNT_MISMATCH'] });
    return order;
  };
  const orderRow = async (id: string) =>
    (await stack.sql`select status, settled_by, trade_no, close_reason from orders where id = ${id}`)[0];
  const discrepancies = (id: string) =>
    stack.sql`select kind, resolved_at is not null as resolved, resolution from payment_discrepancies where order_id = ${id} order by id`;

  it('another trade paying a held order is flagged PAID_DURING_REVIEW; review resolve PAID settles it', async () => {
    const order = await heldOrder();
    // The buyer pays again, the right amount, by another trade: its notice reaches an ended workflow.
    await stack.publish(paidNotification(order, { tradeNo: `T-second-${randomUUID().slice(0, 8)}` }));
    await eventually('PAID_DURING_REVIEW', async () =>
      (await discrepancies(order.id)).some((d) => d.kind === 'PAID_DURING_REVIEW') ? true : undefined,
    );
    expect(await orderRow(order.id)).toMatchObject({ status: 'NEEDS_REVIEW' });

    const resolved = await cliJson<{ status: string; workflowId: string; resolvedDiscrepancies: string[] }>([
      'review',
      'resolve',
      order.id,
      '--to',
      'paid',
      '--note',
      'short payment accepted; second payment refunded',
    ]);
    expect(resolved).toMatchObject({ status: 'PAID', workflowId: reviewWorkflowId(order.id) });
    expect(resolved.resolvedDiscrepancies.sort()).toEqual(['AMOUNT_MISMATCH', 'PAID_DURING_REVIEW']);
    expect(await orderRow(order.id)).toMatchObject({
      status: 'PAID',
      settled_by: 'manual',
      trade_no: order.providerTradeNo,
    });
    expect((await discrepancies(order.id)).every((d) => d.resolved)).toBe(true);
    // The decision ran as a workflow with one conditional update; the order's own workflow stays ended.
    const history = await stack.temporal.workflow.getHandle(reviewWorkflowId(order.id)).fetchHistory();
    // The operator's PAID was checked with the provider (one trade query) before the conditional update.
    expect(activityTypes(history)).toEqual(['queryTrade', 'recordTradeSnapshot', 'resolveReview']);
    const again = await cli(['review', 'resolve', order.id, '--to', 'CLOSED', '--note', 'too late']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is PAID, not NEEDS_REVIEW');
    await expect(
      stack.temporal.workflow.getHandle(orderWorkflowId(order.id)).describe(),
    ).resolves.toMatchObject({ status: { name: 'COMPLETED' } });
  });

  it('review resolve CLOSED closes the order with the note and asks the provider to close the trade', async () => {
    const order = await heldOrder();
    // An operator's PAID naming a trade the provider does not report paid changes nothing (exit 1).
    const wrong = await cli([
      'review',
      'resolve',
      order.id,
      '--to',
      'PAID',
      '--trade-no',
      'T-TYPO',
      '--note',
      'x',
    ]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(
      `stays NEEDS_REVIEW: the provider reports trade ${order.providerTradeNo} paid, not T-TYPO`,
    );
    expect(await orderRow(order.id)).toMatchObject({ status: 'NEEDS_REVIEW' });
    const before = (
      await stack.sql`select count(*)::int as n from payment_events where order_id = ${order.id}`
    )[0];
    const closed = await cli(['review', 'resolve', order.id, '--to', 'CLOSED', '--note', 'refunded in full']);
    expect(closed.code).toBe(0);
    expect(await orderRow(order.id)).toMatchObject({
      status: 'CLOSED',
      settled_by: 'manual',
      close_reason: 'refunded in full',
    });
    // The provider was asked to close the trade; it answers for a paid trade that it stays paid.
    const events =
      await stack.sql`select source, trade_status from payment_events where order_id = ${order.id} order by id`;
    expect(events.length).toBe((before?.n ?? 0) + 1);
    expect(events.at(-1)).toMatchObject({ source: 'poll', trade_status: 'TRADE_SUCCESS' });
    // The command reports what the close answered: the trade was paid, so it stays paid (refund it).
    expect(closed.stdout).toMatch(/trade close:\s+TRADE_SUCCESS/);
  });

  it('an order whose trade the provider never opened (--no-trade) closes CLOSED at its deadline: nothing to close', async () => {
    const { order, workflowId } = await createOrder(
      { db: stack.db, client: stack.temporal, config: stack.config },
      { amount: 700, payWithinMs: 2_000, pollLadder: { stepsMs: [3_600_000], repeatMs: 3_600_000 } },
    );
    expect(order.providerTradeNo).toBeNull();
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'CLOSED', settledBy: 'poll', discrepancies: [] });
    expect(await orderRow(order.id)).toMatchObject({ status: 'CLOSED', close_reason: 'PAY_DEADLINE_PASSED' });
    expect(await discrepancies(order.id)).toEqual([]);
    // The final check and the close both found no trade at the simulator: recorded as the answers they are.
    const answers =
      await stack.sql`select source, trade_status from payment_events where order_id = ${order.id} order by id`;
    expect(answers.map((a) => a.trade_status)).toEqual(['NOT_FOUND', 'NOT_FOUND']);
  });

  it('refuses what it cannot do, with exit 2 for bad input', async () => {
    const usage = await cli(['review', 'resolve', 'ord_x', '--to', 'REFUNDED', '--note', 'x']);
    expect(usage.code).toBe(2);
    const blank = await cli(['review', 'resolve', 'ord_x', '--to', 'PAID', '--note', ' ']);
    expect(blank.code).toBe(2);
    const missing = await cli(['review', 'resolve', 'ord_nope', '--to', 'PAID', '--note', 'x']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no order ord_nope');
  });
});
