import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Activities, createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import { createEndpoint } from '../src/db/merchant';
import {
  closeOrder,
  findOrder,
  holdOrderForReview,
  insertOrder,
  markOrderPaid,
  recordDiscrepancy,
  recordTradeSnapshot,
  resolveReview,
} from '../src/db/orders';
import { createRefund, findRefund, RefundRefused } from '../src/db/refunds';
import type { RefundNotice } from '../src/domain';
import { handleNoticeForEndedWorkflow } from '../src/order/late-notice';
import { refundWorkflowId, refundWorkflowInput, requestRefund } from '../src/order/refund';
import { installWorkerRuntime } from '../workers/runtime';
import { refundCheckSignal, refundNoticeSignal, refundStateQuery } from '../workflows/refund-contract';
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

/**
 * `refundId:applyRefund` in here: that applyRefund commits, then its reply is lost (a connection dropped
 * after COMMIT, a worker killed before it reported), so the local activity runs again.
 */
const replyLostOnce = new Set<string>();

function withLostReplies(activities: Activities): Activities {
  return {
    ...activities,
    async applyRefund(input) {
      const result = await activities.applyRefund(input);
      if (replyLostOnce.delete(`${input.refundId}:applyRefund`)) {
        throw new Error('applyRefund: reply lost after commit');
      }
      return result;
    },
  };
}

/** The merchant's webhook endpoint: every event delivered to it, by webhook-id. */
let merchant: Server;
const delivered: string[] = [];
let merchantUrl = '';

