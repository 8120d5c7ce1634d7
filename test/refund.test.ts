import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import { findOrder, insertOrder, markOrderPaid } from '../src/db/orders';
import { createRefund, findRefund, RefundRefused } from '../src/db/refunds';
import type { RefundNotice } from '../src/domain';
import { handleNoticeForEndedWorkflow } from '../src/order/late-notice';
import { refundWorkflowId, refundWorkflowInput, requestRefund } from '../src/order/refund';
import { installWorkerRuntime } from '../workers/runtime';
import { refundNoticeSignal } from '../workflows/refund';
import { testConfig } from './support/env';
import { HistoryRecorder, REFUND_SCENARIOS } from './support/histories';
import { paidNotice } from './support/notice';
import { ScriptedGateway } from './support/scripted-gateway';
import { scenarioOf, startTestWorker, startTimeSkipping } from './support/time-skipping';

/**
 * Refunds on the time-skipping test server (their ladder spans a day), the real test database and a
 * scripted provider: by query, by notice, refused, unanswered; and the lattice rules on Postgres.
 */
const config = testConfig('refund');
const database = createDatabase(config.DATABASE_URL, { max: 5 });
const gateway = new ScriptedGateway();
const histories = new HistoryRecorder(REFUND_SCENARIOS);
const scenario = scenarioOf(histories);
const AMOUNT = 10_000;
let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;

beforeAll(async () => {
  installWorkerRuntime('ERROR');
  env = await startTimeSkipping();
  worker = await startTestWorker(env, {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities({ db: database.db, gateway }),
  });
});

afterAll(async (file) => {
  await worker?.stop();
  await env?.teardown();
  await database.close();
  await histories.finish(file);
});

/** A paid order (its payment settled through the conditional update), scripted at the provider. */
async function paidOrder(script: Parameters<ScriptedGateway['script']>[1] = {}): Promise<string> {
  const orderId = `rf_${randomUUID().slice(0, 12)}`;
  await insertOrder(database.db, {
    id: orderId,
    amount: AMOUNT,
    currency: 'CNY',
    payDeadline: new Date(Date.now() + 3_600_000),
  });
  await markOrderPaid(database.db, {
    orderId,
    tradeNo: `SIM-${orderId}`,
    paidAt: new Date(),
    settledBy: 'mq',
  });
  gateway.script(orderId, { amount: AMOUNT, ...script });
  return orderId;
}

const refundsConfig = { ...config, TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE };

function refund(orderId: string, amount?: number) {
  return requestRefund({ db: database.db, client: env.client, config: refundsConfig }, { orderId, amount });
}

