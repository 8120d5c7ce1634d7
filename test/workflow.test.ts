import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Activities, createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import { findOrder, insertOrder } from '../src/db/orders';
import type { PaymentNotice } from '../src/domain';
import { handleNoticeForEndedWorkflow } from '../src/order/late-notice';
import { reviewWorkflowId } from '../src/order/review';
import { orderWorkflowInput, orderWorkflowStartOptions } from '../src/order/start';
import { activityTypes } from '../src/platform/history';
import { installWorkerRuntime } from '../workers/runtime';
import {
  cancelOrderSignal,
  type OrderWorkflowInput,
  orderStateQuery,
  orderWorkflow,
  paymentInitiatedSignal,
  paymentNoticeSignal,
} from '../workflows/order';
import { OrderRun } from '../workflows/order-run';
import { orderReviewWorkflow } from '../workflows/review';
import { OrderIdKey, PaymentStatusKey } from '../workflows/search-attributes';
import { eventually, testConfig } from './support/env';
import { fetchChain, HistoryRecorder, ORDER_SCENARIOS } from './support/histories';
import { paidNotice } from './support/notice';
import { ScriptedGateway } from './support/scripted-gateway';
import { scenarioOf, startTestWorker, startTimeSkipping } from './support/time-skipping';

/**
 * The order state machine on the time-skipping test server: real timers of up to 30 minutes pass in
 * moments, the activities write to the real test database, and the provider answers from a script.
 *
 * Each scenario's history is also a replay fixture (test/replay.test.ts): with RECORD_HISTORIES=1
 * (`npm run histories:record`) every scenario that passed writes its workflow's histories into
 * test/fixtures/histories/<name>.json (test/support/histories.ts).
 */
const config = testConfig('wf');
const database = createDatabase(config.DATABASE_URL, { max: 5 });
const gateway = new ScriptedGateway();
const AMOUNT = 9_900;
const DEFAULT_LADDER = { stepsMs: [3_000, 30_000, 60_000, 120_000, 180_000, 300_000], repeatMs: 300_000 };
const PAY_WINDOW_MS = 30 * 60_000;
// Ladder checks at 3s, 33s, 93s, 213s, 393s, 693s, 993s, 1293s, 1593s; the next would pass the deadline.
const LADDER_CHECKS_BEFORE_DEADLINE = 9;

/**
 * `<orderId>:<activity>` entries: that activity's next call commits its write, then fails as if the reply
 * were lost (connection dropped after COMMIT, or a workflow task that failed after its local activity
 * ran). The retry must still see the write as its own.
 */
const replyLostOnce = new Set<string>();

function withLostReplies(activities: Activities): Activities {
  const loseReply = (orderId: string, name: string) => {
    if (replyLostOnce.delete(`${orderId}:${name}`)) throw new Error(`${name}: reply lost after commit`);
  };
  return {
    ...activities,
    async recordPaymentNotice(notice) {
      const isNew = await activities.recordPaymentNotice(notice);
      loseReply(notice.orderId, 'recordPaymentNotice');
      return isNew;
    },
    async markOrderPaid(input) {
      const result = await activities.markOrderPaid(input);
      loseReply(input.orderId, 'markOrderPaid');
      return result;
    },
    async markOrderPaidByNotice(input) {
      const result = await activities.markOrderPaidByNotice(input);
      loseReply(input.notice.orderId, 'markOrderPaidByNotice');
      return result;
    },
  };
}

const histories = new HistoryRecorder(ORDER_SCENARIOS);
let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;

beforeAll(async () => {
  // Scripted provider outages make the SDK log every failed attempt at WARN.
  installWorkerRuntime('ERROR');
  env = await startTimeSkipping();
  worker = await startTestWorker(env, {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: withLostReplies(createActivities({ db: database.db, gateway })),
  });
});

afterAll(async (file) => {
  await worker?.stop();
  await env?.teardown();
  await database.close();
  await histories.finish(file);
});

const scenario = scenarioOf(histories);

