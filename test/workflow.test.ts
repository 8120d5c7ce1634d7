import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Activities, createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import { findOrder, insertOrder } from '../src/db/orders';
import { handleNoticeForEndedWorkflow } from '../src/order/late-notice';
import { orderWorkflowInput, orderWorkflowStartOptions } from '../src/order/start';
import { activityTypes } from '../src/platform/history';
import { installWorkerRuntime } from '../workers/runtime';
import {
  cancelOrderSignal,
  type OrderWorkflowInput,
  orderStateQuery,
  orderWorkflow,
  type PaymentNotice,
  paymentInitiatedSignal,
  paymentNoticeSignal,
} from '../workflows/order';
import { OrderIdKey, PaymentStatusKey, SettledByKey } from '../workflows/search-attributes';
import { testConfig } from './support/env';
import { paidNotice } from './support/notice';
import { ScriptedGateway } from './support/scripted-gateway';

/**
 * The order state machine on the time-skipping test server: real timers of up to 30 minutes pass in
 * moments, the activities write to the real test database, and the provider answers from a script.
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
  };
}

let env: TestWorkflowEnvironment;
let worker: Worker;
let workerRun: Promise<void>;

beforeAll(async () => {
  // Scripted provider outages make the SDK log every failed attempt at WARN.
  installWorkerRuntime('ERROR');
  const testServer =
    process.env.TEMPORAL_TEST_SERVER_PATH ?? path.resolve(__dirname, '../.venv/bin/temporal-test-server');
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: testServer } },
  });
  // Custom search attributes must exist on the test server as on the dev server (scripts/temporal-dev.sh).
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      [OrderIdKey, PaymentStatusKey, SettledByKey].map((key) => [
        key.name,
        temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      ]),
    ),
  });
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    workflowsPath: path.resolve(__dirname, '../workflows'),
    activities: withLostReplies(createActivities({ db: database.db, gateway })),
  });
  workerRun = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await workerRun;
  await env?.teardown();
  await database.close();
});

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
  it('is paid by MQ before the first poll', async () => {
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
  });

  it('settles by MQ once when the database writes commit but their replies are lost and they retry', async () => {
    const { orderId, handle } = await startOrder();
    replyLostOnce.add(`${orderId}:recordPaymentNotice`);
    replyLostOnce.add(`${orderId}:markOrderPaid`);
    await handle.signal(paymentNoticeSignal, notice(orderId));
    const result = await handle.result();
    // The retried recordPaymentNotice finds its own row (isNew: false) and markOrderPaid its own update
    // (changed: false): the order is still settled by this notice, not left to the ladder.
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'mq', pollAttempts: 0 });
    expect(replyLostOnce.size).toBe(0);
    expect(gateway.queryCount(orderId)).toBe(0);
    expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    expect((await events(orderId)).map((e) => e.source)).toEqual(['mq']);
  });

  it.each([
    [1, 3_000],
    [3, 93_000],
    [LADDER_CHECKS_BEFORE_DEADLINE, 1_593_000],
  ])('discovers the payment at ladder check %i (t=%ims) when the notice is lost', async (check, atMs) => {
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
  });

  it('closes an order that is never paid at the deadline, after closing the trade', async () => {
    const { orderId, handle } = await startOrder();
    const result = await handle.result();
    expect(result).toMatchObject({
      status: 'CLOSED',
      settledBy: 'poll',
      pollAttempts: LADDER_CHECKS_BEFORE_DEADLINE + 1,
    });
    expect(gateway.closes).toContain(orderId);
    expect(await orderRow(orderId)).toMatchObject({ status: 'CLOSED', closeReason: 'PAY_DEADLINE_PASSED' });
    const rows = await events(orderId);
    expect(rows.at(-1)).toMatchObject({ source: 'poll', trade_status: 'TRADE_CLOSED' });
  });

  it('pays, not closes, when the provider reports the trade paid at the moment of close', async () => {
    const { orderId, handle } = await startOrder({ paidAtClose: true });
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'poll' });
    expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', closedAt: null });
    expect(await activityCount(handle, 'closeOrder')).toBe(0);
  });

  it('cancel closes an unpaid order after checking the provider', async () => {
    const { orderId, handle } = await startOrder();
    await handle.signal(cancelOrderSignal);
    const result = await handle.result();
    expect(result).toMatchObject({ status: 'CLOSED' });
    expect(gateway.closes).toContain(orderId);
    expect(gateway.queryCount(orderId)).toBe(1);
    expect(await orderRow(orderId)).toMatchObject({
      status: 'CLOSED',
      closeReason: 'CANCELLED_BY_BUYER',
      settledBy: 'manual',
    });
  });

  it('cancel of an order the buyer already paid pays it instead', async () => {
    const { orderId, handle } = await startOrder({ paidFromQuery: 1 });
    await handle.signal(cancelOrderSignal, { reason: 'BUYER_CHANGED_MIND' });
    expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'poll' });
    expect(gateway.closes).not.toContain(orderId);
  });

  it('ignores duplicate notices: one transition, one event row', async () => {
    const { orderId, handle } = await startOrder();
    const paid = notice(orderId);
    for (let i = 0; i < 5; i++) await handle.signal(paymentNoticeSignal, paid);
    expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    expect(await events(orderId)).toHaveLength(1);
    expect(await activityCount(handle, 'markOrderPaid')).toBe(1);
    expect(await activityCount(handle, 'recordPaymentNotice')).toBe(1);
  });

  it('never pays on an amount mismatch: NEEDS_REVIEW and one AMOUNT_MISMATCH discrepancy', async () => {
    const { orderId, handle } = await startOrder();
    await handle.signal(paymentNoticeSignal, notice(orderId, { amount: AMOUNT - 1 }));
    expect(await handle.result()).toMatchObject({
      status: 'NEEDS_REVIEW',
      discrepancies: ['AMOUNT_MISMATCH'],
    });
    expect(await orderRow(orderId)).toMatchObject({ status: 'NEEDS_REVIEW', paidAt: null });
    expect(await discrepancies(orderId)).toEqual([{ kind: 'AMOUNT_MISMATCH' }]);
    const { typedSearchAttributes } = await handle.describe();
    expect(typedSearchAttributes.get(PaymentStatusKey)).toBe('NEEDS_REVIEW');
    expect(typedSearchAttributes.get(OrderIdKey)).toBe(orderId);
  });

  it('a wrong amount found by polling is held for review too', async () => {
    const { orderId, handle } = await startOrder({ paidFromQuery: 1, paidAmount: AMOUNT * 2 });
    expect(await handle.result()).toMatchObject({ status: 'NEEDS_REVIEW' });
    expect(await discrepancies(orderId)).toEqual([{ kind: 'AMOUNT_MISMATCH' }]);
  });

  it('a notice after close leaves the order CLOSED, records PAID_AFTER_CLOSE once, starts no second run', async () => {
    const { orderId, handle } = await startOrder();
    expect(await handle.result()).toMatchObject({ status: 'CLOSED' });
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
  });

  it('survives a provider outage: failed checks are recorded, a later check settles', async () => {
    // Check 1 fails all 3 attempts; check 2 fails twice, then the provider is back and says paid.
    const { orderId, handle } = await startOrder({ downForCalls: 5, paidFromQuery: 6 });
    expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'poll', pollAttempts: 2 });
    expect(gateway.queryCount(orderId)).toBe(6);
    expect(await orderRow(orderId)).toMatchObject({ status: 'PAID', settledBy: 'poll' });
  });

  it('"payment initiated" restarts the ladder at its first step', async () => {
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
  });

  it('keeps history bounded under a flood of duplicate notices by continuing as new', async () => {
    const historyLimit = 200;
    const BURST = 100;
    const { orderId, handle } = await startOrder({}, { historyLimit });
    const duplicate = notice(orderId, { status: 'WAIT_BUYER_PAY' });
    // Signals that arrive while a continue-as-new is being committed make the server retry that task,
    // so one run can exceed the limit by one burst: send bursts of BURST with pauses between them.
    for (let burst = 0; burst < 4; burst++) {
      for (let i = 0; i < BURST; i++) await handle.signal(paymentNoticeSignal, duplicate);
      await env.sleep(1_000);
    }
    const state = await handle.query(orderStateQuery);
    expect(state.generation).toBeGreaterThanOrEqual(1);
    await handle.signal(paymentNoticeSignal, notice(orderId));
    expect(await handle.result()).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    // No run of the chain grew past the limit plus one burst (measured: 264 and 252 events for 200 + 100).
    let runId: string | undefined = (await handle.describe()).runId;
    let runs = 0;
    while (runId) {
      const history: temporal.api.history.v1.IHistory = await env.client.workflow
        .getHandle(handle.workflowId, runId)
        .fetchHistory();
      expect(history.events?.length ?? 0).toBeLessThanOrEqual(historyLimit + BURST);
      runs++;
      const first: temporal.api.history.v1.IWorkflowExecutionStartedEventAttributes | null | undefined =
        history.events?.[0]?.workflowExecutionStartedEventAttributes;
      runId = first?.continuedExecutionRunId || undefined;
    }
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(await events(orderId)).toHaveLength(2);
  });
});