describe('refunds (time-skipping)', () => {
  scenario(
    'refund-by-query',
    'no notice: refund queries at 10s and 1m find it; the order PARTIALLY_REFUNDED',
    async () => {
      const orderId = await paidOrder({ refundSucceedsAtQuery: 2 });
      const { refund: row, workflowId } = await refund(orderId, 4_000);
      const handle = env.client.workflow.getHandle(workflowId);
      expect(await handle.result()).toMatchObject({ phase: 'SUCCEEDED', queries: 2, settledBy: 'poll' });
      expect(await findOrder(database.db, orderId)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        refundedAmount: 4_000,
      });
      expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'SUCCEEDED', settledBy: 'poll' });
      // The same out_request_no on every call: the provider holds one refund.
      expect([...gateway.refunds.values()].filter((r) => r.orderId === orderId)).toHaveLength(1);
      return handle;
    },
  );

  scenario(
    'refund-by-notice',
    "the provider's refund notice settles it at once; a full refund makes it REFUNDED",
    async () => {
      const orderId = await paidOrder();
      const { refund: row, workflowId } = await refund(orderId);
      const handle = env.client.workflow.getHandle(workflowId);
      // The notice may beat the submit's answer: it waits in the workflow's inbox either way.
      const notice: RefundNotice = {
        messageId: randomUUID(),
        orderId,
        source: 'mq',
        outRequestNo: row.outRequestNo,
        refundNo: `RF-${row.outRequestNo}`,
        status: 'REFUND_SUCCESS',
        amount: AMOUNT,
        currency: 'CNY',
        refundedAt: new Date().toISOString(),
      };
      await handle.signal(refundNoticeSignal, notice);
      await handle.signal(refundNoticeSignal, notice);
      expect(await handle.result()).toMatchObject({
        phase: 'SUCCEEDED',
        queries: 0,
        noticesReceived: 1,
        settledBy: 'mq',
      });
      expect(await findOrder(database.db, orderId)).toMatchObject({
        status: 'REFUNDED',
        refundedAmount: AMOUNT,
      });

      // The race of the source articles: the paid notice comes back after the refund. Recorded, changes nothing.
      const order = await findOrder(database.db, orderId);
      if (!order) throw new Error('no order');
      await handleNoticeForEndedWorkflow(database.db, order, paidNotice(orderId, AMOUNT));
      expect(await findOrder(database.db, orderId)).toMatchObject({
        status: 'REFUNDED',
        refundedAmount: AMOUNT,
      });
      const events =
        await database.sql`select source, trade_status from payment_events where order_id = ${orderId} order by id`;
      // The refund notice (recorded by the workflow), then the late paid notice: both facts kept.
      expect(events.map((e) => e.trade_status)).toEqual(['REFUND_SUCCESS', 'TRADE_SUCCESS']);
      const kinds = await database.sql`select kind from payment_discrepancies where order_id = ${orderId}`;
      expect(kinds).toHaveLength(0);
      return handle;
    },
  );

  scenario('refund-failed', 'a refund the provider refuses is FAILED and the order stays PAID', async () => {
    const orderId = await paidOrder({ refundFails: true });
    const { refund: row, workflowId } = await refund(orderId, 1_000);
    const handle = env.client.workflow.getHandle(workflowId);
    expect(await handle.result()).toMatchObject({ phase: 'FAILED' });
    expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'FAILED' });
    expect(await findOrder(database.db, orderId)).toMatchObject({ status: 'PAID', refundedAmount: 0 });
    return handle;
  });

  scenario(
    'refund-unconfirmed',
    'no answer by the deadline: UNKNOWN and REFUND_UNCONFIRMED, never a silent success',
    async () => {
      const orderId = await paidOrder();
      const row = await createRefund(database.db, { orderId, amount: 2_000 });
      // A 2 h deadline: 10s, 1m ×5, 5m, 10m, 20m, 30m, then 30m steps, the last cut at the deadline.
      const input = {
        ...refundWorkflowInput(row, refundsConfig),
        deadline: new Date(Date.now() + 2 * 3_600_000).toISOString(),
      };
      const handle = await env.client.workflow.start('refundWorkflow', {
        workflowId: refundWorkflowId(row.id),
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        args: [input],
      });
      expect(await handle.result()).toMatchObject({ phase: 'UNKNOWN' });
      expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'UNKNOWN' });
      const kinds = await database.sql`select kind from payment_discrepancies where order_id = ${orderId}`;
      expect(kinds.map((k) => k.kind)).toEqual(['REFUND_UNCONFIRMED']);
      expect(await findOrder(database.db, orderId)).toMatchObject({ status: 'PAID', refundedAmount: 0 });
      return handle;
    },
  );

  scenario(
    'refund-notice-during-query',
    'a notice that arrives while the refund query that settles it runs is recorded; one that contradicts it is flagged',
    async () => {
      let workflowId = '';
      let late: RefundNotice | undefined;
      const orderId = await paidOrder({
        refundSucceedsAtQuery: 1,
        // The provider's notice says FAILED while its query is answering SUCCESS.
        duringRefundQuery: async () => {
          if (late) await env.client.workflow.getHandle(workflowId).signal(refundNoticeSignal, late);
        },
      });
      const row = await createRefund(database.db, { orderId, amount: 3_000 });
      // The deadline on the test server's clock: earlier scenarios moved it on by hours.
      const input = {
        ...refundWorkflowInput(row, refundsConfig),
        deadline: new Date((await env.currentTimeMs()) + 3_600_000).toISOString(),
      };
      workflowId = refundWorkflowId(row.id);
      late = {
        messageId: randomUUID(),
        orderId,
        source: 'mq',
        outRequestNo: row.outRequestNo,
        refundNo: `RF-${row.outRequestNo}`,
        status: 'REFUND_FAILED',
        amount: 3_000,
        currency: 'CNY',
        refundedAt: new Date().toISOString(),
      };
      const sent = late;
      const handle = await env.client.workflow.start('refundWorkflow', {
        workflowId,
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        args: [input],
      });
      expect(await handle.result()).toMatchObject({
        phase: 'SUCCEEDED',
        queries: 1,
        noticesReceived: 1,
        settledBy: 'poll',
      });
      expect(await findOrder(database.db, orderId)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        refundedAmount: 3_000,
      });
      const events =
        await database.sql`select message_id, trade_status from payment_events where order_id = ${orderId} order by id`;
      expect(events.filter((e) => e.message_id === sent.messageId)).toEqual([
        { message_id: sent.messageId, trade_status: 'REFUND_FAILED' },
      ]);
      const flagged =
        await database.sql`select kind, details from payment_discrepancies where order_id = ${orderId}`;
      expect(flagged).toEqual([
        {
          kind: 'REFUND_CONTRADICTS_RECORD',
          details: {
            refundId: row.id,
            refundStatus: 'SUCCEEDED',
            notice: 'REFUND_FAILED',
            messageId: sent.messageId,
          },
        },
      ]);
      return handle;
    },
  );

  it('never refunds more than was paid: a second request over what is left is refused before anything is sent', async () => {
    const orderId = await paidOrder();
    const results = await Promise.allSettled([
      createRefund(database.db, { orderId, amount: 7_000 }),
      createRefund(database.db, { orderId, amount: 7_000 }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected');
    expect(refused?.status === 'rejected' && refused.reason).toBeInstanceOf(RefundRefused);
    await expect(
      createRefund(database.db, { orderId: `rf_none_${randomUUID().slice(0, 6)}` }),
    ).rejects.toThrow(/no order/);
    const unpaid = `rf_${randomUUID().slice(0, 12)}`;
    await insertOrder(database.db, { id: unpaid, amount: 100, currency: 'CNY', payDeadline: new Date() });
    await expect(createRefund(database.db, { orderId: unpaid })).rejects.toThrow(/is UNPAID/);
  });
});