async function startOrder(
  script: Parameters<ScriptedGateway['script']>[1] = {},
  extra: Partial<OrderWorkflowInput> = {},
): Promise<{ orderId: string; handle: WorkflowHandle<typeof orderWorkflow> }> {
  const orderId = `wf_${randomUUID().slice(0, 12)}`;
  const row = await insertOrder(database.db, {
    id: orderId,
    amount: AMOUNT,
    currency: 'CNY',
    payDeadline: new Date((await env.currentTimeMs()) + PAY_WINDOW_MS),
    // The trade payrecon opened at the (scripted) provider: a notice naming another one is checked.
    providerTradeNo: `SIM-${orderId}`,
  });
  gateway.script(orderId, { amount: AMOUNT, ...script });
  const input = { ...orderWorkflowInput(row, config, { pollLadder: DEFAULT_LADDER }), ...extra };
  const handle = await env.client.workflow.start(
    orderWorkflow,
    orderWorkflowStartOptions(input, config.TEMPORAL_TASK_QUEUE),
  );
  return { orderId, handle };
}

const notice = (orderId: string, overrides: Partial<PaymentNotice> = {}): PaymentNotice =>
  paidNotice(orderId, AMOUNT, overrides);

const orderRow = async (orderId: string) => findOrder(database.db, orderId);
const events = (orderId: string) =>
  database.sql`select source, message_id, trade_status from payment_events where order_id = ${orderId} order by id`;
const discrepancies = (orderId: string) =>
  database.sql`select kind from payment_discrepancies where order_id = ${orderId} order by id`;

async function activityCount(handle: WorkflowHandle, name: string): Promise<number> {
  return activityTypes(await handle.fetchHistory()).filter((type) => type === name).length;
}

