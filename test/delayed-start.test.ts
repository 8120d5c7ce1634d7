import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { findOrder } from '../src/db/orders';
import { SimulatorClient } from '../tools/simulator/client';
import type { OrderWorkflowState } from '../workflows/order';
import { inProcessCli } from './support/cli';
import { deleteTopology, testConfig } from './support/env';
import { DELAYED_START_SCENARIOS, HistoryRecorder } from './support/histories';
import { createOrderWithTrade, type Stack, startStack } from './support/stack';

const { EventType } = temporal.api.enums.v1;

/**
 * ORDER_START_DELAY=first-step on the real dev server: the order's workflow is created with a start
 * delay of the ladder's first step. A notice in that time starts it by signal-with-start and the order
 * settles in one workflow task with no timer; without one, the first task runs the first check at once,
 * at the first step after creation, not a step later.
 */
describe('orders started with a delay of the first ladder step', () => {
  const config = testConfig('delayed-start', { ORDER_START_DELAY: 'first-step' });
  let stack: Stack;
  let simulator: SimulatorClient;
  const ladder = { stepsMs: [2_000, 3_600_000], repeatMs: 3_600_000 };
  // A first step an hour away: the workflow stays in its start delay for the whole test.
  const far = { stepsMs: [3_600_000], repeatMs: 3_600_000 };
  const { cli, cliJson } = inProcessCli(runCli, () => stack.config);

  beforeAll(async () => {
    stack = await startStack(config, { simulator: true });
    simulator = new SimulatorClient(stack.config.PROVIDER_URL);
  });
  const histories = new HistoryRecorder(DELAYED_START_SCENARIOS);
  afterAll(async (context) => {
    await histories.finish(context);
    await stack?.stop();
    await deleteTopology(config);
  });

  const eventTypes = async (workflowId: string) =>
    ((await stack.temporal.workflow.getHandle(workflowId).fetchHistory()).events ?? []).map(
      (e) => e.eventType,
    );

  it('a notice during the delay settles the order in one workflow task, with no timer', async () => {
    const { order, workflowId } = await createOrderWithTrade(stack, { amount: 2_500, pollLadder: ladder });
    const started = await stack.temporal.workflow.getHandle(workflowId).describe();
    expect(started.raw.workflowExecutionInfo?.executionTime).toBeTruthy();
    await simulator.pay(order.id);
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({
      status: 'PAID',
      settledBy: 'mq',
      pollAttempts: 0,
    });
    const types = await eventTypes(workflowId);
    expect(types.filter((t) => t === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)).toHaveLength(1);
    expect(types).not.toContain(EventType.EVENT_TYPE_TIMER_STARTED);
    // One local activity: the notice recorded and the order paid in one transaction (markOrderPaidByNotice).
    expect(types.filter((t) => t === EventType.EVENT_TYPE_MARKER_RECORDED)).toHaveLength(1);
    // One upsert at the end: PaymentStatus and SettledBy together.
    expect(types.filter((t) => t === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)).toHaveLength(1);
    expect(await findOrder(stack.db, order.id)).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    await histories.record('paid-mq-during-start-delay', stack.temporal.workflow.getHandle(workflowId));
  });

  it('without a notice, the first check runs when the delay ends, one step after creation', async () => {
    const { order, workflowId } = await createOrderWithTrade(stack, { amount: 2_500, pollLadder: ladder });
    await simulator.pay(order.id, { faults: { drop: true } });
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({
      status: 'PAID',
      settledBy: 'poll',
      pollAttempts: 1,
    });
    const history = await stack.temporal.workflow.getHandle(workflowId).fetchHistory();
    const events = history.events ?? [];
    // The first workflow task ran the check: no timer before it.
    const firstActivity = events.findIndex(
      (e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    );
    const firstTimer = events.findIndex((e) => e.eventType === EventType.EVENT_TYPE_TIMER_STARTED);
    expect(firstActivity).toBeGreaterThan(0);
    expect(firstTimer === -1 || firstTimer > firstActivity).toBe(true);
    // That first task ran when the delay ended, not before.
    const at = (type: number) => {
      const time = events.find((e) => e.eventType === type)?.eventTime;
      return Number(time?.seconds ?? 0) * 1000 + Math.floor((time?.nanos ?? 0) / 1e6);
    };
    const delayed =
      at(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED) - at(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED);
    expect(delayed).toBeGreaterThanOrEqual(1_900);
    expect(await findOrder(stack.db, order.id)).toMatchObject({ status: 'PAID', settledBy: 'poll' });
    await histories.record('paid-poll-after-start-delay', stack.temporal.workflow.getHandle(workflowId));
  });

  it('during the delay, `query` and `order show` report the state it starts with, and when it starts', async () => {
    const { order, workflowId } = await createOrderWithTrade(stack, { amount: 4_200, pollLadder: far });
    const queried = await cliJson<{ workflowId: string; state: OrderWorkflowState; startsAt: string }>([
      'query',
      order.id,
    ]);
    expect(queried.workflowId).toBe(workflowId);
    expect(queried.state).toMatchObject({
      orderId: order.id,
      amount: 4_200,
      phase: 'AWAITING_PAYMENT',
      pollAttempts: 0,
    });
    // It starts about one first step after creation, and the first check is due then.
    const startsIn = Date.parse(queried.startsAt) - Date.now();
    expect(startsIn).toBeGreaterThan(3_500_000);
    expect(startsIn).toBeLessThanOrEqual(3_600_000);
    expect(Math.abs(Date.parse(queried.state.nextCheckAt ?? '') - Date.parse(queried.startsAt))).toBeLessThan(
      1_000,
    );
    const shown = await cliJson<{
      workflow: { status: string; startsAt: string; state: OrderWorkflowState };
    }>(['order', 'show', order.id]);
    expect(shown.workflow).toMatchObject({ status: 'RUNNING', startsAt: queried.startsAt });
    expect(shown.workflow.state.phase).toBe('AWAITING_PAYMENT');
    const text = await cli(['query', order.id]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('not started yet');
    // A notice ends the delay: the order settles and the query is answered by the workflow itself.
    await simulator.pay(order.id);
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({ status: 'PAID' });
  });

  it('an order due before its first step is started at its deadline and closed then, not a step later', async () => {
    const { order, workflowId } = await createOrderWithTrade(stack, {
      amount: 1_100,
      pollLadder: far,
      payWithinMs: 1_500,
    });
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'CLOSED' });
    expect(await findOrder(stack.db, order.id)).toMatchObject({
      status: 'CLOSED',
      closeReason: 'PAY_DEADLINE_PASSED',
    });
  });

  it('`signal cancel` during the delay starts the workflow at once: closed now, not after the first step', async () => {
    const { order, workflowId } = await createOrderWithTrade(stack, { amount: 1_300, pollLadder: far });
    const cancelled = await cli(['signal', 'cancel', order.id, '--reason', 'buyer left']);
    expect(cancelled.code).toBe(0);
    // Without signal-with-start the signal would wait an hour for the first task.
    const result = await stack.temporal.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ status: 'CLOSED', settledBy: 'manual' });
    expect(await findOrder(stack.db, order.id)).toMatchObject({
      status: 'CLOSED',
      closeReason: 'buyer left',
    });
  });
});
