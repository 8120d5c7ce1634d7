import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { findOrder } from '../src/db/orders';
import { createRefund, findRefund, RefundRefused } from '../src/db/refunds';
import { orderWorkflowId } from '../src/domain';
import { HEADERS, REFUND_ROUTING_KEY } from '../src/mq/topology';
import { requestRefund } from '../src/order/refund';
import { SimulatorClient } from '../tools/simulator/client';
import { inProcessCli } from './support/cli';
import { deleteTopology, eventually, testConfig } from './support/env';
import { createOrderWithTrade, paidNotification, type Stack, startStack } from './support/stack';

/**
 * Refunds on the real dev server, RabbitMQ, Postgres and the payment simulator: the provider's refund
 * notice (routing key trade.refunded) settles a refund through the consumer; a lost one is found by the
 * refund query; the paid notice that comes back after a refund changes nothing; racing partial refunds
 * never refund more than was paid; a refund notice nobody asked for is parked.
 */
const AMOUNT = 10_000;

describe('refunds on the real services', () => {
  // A short refund ladder, so a refund whose notice is lost is found by its first query (after 3 s).
  const config = testConfig('refund-mq', { REFUND_LADDER: '3s', REFUND_REPEAT: '3s' });
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

  /** An order paid over MQ: its trade opened by payrecon, paid at the simulator, its notice consumed. */
  const paidOrder = async () => {
    const { order, workflowId } = await createOrderWithTrade(stack, { amount: AMOUNT });
    const paid = await simulator.pay(order.id);
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({ status: 'PAID' });
    return { order, paid };
  };
  const refund = (orderId: string, amount?: number) =>
    requestRefund({ db: stack.db, client: stack.temporal, config: stack.config }, { orderId, amount });

  it('a full refund settled by the refund notice; the paid notice redelivered afterwards changes nothing', async () => {
    const { order, paid } = await paidOrder();
    // The provider answers "processing" first; its notice comes half a second later.
    await simulator.setTradeFaults(order.id, { refund: { processingMs: 500 } });
    const { refund: row, workflowId } = await refund(order.id);
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({
      phase: 'SUCCEEDED',
      settledBy: 'mq',
    });
    expect(await findOrder(stack.db, order.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: AMOUNT });
    expect(await simulator.getTrade(order.id)).toMatchObject({
      status: 'TRADE_CLOSED',
      refundedAmount: AMOUNT,
    });
    expect(await simulator.refundStats(order.id)).toMatchObject({ executions: 1 });
    expect(await findRefund(stack.db, row.id)).toMatchObject({ status: 'SUCCEEDED' });

    // The race of the source articles: the paid notice is delivered again after the refund.
    const notice = (paid as { notification?: { messageId?: string } }).notification;
    await stack.publish(
      paidNotification(order, {
        tradeNo: order.providerTradeNo ?? '',
        messageId: `${notice?.messageId ?? 'x'}-again`,
      }),
    );
    await eventually('the late paid notice recorded', async () => {
      const rows =
        await stack.sql`select trade_status from payment_events where order_id = ${order.id} and source = 'mq'`;
      return rows.filter((r) => r.trade_status === 'TRADE_SUCCESS').length >= 2 ? true : undefined;
    });
    expect(await findOrder(stack.db, order.id)).toMatchObject({ status: 'REFUNDED', refundedAmount: AMOUNT });
    const kinds = await stack.sql`select kind from payment_discrepancies where order_id = ${order.id}`;
    expect(kinds).toHaveLength(0);
    await expect(
      stack.temporal.workflow.getHandle(orderWorkflowId(order.id)).describe(),
    ).resolves.toMatchObject({
      status: { name: 'COMPLETED' },
    });
  });

  it('a refund whose notice is lost is found by the refund query; racing partial refunds never exceed what was paid', async () => {
    const { order } = await paidOrder();
    await simulator.setTradeFaults(order.id, { refund: { drop: true } });
    const results = await Promise.allSettled([refund(order.id, 6_000), refund(order.id, 6_000)]);
    const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
    expect(started).toHaveLength(1);
    expect(refused[0]).toBeInstanceOf(RefundRefused);
    const [only] = started;
    expect(await stack.temporal.workflow.getHandle(only?.workflowId ?? '').result()).toMatchObject({
      phase: 'SUCCEEDED',
      settledBy: 'poll',
    });
    expect(await findOrder(stack.db, order.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      refundedAmount: 6_000,
    });
    expect(await simulator.refundStats(order.id)).toMatchObject({ refunds: 1, executions: 1 });
  });

  it('payrecon refund create / show / list; a refund of more than is left is refused, exit 1', async () => {
    const { order } = await paidOrder();
    const over = await cli(['refund', 'create', order.id, '--amount', String(AMOUNT + 1)]);
    expect(over.code).toBe(1);
    expect(over.stderr).toContain(`more than the ${AMOUNT} left to refund`);
    expect((await cli(['refund', 'create', order.id, '--amount', 'x'])).code).toBe(2);
    const created = await cliJson<{ refund: { id: string; amount: number }; workflowId: string }>([
      'refund',
      'create',
      order.id,
      '--amount',
      '2500',
      '--reason',
      'one item returned',
    ]);
    expect(created.refund.amount).toBe(2_500);
    await stack.temporal.workflow.getHandle(created.workflowId).result();
    const shown = await cliJson<{ refund: { status: string } }>(['refund', 'show', created.refund.id]);
    expect(shown.refund.status).toBe('SUCCEEDED');
    const again = await cli(['refund', 'start', created.refund.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('is SUCCEEDED: nothing to start');
    const listed = await cliJson<{ refunds: { id: string }[] }>(['refund', 'list', '--order', order.id]);
    expect(listed.refunds.map((r) => r.id)).toEqual([created.refund.id]);
    expect(await findOrder(stack.db, order.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      refundedAmount: 2_500,
    });
  });

  it('refund start runs a stored refund whose workflow never started, once', async () => {
    const { order } = await paidOrder();
    // As if Temporal had been down right after the row was written.
    const row = await createRefund(stack.db, { orderId: order.id, amount: 1_000 });
    const started = await cliJson<{ workflowId: string }>(['refund', 'start', row.id]);
    expect(await stack.temporal.workflow.getHandle(started.workflowId).result()).toMatchObject({
      phase: 'SUCCEEDED',
    });
    const twice = await cli(['refund', 'start', row.id]);
    expect(twice.code).toBe(1);
    expect(await simulator.refundStats(order.id)).toMatchObject({ executions: 1 });
  });

  it('a refund notice for a refund nobody asked for is parked UNKNOWN_REFUND', async () => {
    const ghost = `ord_ghost${randomUUID().slice(0, 8)}`;
    const body = {
      version: 1,
      messageId: randomUUID(),
      orderId: ghost,
      outRequestNo: `${ghost}-R1`,
      refundNo: 'R1',
      status: 'REFUND_SUCCESS',
      amount: 100,
      currency: 'CNY',
      refundedAt: new Date().toISOString(),
    };
    await stack.publish(JSON.stringify(body), { routingKey: REFUND_ROUTING_KEY, messageId: body.messageId });
    await eventually('parked', async () =>
      (await stack.queueDepth(stack.topology.parkingQueue)) > 0 ? true : undefined,
    );
    const [parked] = await stack.drainParking();
    expect(parked?.properties.headers?.[HEADERS.reason]).toBe('UNKNOWN_REFUND');
    // Like an unknown order's notice, it is recorded for an operator.
    const recorded =
      await stack.sql`select kind, details from payment_discrepancies where order_id = ${ghost}`;
    expect(recorded).toEqual([
      {
        kind: 'UNKNOWN_REFUND',
        details: {
          messageId: body.messageId,
          outRequestNo: `${ghost}-R1`,
          refundNo: 'R1',
          status: 'REFUND_SUCCESS',
          amount: 100,
        },
      },
    ]);
  });

  it("the provider's explicit refusal (TRADE_FINISHED) fails a refund; the amount is free again; refund check asks a PROCESSING refund's provider now", async () => {
    const { order } = await paidOrder();
    await simulator.finishTrade(order.id);
    const { refund: row, workflowId } = await refund(order.id, 1_000);
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({ phase: 'FAILED' });
    expect(await findRefund(stack.db, row.id)).toMatchObject({
      status: 'FAILED',
      failureReason: expect.stringContaining('TRADE_FINISHED'),
    });
    expect(await simulator.refundStats(order.id)).toMatchObject({ refunds: 0, executions: 0 });

    const { order: other } = await paidOrder();
    // The provider's notice is lost and its answer takes a while: an operator asks now.
    await simulator.setTradeFaults(other.id, { refund: { drop: true, processingMs: 500 } });
    const created = await refund(other.id, 2_000);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const checked = await cliJson<{ refund: { status: string }; workflow: { checksDone: number } }>([
      'refund',
      'check',
      created.refund.id,
    ]);
    expect(checked.refund.status).toBe('SUCCEEDED');
    expect(checked.workflow.checksDone).toBe(1);
    const done = await cli(['refund', 'check', created.refund.id]);
    expect(done.code).toBe(1);
    expect(done.stderr).toContain('is SUCCEEDED');
  });
});