describe('order workflow (time-skipping)', () => {
  scenario('paid-mq-before-first-poll', 'is paid by MQ before the first poll', async () => {
    const { orderId, handle } = await startOrder({ paidFromQuery: 1 });
    await handle.signal(paymentNoticeSignal, notice(orderId));
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'mq', pollAttempts: 0 });
    expect(gateway.queryCount(orderId)).toBe(0);
    expect(await orderRow(orderId)).toMatchObject({
      status: 'PAID',
      settledBy: 'mq',
      tradeNo: `SIM-${orderId}`,
    });
    expect((await events(orderId)).map((e) => e.source)).toEqual(['mq']);
    return handle;
  });

  scenario(
    'paid-mq-db-replies-lost',
    'settles by MQ once when the database writes commit but their replies are lost and they retry',
    async () => {
      const { orderId, handle } = await startOrder();
      replyLostOnce.add(`${orderId}:markOrderPaidByNotice`);
      await handle.signal(paymentNoticeSignal, notice(orderId));
      const result = await handle.result();
      // The retried markOrderPaidByNotice finds its own notice row (kept once) and its own update
      // (changed: false): the order is still settled by this notice, not left to the ladder.
      expect(result).toMatchObject({ status: 'PAID', settledBy: 'mq', pollAttempts: 0 });
      expect(replyLostOnce.size).toBe(0);
      expect(gateway.queryCount(orderId)).toBe(0);
      expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', settledBy: 'mq' });
      expect((await events(orderId)).map((e) => e.source)).toEqual(['mq']);
      return handle;
    },
  );

  for (const [name, check, atMs] of [
    ['paid-poll-step-1', 1, 3_000],
    ['paid-poll-step-3', 3, 93_000],
    ['paid-poll-last-step', LADDER_CHECKS_BEFORE_DEADLINE, 1_593_000],
  ] as const) {
    scenario(
      name,
      `discovers the payment at ladder check ${check} (t=${atMs}ms) when the notice is lost`,
      async () => {
        const startedAt = await env.currentTimeMs();
        const { orderId, handle } = await startOrder({ paidFromQuery: check });
        const result = await handle.result();
        expect(result).toMatchObject({ status: 'PAID', settledBy: 'poll', pollAttempts: check });
        expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', settledBy: 'poll' });
        const polls = await events(orderId);
        expect(polls).toHaveLength(check);
        expect(polls.every((e) => e.source === 'poll')).toBe(true);
        const description = await handle.describe();
        const elapsed = (description.closeTime?.getTime() ?? 0) - startedAt;
        expect(elapsed).toBeGreaterThanOrEqual(atMs);
        expect(elapsed).toBeLessThan(atMs + 5_000);
        expect(gateway.closes).not.toContain(orderId);
        return handle;
      },
    );
  }

  scenario(
    'never-paid-closed',
    'closes an order that is never paid at the deadline, after closing the trade',
    async () => {
      const { orderId, handle } = await startOrder();
      const result = await handle.result();
      expect(result).toMatchObject({
        status: 'CLOSED',
        settledBy: 'poll',
        pollAttempts: LADDER_CHECKS_BEFORE_DEADLINE + 1,
        discrepancies: [],
      });
      expect(gateway.closes).toContain(orderId);
      expect(await orderRow(orderId)).toMatchObject({ status: 'CLOSED', closeReason: 'PAY_DEADLINE_PASSED' });
      const rows = await events(orderId);
      expect(rows.at(-1)).toMatchObject({ source: 'poll', trade_status: 'TRADE_CLOSED' });
      return handle;
    },
  );

  scenario(
    'paid-at-close',
    'pays, not closes, when the provider reports the trade paid at the moment of close',
    async () => {
      const { orderId, handle } = await startOrder({ paidAtClose: true });
      const result = await handle.result();
      expect(result).toMatchObject({ status: 'PAID', settledBy: 'poll' });
      expect(gateway.closes).toContain(orderId);
      expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', closedAt: null });
      expect(await activityCount(handle, 'closeOrder')).toBe(0);
      return handle;
    },
  );

  scenario('cancel-unpaid', 'cancel closes an unpaid order after checking the provider', async () => {
    const { orderId, handle } = await startOrder();
    await handle.signal(cancelOrderSignal);
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'CLOSED', pollAttempts: 1 });
    expect(gateway.closes).toContain(orderId);
    expect(gateway.queryCount(orderId)).toBe(1);
    expect(await orderRow(orderId)).toMatchObject({
      status: 'CLOSED',
      closeReason: 'CANCELLED_BY_BUYER',
      settledBy: 'manual',
    });
    return handle;
  });

  scenario('cancel-already-paid', 'cancel of an order the buyer already paid pays it instead', async () => {
    const { orderId, handle } = await startOrder({ paidFromQuery: 1 });
    await handle.signal(cancelOrderSignal, { reason: 'BUYER_CHANGED_MIND' });
    expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'poll', pollAttempts: 1 });
    expect(gateway.closes).not.toContain(orderId);
    return handle;
  });

  scenario('duplicate-notices', 'ignores duplicate notices: one transition, one event row', async () => {
    const { orderId, handle } = await startOrder();
    const paid = notice(orderId);
    for (let i = 0; i < 5; i++) await handle.signal(paymentNoticeSignal, paid);
    expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    expect(await events(orderId)).toHaveLength(1);
    // The duplicates never reach the inbox (same message id); the one notice is recorded and pays the
    // order in one local activity.
    expect(await activityCount(handle, 'markOrderPaidByNotice')).toBe(1);
    expect(await activityCount(handle, 'markOrderPaid')).toBe(0);
    return handle;
  });

  scenario(
    'amount-mismatch-mq',
    'never pays on an amount mismatch: the provider confirms the wrong amount, NEEDS_REVIEW, one AMOUNT_MISMATCH',
    async () => {
      // The buyer really paid one fen short: the notice says so, and so does the provider when asked.
      const { orderId, handle } = await startOrder({ paidFromQuery: 1, paidAmount: AMOUNT - 1 });
      await handle.signal(paymentNoticeSignal, notice(orderId, { amount: AMOUNT - 1 }));
      expect(await handle.result()).toMatchObject({
        status: 'NEEDS_REVIEW',
        settledBy: null,
        pollAttempts: 0,
        discrepancies: ['AMOUNT_MISMATCH'],
      });
      // A notice whose amount differs is checked with the provider before it changes anything.
      expect(gateway.queryCount(orderId)).toBe(1);
      expect(await orderRow(orderId)).toMatchObject({ status: 'NEEDS_REVIEW', paidAt: null });
      expect(await discrepancies(orderId)).toEqual([{ kind: 'AMOUNT_MISMATCH' }]);
      const { typedSearchAttributes } = await handle.describe();
      expect(typedSearchAttributes.get(PaymentStatusKey)).toBe('NEEDS_REVIEW');
      expect(typedSearchAttributes.get(OrderIdKey)).toBe(orderId);
      return handle;
    },
  );

  scenario(
    'notice-contradicts-provider',
    'a signed notice naming an invented trade changes nothing: the provider says unpaid, NOTICE_CONTRADICTS_PROVIDER',
    async () => {
      // The provider's trade is paid only from the 3rd query on: the notice's check is the 1st.
      const { orderId, handle } = await startOrder({ paidFromQuery: 3 });
      await handle.signal(paymentNoticeSignal, notice(orderId, { tradeNo: 'INVENTED-0001' }));
      const checked = await eventually('the notice checked', async () => {
        const state = await handle.query(orderStateQuery);
        return state.discrepancies.length > 0 ? state : undefined;
      });
      expect(checked).toMatchObject({
        phase: 'AWAITING_PAYMENT',
        discrepancies: ['NOTICE_CONTRADICTS_PROVIDER'],
      });
      expect(await orderRow(orderId)).toMatchObject({ status: 'UNPAID', tradeNo: null });
      // The ladder still finds the real payment, and the order is paid with the provider's trade.
      expect(await handle.result()).toMatchObject({
        status: 'PAID',
        settledBy: 'poll',
        discrepancies: ['NOTICE_CONTRADICTS_PROVIDER'],
      });
      expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', tradeNo: `SIM-${orderId}` });
      expect(await discrepancies(orderId)).toEqual([{ kind: 'NOTICE_CONTRADICTS_PROVIDER' }]);
      return handle;
    },
  );

  scenario(
    'notice-verified-always',
    'with verifyNotices always, even a matching notice is checked with the provider before the order is paid',
    async () => {
      const { orderId, handle } = await startOrder({ paidFromQuery: 1 }, { verifyNotices: 'always' });
      await handle.signal(paymentNoticeSignal, notice(orderId));
      expect(await handle.result()).toMatchObject({
        status: 'PAID',
        settledBy: 'mq',
        pollAttempts: 0,
        discrepancies: [],
      });
      expect(gateway.queryCount(orderId)).toBe(1);
      expect((await events(orderId)).map((e) => e.source)).toEqual(['mq', 'poll']);
      return handle;
    },
  );

  scenario(
    'manual-notice-contradicted',
    "an operator's notice naming the order's own trade and amount is checked: the provider says unpaid, nothing changes",
    async () => {
      // The buyer pays only by the 3rd query: the manual notice's check (the 1st) finds the trade unpaid.
      const { orderId, handle } = await startOrder({ paidFromQuery: 3 });
      await handle.signal(paymentNoticeSignal, notice(orderId, { source: 'manual' }));
      const checked = await eventually('the notice checked', async () => {
        const state = await handle.query(orderStateQuery);
        return state.discrepancies.length > 0 ? state : undefined;
      });
      expect(checked).toMatchObject({
        phase: 'AWAITING_PAYMENT',
        discrepancies: ['NOTICE_CONTRADICTS_PROVIDER'],
      });
      expect(gateway.queryCount(orderId)).toBe(1);
      expect(await orderRow(orderId)).toMatchObject({ status: 'UNPAID', tradeNo: null, settledBy: null });
      expect((await events(orderId)).map((e) => e.source)).toEqual(['manual', 'poll']);
      expect(await discrepancies(orderId)).toEqual([{ kind: 'NOTICE_CONTRADICTS_PROVIDER' }]);
      // The ladder still finds the real payment later.
      expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'poll' });
      expect(await activityCount(handle, 'markOrderPaidByNotice')).toBe(0);
      return handle;
    },
  );

  scenario(
    'reconciliation-notice-verified',
    "a statement row's notice pays only once the provider confirms it, settled by reconciliation",
    async () => {
      const { orderId, handle } = await startOrder({ paidFromQuery: 1 });
      await handle.signal(paymentNoticeSignal, notice(orderId, { source: 'reconciliation' }));
      expect(await handle.result()).toMatchObject({
        status: 'PAID',
        settledBy: 'reconciliation',
        pollAttempts: 0,
        discrepancies: [],
      });
      expect(gateway.queryCount(orderId)).toBe(1);
      expect((await events(orderId)).map((e) => e.source)).toEqual(['reconciliation', 'poll']);
      expect(await activityCount(handle, 'markOrderPaidByNotice')).toBe(0);
      return handle;
    },
  );

  scenario(
    'provider-reply-unreadable',
    'an answer the provider gives that cannot be read is not retried, and the order is held, not closed on a guess',
    async () => {
      const { orderId, handle } = await startOrder({ unreadable: true });
      await handle.signal(cancelOrderSignal);
      expect(await handle.result()).toMatchObject({
        status: 'NEEDS_REVIEW',
        discrepancies: ['PROVIDER_REPLY_INVALID'],
      });
      // Non-retryable: one query, no retries, and no close of a trade whose state is unknown.
      expect(gateway.queryCount(orderId)).toBe(1);
      expect(gateway.closes).not.toContain(orderId);
      expect(await orderRow(orderId)).toMatchObject({ status: 'NEEDS_REVIEW' });
      expect(await discrepancies(orderId)).toEqual([{ kind: 'PROVIDER_REPLY_INVALID' }]);
      return handle;
    },
  );

  scenario(
    'review-resolved-closed',
    'an operator closes an order held for review: one conditional update, then the trade is closed',
    async () => {
      const { orderId, handle } = await startOrder({ paidFromQuery: 1, paidAmount: AMOUNT + 1 });
      expect(await handle.result()).toMatchObject({ status: 'NEEDS_REVIEW' });
      const review = await env.client.workflow.start(orderReviewWorkflow, {
        workflowId: reviewWorkflowId(orderId),
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        args: [{ orderId, outcome: 'CLOSED', note: 'refunded' }],
      });
      expect(await review.result()).toEqual({
        orderId,
        changed: true,
        status: 'CLOSED',
        tradeClose: { status: 'TRADE_CLOSED' },
      });
      expect(await orderRow(orderId)).toMatchObject({
        status: 'CLOSED',
        settledBy: 'manual',
        closeReason: 'refunded',
      });
      expect(gateway.closes).toContain(orderId);
      expect(await activityCount(review, 'resolveReview')).toBe(1);
      return review;
    },
  );

  scenario(
    'review-resolved-paid',
    "an operator's PAID is checked with the provider: the trade's own paid time, never now(); an unpaid trade refuses it",
    async () => {
      const { orderId, handle } = await startOrder({ paidFromQuery: 1, paidAmount: AMOUNT - 1 });
      expect(await handle.result()).toMatchObject({ status: 'NEEDS_REVIEW' });
      const resolve = (args: { tradeNo?: string }) =>
        env.client.workflow.start(orderReviewWorkflow, {
          workflowId: `${reviewWorkflowId(orderId)}-${randomUUID().slice(0, 4)}`,
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          args: [{ orderId, outcome: 'PAID', note: 'short payment accepted', ...args }],
        });
      // The operator names a trade the provider does not report paid: nothing changes.
      const named = await resolve({ tradeNo: 'T-OPERATOR-TYPO' });
      expect(await named.result()).toMatchObject({
        changed: false,
        status: 'NEEDS_REVIEW',
        refused: `the provider reports trade SIM-${orderId} paid, not T-OPERATOR-TYPO`,
      });
      expect(await orderRow(orderId)).toMatchObject({ status: 'NEEDS_REVIEW', paidAt: null });
      const review = await resolve({});
      expect(await review.result()).toEqual({ orderId, changed: true, status: 'PAID' });
      // The scripted provider's paid time, so reconciliation finds the payment on its own day.
      expect(await orderRow(orderId)).toMatchObject({
        status: 'PAID',
        settledBy: 'manual',
        tradeNo: `SIM-${orderId}`,
        paidAt: new Date('2026-01-01T00:00:00.000Z'),
      });
      expect(await activityCount(review, 'queryTrade')).toBe(1);
      return review;
    },
  );

  it('an operator cannot pay a held order whose trade the provider reports unpaid', async () => {
    const { orderId, handle } = await startOrder({ unreadable: true });
    await handle.signal(cancelOrderSignal);
    expect(await handle.result()).toMatchObject({ status: 'NEEDS_REVIEW' });
    gateway.script(orderId, { amount: AMOUNT });
    const review = await env.client.workflow.start(orderReviewWorkflow, {
      workflowId: reviewWorkflowId(orderId),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [{ orderId, outcome: 'PAID', note: 'the buyer says they paid', tradeNo: `SIM-${orderId}` }],
    });
    expect(await review.result()).toMatchObject({
      changed: false,
      status: 'NEEDS_REVIEW',
      refused: 'the provider reports the trade WAIT_BUYER_PAY, not paid',
    });
    expect(await orderRow(orderId)).toMatchObject({ status: 'NEEDS_REVIEW', paidAt: null });
  });

  it('review CLOSED reports a trade close the provider answers unreadably, with the order closed, not as a failure', async () => {
    const { orderId, handle } = await startOrder({ unreadable: true });
    await handle.signal(cancelOrderSignal);
    expect(await handle.result()).toMatchObject({ status: 'NEEDS_REVIEW' });
    gateway.script(orderId, { amount: AMOUNT, closeUnreadable: true });
    const review = await env.client.workflow.start(orderReviewWorkflow, {
      workflowId: reviewWorkflowId(orderId),
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      args: [{ orderId, outcome: 'CLOSED', note: 'buyer gave up' }],
    });
    expect(await review.result()).toEqual({
      orderId,
      changed: true,
      status: 'CLOSED',
      tradeClose: { error: 'scripted answer to the close: unknown trade status' },
    });
    expect(await orderRow(orderId)).toMatchObject({ status: 'CLOSED', closeReason: 'buyer gave up' });
    expect(gateway.closes).toContain(orderId);
  });

  scenario('amount-mismatch-poll', 'a wrong amount found by polling is held for review too', async () => {
    const { orderId, handle } = await startOrder({ paidFromQuery: 1, paidAmount: AMOUNT * 2 });
    expect(await handle.result()).toMatchObject({
      status: 'NEEDS_REVIEW',
      pollAttempts: 1,
      discrepancies: ['AMOUNT_MISMATCH'],
    });
    expect(await discrepancies(orderId)).toEqual([{ kind: 'AMOUNT_MISMATCH' }]);
    return handle;
  });

  scenario(
    'paid-after-close-running',
    'a notice that arrives while the trade is being closed leaves the order CLOSED and records PAID_AFTER_CLOSE',
    async () => {
      const { orderId, handle } = await startOrder({
        // The buyer's notice reaches the workflow while closeTrade is in flight at the provider.
        duringClose: () => handle.signal(paymentNoticeSignal, notice(orderId)),
      });
      expect(await handle.result()).toMatchObject({ status: 'CLOSED', discrepancies: ['PAID_AFTER_CLOSE'] });
      expect(gateway.closes).toContain(orderId);
      expect(await orderRow(orderId)).toMatchObject({ status: 'CLOSED', closeReason: 'PAY_DEADLINE_PASSED' });
      expect(await discrepancies(orderId)).toEqual([{ kind: 'PAID_AFTER_CLOSE' }]);
      expect((await events(orderId)).filter((e) => e.source === 'mq')).toHaveLength(1);
      // The workflow itself recorded the notice and the discrepancy, after closing the order.
      expect(await activityCount(handle, 'recordPaymentNotice')).toBe(1);
      expect(await activityCount(handle, 'recordDiscrepancy')).toBe(1);
      return handle;
    },
  );

  scenario(
    'paid-after-close-ended',
    'a notice after close leaves the order CLOSED, records PAID_AFTER_CLOSE once, starts no second run',
    async () => {
      const { orderId, handle } = await startOrder();
      expect(await handle.result()).toMatchObject({ status: 'CLOSED', discrepancies: [] });
      const row = await orderRow(orderId);
      if (!row) throw new Error('order row missing');
      const late = notice(orderId);
      const input = orderWorkflowInput(row, config, { pollLadder: DEFAULT_LADDER });
      const options = orderWorkflowStartOptions(input, config.TEMPORAL_TASK_QUEUE);
      await expect(
        env.client.workflow.signalWithStart(orderWorkflow, {
          ...options,
          signal: paymentNoticeSignal,
          signalArgs: [late],
        }),
      ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
      // What the consumer does on that error, twice, as a redelivery would.
      await handleNoticeForEndedWorkflow(database.db, row, late);
      await handleNoticeForEndedWorkflow(database.db, row, late);
      await handleNoticeForEndedWorkflow(database.db, row, notice(orderId));
      expect(await orderRow(orderId)).toMatchObject({ status: 'CLOSED' });
      expect(await discrepancies(orderId)).toEqual([{ kind: 'PAID_AFTER_CLOSE' }]);
      expect((await events(orderId)).filter((e) => e.source === 'mq')).toHaveLength(2);
      return handle;
    },
  );

  scenario(
    'provider-outage-then-back',
    'survives a provider outage: failed checks are recorded, a later check settles',
    async () => {
      // Check 1 fails all 3 attempts; check 2 fails twice, then the provider is back and says paid.
      const { orderId, handle } = await startOrder({ downForCalls: 5, paidFromQuery: 6 });
      expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'poll', pollAttempts: 2 });
      expect(gateway.queryCount(orderId)).toBe(6);
      expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', settledBy: 'poll' });
      return handle;
    },
  );

  scenario(
    'payment-initiated-restarts-ladder',
    '"payment initiated" restarts the ladder at its first step',
    async () => {
      const { orderId, handle } = await startOrder({ paidFromQuery: 100 });
      await env.sleep(300_000);
      const before = await handle.query(orderStateQuery);
      expect(before.ladderStep).toBeGreaterThanOrEqual(4);
      await handle.signal(paymentInitiatedSignal);
      await env.sleep(1_000);
      const after = await handle.query(orderStateQuery);
      expect(after.ladderStep).toBe(0);
      const nextCheckIn = Date.parse(after.nextCheckAt ?? '') - (await env.currentTimeMs());
      expect(nextCheckIn).toBeLessThanOrEqual(3_000);
      await handle.signal(paymentNoticeSignal, notice(orderId));
      expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'mq' });
      return handle;
    },
  );

  it('a ladder restart and a delayed first check not yet acted on survive continue-as-new', () => {
    const input: OrderWorkflowInput = {
      orderId: 'wf_carry',
      amount: AMOUNT,
      currency: 'CNY',
      payDeadline: '2026-01-01T00:30:00.000Z',
      pollLadder: DEFAULT_LADDER,
      firstCheckAt: '2026-01-01T00:00:03.000Z',
    };
    const run = new OrderRun(input);
    // What the paymentInitiated handler does; the next run must still restart the ladder.
    run.restartLadder = true;
    // Continue-as-new hands the carried state over as JSON.
    const carried = JSON.parse(JSON.stringify(run.carry()));
    const next = new OrderRun({ ...input, carried });
    expect(next.restartLadder).toBe(true);
    expect(next.firstCheckAt).toBe(Date.parse('2026-01-01T00:00:03.000Z'));
    expect(next.state.generation).toBe(1);
  });

  scenario(
    'continue-as-new-duplicate-flood',
    'keeps history bounded under a flood of duplicate notices by continuing as new',
    async () => {
      // Small numbers, so that the recorded chain (the replay fixture) stays small.
      const historyLimit = 40;
      const BURST = 10;
      const { orderId, handle } = await startOrder({}, { historyLimit });
      const duplicate = notice(orderId, { status: 'WAIT_BUYER_PAY' });
      // Signals that arrive while a continue-as-new is being committed make the server fail that task,
      // so a run can exceed the limit until a burst ends: send bursts of BURST with pauses between them.
      for (let burst = 0; burst < 5; burst++) {
        for (let i = 0; i < BURST; i++) await handle.signal(paymentNoticeSignal, duplicate);
        await env.sleep(1_000);
      }
      const state = await handle.query(orderStateQuery);
      expect(state.generation).toBeGreaterThanOrEqual(1);
      expect(state.duplicateNotices).toBeGreaterThan(0);
      await handle.signal(paymentNoticeSignal, notice(orderId));
      expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'mq' });
      // No run of the chain grew past the limit plus the rest of a burst, each of whose signals can cost
      // up to 3 events (itself, a failed task's scheduled and failed events): measured 58-61, 45-51 and
      // 15 events for a limit of 40 and bursts of 10.
      const runs = await fetchChain(handle);
      expect(runs.length).toBeGreaterThanOrEqual(2);
      for (const history of runs) {
        expect(history.events?.length ?? 0).toBeLessThanOrEqual(historyLimit + 3 * BURST);
      }
      // One row for the duplicated notice, one for the paid one (ladder checks may add poll rows).
      expect((await events(orderId)).filter((e) => e.source === 'mq')).toHaveLength(2);
      return handle;
    },
  );
});