beforeAll(async () => {
  installWorkerRuntime('ERROR');
  merchant = createServer((req, res) => {
    delivered.push(String(req.headers['webhook-id']));
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => merchant.listen(0, '127.0.0.1', resolve));
  merchantUrl = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}/webhooks`;
  env = await startTimeSkipping();
  worker = await startTestWorker(env, {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: withLostReplies(
      createActivities({ db: database.db, gateway, merchantAllowlist: config.MERCHANT_PRIVATE_ALLOWLIST }),
    ),
  });
});

afterAll(async (file) => {
  await worker?.stop();
  await env?.teardown();
  await new Promise<void>((resolve) => merchant?.close(() => resolve()));
  await database.close();
  await histories.finish(file);
});

/** A paid order (its payment settled through the conditional update), scripted at the provider. */
async function paidOrder(
  script: Parameters<ScriptedGateway['script']>[1] = {},
  notifyEndpointId?: string,
): Promise<string> {
  const orderId = `rf_${randomUUID().slice(0, 12)}`;
  await insertOrder(database.db, {
    id: orderId,
    amount: AMOUNT,
    currency: 'CNY',
    payDeadline: new Date(Date.now() + 3_600_000),
    notifyEndpointId,
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

/** A refund's workflow started with a deadline `deadlineMs` from now on the test server's clock. */
async function startRefund(orderId: string, amount: number | undefined, deadlineMs: number) {
  const row = await createRefund(database.db, { orderId, amount });
  // The test server's clock: earlier scenarios moved it on by hours.
  const input = {
    ...refundWorkflowInput(row, refundsConfig),
    deadline: new Date((await env.currentTimeMs()) + deadlineMs).toISOString(),
  };
  const handle = await env.client.workflow.start('refundWorkflow', {
    workflowId: refundWorkflowId(row.id),
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    args: [input],
  });
  return { row, handle };
}

function refundNotice(
  orderId: string,
  outRequestNo: string,
  overrides: Partial<RefundNotice> = {},
): RefundNotice {
  return {
    messageId: randomUUID(),
    orderId,
    source: 'mq',
    outRequestNo,
    refundNo: `RF-${outRequestNo}`,
    status: 'REFUND_SUCCESS',
    amount: AMOUNT,
    currency: 'CNY',
    refundedAt: new Date().toISOString(),
    ...overrides,
  };
}

async function discrepancies(orderId: string) {
  return database.sql<{ kind: string; details: Record<string, unknown>; resolved_at: Date | null }[]>`
    select kind, details, resolved_at from payment_discrepancies where order_id = ${orderId} order by id`;
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
    'no answer by the deadline: UNKNOWN and REFUND_UNCONFIRMED, never a silent success; a late notice still settles it',
    async () => {
      const orderId = await paidOrder();
      // A 2 h deadline: 10s, 1m ×5, 5m, 10m, 20m, 30m, then 30m steps, the last cut at the deadline.
      const { row, handle } = await startRefund(orderId, 2_000, 2 * 3_600_000);
      await env.sleep(2 * 3_600_000 + 60_000);
      expect(await handle.query(refundStateQuery)).toMatchObject({ phase: 'UNKNOWN' });
      expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'UNKNOWN' });
      expect((await discrepancies(orderId)).map((d) => [d.kind, d.resolved_at])).toEqual([
        ['REFUND_UNCONFIRMED', null],
      ]);
      expect(await findOrder(database.db, orderId)).toMatchObject({ status: 'PAID', refundedAmount: 0 });

      // The provider's notice comes a day late: the refund's own lifecycle applies it.
      await handle.signal(
        refundNoticeSignal,
        refundNotice(orderId, row.outRequestNo, { amount: 2_000, source: 'mq' }),
      );
      expect(await handle.result()).toMatchObject({ phase: 'SUCCEEDED', settledBy: 'mq' });
      expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'SUCCEEDED', settledBy: 'mq' });
      expect(await findOrder(database.db, orderId)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        refundedAmount: 2_000,
      });
      const [unconfirmed] = await discrepancies(orderId);
      expect(unconfirmed?.resolved_at).not.toBeNull();
      return handle;
    },
  );

  it("an UNKNOWN refund is settled by an operator's check: the provider is asked now and its answer applied", async () => {
    const endpoint = await createEndpoint(database.db, { url: merchantUrl });
    const orderId = await paidOrder({}, endpoint.id);
    await database.sql`update merchant_events set status = 'DELIVERED' where order_id = ${orderId}`;
    const { row, handle } = await startRefund(orderId, AMOUNT, 3_600_000);
    await env.sleep(3_600_000 + 60_000);
    expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'UNKNOWN' });
    const queries = gateway.refunds.get(row.outRequestNo)?.queries ?? 0;
    // The provider finished the refund after the deadline; nothing asks it again on its own.
    const atProvider = gateway.refunds.get(row.outRequestNo);
    if (atProvider) atProvider.status = 'SUCCESS';
    await env.sleep(6 * 3_600_000);
    expect(gateway.refunds.get(row.outRequestNo)?.queries).toBe(queries);
    expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'UNKNOWN' });

    await handle.signal(refundCheckSignal);
    expect(await handle.result()).toMatchObject({ phase: 'SUCCEEDED', settledBy: 'poll', checksDone: 1 });
    expect(gateway.refunds.get(row.outRequestNo)?.queries).toBe(queries + 1);
    expect(await findOrder(database.db, orderId)).toMatchObject({
      status: 'REFUNDED',
      refundedAmount: AMOUNT,
    });
    const events =
      await database.sql`select id, type from merchant_events where order_id = ${orderId} order by sequence`;
    expect(events.map((e) => e.type)).toEqual(['order.paid', 'order.refunded']);
    const refunded = String(events[1]?.id);
    for (let i = 0; i < 100 && !delivered.includes(refunded); i++) await env.sleep(1_000);
    expect(delivered).toContain(refunded);
  });

  it('a refund submission whose answer cannot be read stays PROCESSING, and the refund query finds it done', async () => {
    // The provider took the refund, but answered something payrecon cannot read (an unknown status).
    const orderId = await paidOrder({ refundSubmit: 'unreadable', refundSucceedsAtQuery: 1 });
    const { row, handle } = await startRefund(orderId, 4_000, 3_600_000);
    expect(await handle.result()).toMatchObject({ phase: 'SUCCEEDED', settledBy: 'poll', queries: 1 });
    expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'SUCCEEDED' });
    expect(await findOrder(database.db, orderId)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      refundedAmount: 4_000,
    });
    // The amount stays taken: a second request for all of it is refused before anything is sent.
    await expect(createRefund(database.db, { orderId, amount: AMOUNT })).rejects.toBeInstanceOf(
      RefundRefused,
    );
  });

  it("only the provider's explicit refusal (a refusal code it documents) fails a submission", async () => {
    const orderId = await paidOrder({ refundSubmit: 'refused' });
    const { row, handle } = await startRefund(orderId, 1_000, 3_600_000);
    expect(await handle.result()).toMatchObject({ phase: 'FAILED', queries: 0 });
    expect(await findRefund(database.db, row.id)).toMatchObject({
      status: 'FAILED',
      failureReason: expect.stringContaining('TRADE_FINISHED'),
    });
    expect(await findOrder(database.db, orderId)).toMatchObject({ status: 'PAID', refundedAmount: 0 });
  });

  it("a settled refund whose applyRefund reply is lost still notifies the merchant of the order's refund", async () => {
    const endpoint = await createEndpoint(database.db, { url: merchantUrl });
    const orderId = await paidOrder({ refundSucceedsAtQuery: 1 }, endpoint.id);
    // The order.paid event was delivered: the refund's event is next in line.
    await database.sql`update merchant_events set status = 'DELIVERED' where order_id = ${orderId}`;
    // Its first query (10 s on) finds it done; the lost reply comes long after this line.
    const { row, handle } = await startRefund(orderId, AMOUNT, 3_600_000);
    replyLostOnce.add(`${row.id}:applyRefund`);
    expect(await handle.result()).toMatchObject({ phase: 'SUCCEEDED' });
    expect(replyLostOnce.size).toBe(0);
    expect(await findOrder(database.db, orderId)).toMatchObject({
      status: 'REFUNDED',
      refundedAmount: AMOUNT,
    });
    const eventId = `evt_${orderId}_2`;
    const [event] = await database.sql`select type, payload from merchant_events where id = ${eventId}`;
    expect(event).toMatchObject({
      type: 'order.refunded',
      payload: {
        refundedAmount: AMOUNT,
        refund: { id: row.id, outRequestNo: row.outRequestNo, amount: AMOUNT },
      },
    });
    // The merchant hears of it: the delivery started from the re-run's result.
    for (let i = 0; i < 100 && !delivered.includes(eventId); i++) await env.sleep(1_000);
    expect(delivered).toContain(eventId);
  });

  it('a signed refund notice that differs from its refund is checked with the provider: the provider refused, so nothing is refunded', async () => {
    // The provider will refuse the refund; a notice claims success for 100 with an invented refund number.
    const orderId = await paidOrder({ refundFailsAtQuery: 1 });
    const { row, handle } = await startRefund(orderId, AMOUNT, 3_600_000);
    const forged = refundNotice(orderId, row.outRequestNo, { amount: 100, refundNo: 'RF-INVENTED' });
    await handle.signal(refundNoticeSignal, forged);
    expect(await handle.result()).toMatchObject({ phase: 'FAILED', settledBy: 'poll', noticesReceived: 1 });
    expect(await findRefund(database.db, row.id)).toMatchObject({ status: 'FAILED' });
    expect(await findOrder(database.db, orderId)).toMatchObject({ status: 'PAID', refundedAmount: 0 });
    const events = await database.sql`select type from merchant_events where order_id = ${orderId}`;
    expect(events.map((e) => e.type)).toEqual(['order.paid']);
    expect(await discrepancies(orderId)).toEqual([
      {
        kind: 'REFUND_NOTICE_CONTRADICTS_PROVIDER',
        resolved_at: null,
        details: {
          refundId: row.id,
          outRequestNo: row.outRequestNo,
          messageId: forged.messageId,
          fields: ['status', 'refundNo', 'amount'],
          notice: {
            orderId,
            refundNo: 'RF-INVENTED',
            status: 'REFUND_SUCCESS',
            amount: 100,
            currency: 'CNY',
            source: 'mq',
          },
          provider: { status: 'FAILED', refundNo: `RF-${row.outRequestNo}`, amount: AMOUNT },
        },
      },
    ]);
  });

  it('a CLOSED order whose trade was paid after the close is refunded through payrecon; its PAID_AFTER_CLOSE stays open until the money is back', async () => {
    const orderId = `rf_${randomUUID().slice(0, 12)}`;
    await insertOrder(database.db, { id: orderId, amount: AMOUNT, currency: 'CNY', payDeadline: new Date() });
    await closeOrder(database.db, { orderId, reason: 'PAY_DEADLINE_PASSED', settledBy: 'poll' });
    gateway.script(orderId, { amount: AMOUNT, refundSucceedsAtQuery: 1 });
    await expect(createRefund(database.db, { orderId })).rejects.toThrow(/CLOSED and no payment/);
    // The close raced the buyer: the provider answered the close with a paid trade.
    await recordTradeSnapshot(database.db, {
      orderId,
      status: 'TRADE_SUCCESS',
      tradeNo: `SIM-${orderId}`,
      amount: AMOUNT,
      currency: 'CNY',
      paidAt: new Date().toISOString(),
    });
    await recordDiscrepancy(database.db, {
      orderId,
      kind: 'PAID_AFTER_CLOSE',
      details: { tradeNo: `SIM-${orderId}`, amount: AMOUNT },
    });
    const first = await startRefund(orderId, 4_000, 3_600_000);
    expect(await first.handle.result()).toMatchObject({ phase: 'SUCCEEDED' });
    expect((await discrepancies(orderId)).map((d) => d.resolved_at)).toEqual([null]);
    const rest = await startRefund(orderId, undefined, 3_600_000);
    expect(rest.row.amount).toBe(AMOUNT - 4_000);
    expect(await rest.handle.result()).toMatchObject({ phase: 'SUCCEEDED' });
    await expect(createRefund(database.db, { orderId })).rejects.toThrow(/nothing left to refund/);
    // The order stays CLOSED (the merchant was told order.closed); the held money is back.
    expect(await findOrder(database.db, orderId)).toMatchObject({ status: 'CLOSED', refundedAmount: 0 });
    const [held] = await discrepancies(orderId);
    expect(held?.resolved_at).not.toBeNull();
    expect([...gateway.refunds.values()].filter((r) => r.orderId === orderId)).toHaveLength(2);
  });

  it('a wrong-amount hold resolved CLOSED keeps its AMOUNT_MISMATCH open and refunds what was paid', async () => {
    const orderId = `rf_${randomUUID().slice(0, 12)}`;
    await insertOrder(database.db, { id: orderId, amount: AMOUNT, currency: 'CNY', payDeadline: new Date() });
    gateway.script(orderId, { amount: AMOUNT, refundSucceedsAtQuery: 1 });
    await recordTradeSnapshot(database.db, {
      orderId,
      status: 'TRADE_SUCCESS',
      tradeNo: `SIM-${orderId}`,
      amount: 9_000,
      currency: 'CNY',
      paidAt: new Date().toISOString(),
    });
    await holdOrderForReview(database.db, {
      orderId,
      tradeNo: `SIM-${orderId}`,
      settledBy: 'poll',
      kind: 'AMOUNT_MISMATCH',
      details: { expected: { amount: AMOUNT }, reported: { amount: 9_000 }, tradeNo: `SIM-${orderId}` },
    });
    await resolveReview(database.db, { orderId, outcome: 'CLOSED', note: 'buyer paid 9000: refund it' });
    expect((await discrepancies(orderId)).map((d) => [d.kind, d.resolved_at])).toEqual([
      ['AMOUNT_MISMATCH', null],
    ]);
    const { row, handle } = await startRefund(orderId, undefined, 3_600_000);
    expect(row.amount).toBe(9_000);
    expect(await handle.result()).toMatchObject({ phase: 'SUCCEEDED' });
    expect(await findOrder(database.db, orderId)).toMatchObject({ status: 'CLOSED', refundedAmount: 0 });
    const [mismatch] = await discrepancies(orderId);
    expect(mismatch?.resolved_at).not.toBeNull();
  });

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
            outRequestNo: row.outRequestNo,
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
