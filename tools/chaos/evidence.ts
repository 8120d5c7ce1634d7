import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { inArray } from 'drizzle-orm';
import type { Database } from '../../src/db/client';
import { findDiscrepancies, findOrders, findPaymentEvents } from '../../src/db/orders';
import { merchantEvents, notificationAttempts, refunds } from '../../src/db/schema';
import { orderWorkflowId } from '../../src/domain';
import { connectAny } from '../../src/mq/connect';
import { declareAndPurge, topologyFor } from '../../src/mq/topology';
import { refundWorkflowId } from '../../src/order/refund';
import type { Config } from '../../src/platform/config';
import { activityRuns } from '../../src/platform/history';
import { deliveryWorkflowId } from '../../workflows/notify-merchant';
import { merchantDeliveries } from '../merchant/db/schema';
import { deliveryView } from '../merchant/store';
import type { ServiceProcess } from '../service';
import { providerRefunds } from '../simulator/db/schema';
import { findTrades } from '../simulator/trades';
import type {
  AttemptRowLite,
  DiscrepancyRowLite,
  EventRowLite,
  MerchantEventLite,
  OrderRowLite,
  ProviderRefundLite,
  PublishedMessage,
  RefundEvidence,
  RefundRowLite,
  TradeRowLite,
  TransitionEvidence,
  WorkflowEvidence,
} from './checks';

const ROOT = path.resolve(__dirname, '..', '..');

export type History = temporal.api.history.v1.IHistory;

/** What the chaos driver reads from (and does to) RabbitMQ, Temporal, Postgres and the processes. */

const run = promisify(execFile);

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Empties the chaos prefix's queues, so the run's accounting starts from nothing. */
export async function resetQueues(config: Config): Promise<void> {
  await declareAndPurge(config.AMQP_URL, topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY));
}

export async function queueDepths(config: Config) {
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  // Any node of a cluster (AMQP_URL may list them all): a quorum queue's count is its leader's, and the
  // classic parking queue's is its home node's, wherever the driver is connected.
  const connection = await connectAny(config.AMQP_URL);
  // A node stopping under it (--cluster) or a queue whose node is down must reject, not crash the driver.
  connection.on('error', () => {});
  try {
    const channel = await connection.createChannel();
    channel.on('error', () => {});
    const [work, retry, parking] = await Promise.all(
      [topology.paySuccessQueue, topology.retryQueue, topology.parkingQueue].map((q) =>
        channel.checkQueue(q),
      ),
    );
    await channel.close();
    return {
      work: work?.messageCount ?? 0,
      retry: retry?.messageCount ?? 0,
      parking: parking?.messageCount ?? 0,
    };
  } finally {
    await connection.close();
  }
}

/** Terminates workflows still running on the chaos task queue from an earlier, interrupted run. */
export async function terminateLeftovers(client: Client, taskQueue: string, log: (line: string) => void) {
  let n = 0;
  for await (const execution of client.workflow.list({
    query: `TaskQueue="${taskQueue}" AND ExecutionStatus="Running"`,
  })) {
    await client.workflow
      .getHandle(execution.workflowId, execution.runId)
      .terminate('left over from an interrupted chaos run')
      .catch(() => {});
    n++;
  }
  if (n > 0) log(`terminated ${n} workflows left over on task queue ${taskQueue}`);
}

const TRANSITION_ACTIVITIES = new Set([
  'markOrderPaid',
  'markOrderPaidByNotice',
  'closeOrder',
  'holdOrderForReview',
]);

/** The latest run's history of an order's workflow, reduced to what checkSingleTransition needs. */
export async function workflowEvidence(
  client: Client,
  orderId: string,
): Promise<WorkflowEvidence & { history: History }> {
  const history = await client.workflow.getHandle(orderWorkflowId(orderId)).fetchHistory();
  const transitions: TransitionEvidence[] = [];
  for (const run of activityRuns(history)) {
    if (!TRANSITION_ACTIVITIES.has(run.type) || !run.result) continue;
    const value = defaultPayloadConverter.fromPayload<{ changed: boolean; status: string | null }>(
      run.result,
    );
    transitions.push({ activity: run.type, changed: value.changed, status: value.status });
  }
  const { execution, result } = executionOf<{ status: string }>(history);
  return { orderId, execution, resultStatus: result?.status ?? null, transitions, history };
}

/** How a history ended (COMPLETED, FAILED, ..., RUNNING) and its result when it completed. */
function executionOf<T>(history: History): { execution: string; result: T | null } {
  let execution = 'RUNNING';
  let result: T | null = null;
  for (const event of history.events ?? []) {
    const done = event.workflowExecutionCompletedEventAttributes;
    if (done) {
      execution = 'COMPLETED';
      const payload = done.result?.payloads?.[0];
      result = payload ? (defaultPayloadConverter.fromPayload<T>(payload) ?? null) : null;
    }
    if (event.workflowExecutionFailedEventAttributes) execution = 'FAILED';
    if (event.workflowExecutionTerminatedEventAttributes) execution = 'TERMINATED';
    if (event.workflowExecutionTimedOutEventAttributes) execution = 'TIMED_OUT';
    if (event.workflowExecutionCanceledEventAttributes) execution = 'CANCELED';
    if (event.workflowExecutionContinuedAsNewEventAttributes) execution = 'CONTINUED_AS_NEW';
  }
  return { execution, result };
}

/** A refund's workflow history, reduced to what the refund checks need. */
export async function refundEvidence(
  client: Client,
  refund: { id: string; orderId: string },
): Promise<RefundEvidence & { history: History }> {
  const history = await client.workflow.getHandle(refundWorkflowId(refund.id)).fetchHistory();
  const applied: RefundEvidence['applied'] = [];
  let submitted: string | null = null;
  for (const run of activityRuns(history)) {
    if (run.type === 'submitRefund' && run.result)
      submitted = defaultPayloadConverter.fromPayload<{ status: string }>(run.result)?.status ?? null;
    if (run.type !== 'applyRefund' || !run.result) continue;
    const value = defaultPayloadConverter.fromPayload<{
      changed: boolean;
      orderStatus: string | null;
      refundedAmount: number | null;
      event: { id: string } | null;
    }>(run.result);
    applied.push({
      changed: value.changed,
      orderStatus: value.orderStatus,
      refundedAmount: value.refundedAmount,
      eventId: value.event?.id ?? null,
    });
  }
  const { execution, result } = executionOf<{ phase: string; queries: number; settledBy: string | null }>(
    history,
  );
  return {
    refundId: refund.id,
    orderId: refund.orderId,
    execution,
    phase: result?.phase ?? null,
    queries: result?.queries ?? 0,
    submitted,
    applied,
    history,
  };
}

/**
 * An order's merchant delivery workflow: the history of its latest run (for the replay; each run is
 * one event), and how it ended (COMPLETED once none of the order's events is PENDING).
 */
export async function notificationHistory(client: Client, orderId: string) {
  const history = await client.workflow.getHandle(deliveryWorkflowId(orderId)).fetchHistory();
  return { orderId, execution: executionOf(history).execution, history };
}

/** Any workflow's history by id (the reconciliation's). */
export async function historyOf(client: Client, workflowId: string): Promise<History> {
  return client.workflow.getHandle(workflowId).fetchHistory();
}

/**
 * Replays the histories the run fetched against the current workflow code, as test/replay.test.ts
 * does: one failure line per history that does not replay (a non-determinism, a bad history).
 */
export async function replayHistories(
  histories: { workflowId: string; history: History }[],
): Promise<{ replayed: number; failures: string[] }> {
  try {
    // The driver has no native runtime yet: install one that only says what matters.
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // installed already (a second run in one process)
  }
  const failures: string[] = [];
  let replayed = 0;
  const results = Worker.runReplayHistories(
    { workflowsPath: path.join(ROOT, 'workflows'), replayName: 'payrecon-chaos-replay' },
    histories,
  );
  for await (const result of results) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message}`);
  }
  return { replayed, failures };
}

/**
 * The refund notices the payment simulator published or dropped, from its own log (pino JSON lines):
 * their message ids are random and never reach the driver otherwise.
 */
export function refundNoticesFromLog(file: string): {
  published: PublishedMessage[];
  dropped: { orderId: string; messageId: string }[];
} {
  const published: PublishedMessage[] = [];
  const dropped: { orderId: string; messageId: string }[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.includes('trade.refunded')) continue;
    let entry: { msg?: string; orderId?: string; messageId?: string; routingKey?: string; copies?: number };
    try {
      entry = JSON.parse(line);
    } catch {
      continue;
    }
    if (entry.routingKey !== 'trade.refunded' || !entry.orderId || !entry.messageId) continue;
    if (entry.msg === 'notification published') {
      published.push({ orderId: entry.orderId, messageId: entry.messageId, copies: entry.copies ?? 1 });
    } else if (entry.msg === 'fault: notification dropped') {
      dropped.push({ orderId: entry.orderId, messageId: entry.messageId });
    }
  }
  return { published, dropped };
}

/**
 * The rows of the lifecycle beyond the payment: payrecon's refunds and merchant events with their
 * attempts, the simulator's refunds (its own table: the provider's truth), and every delivery the
 * merchant simulator logged for the run's orders.
 */
export async function readLifecycleRows(db: Database, ids: string[]) {
  const refundRows = (await db.select().from(refunds).where(inArray(refunds.orderId, ids))).map(
    (r): RefundRowLite => ({
      id: r.id,
      orderId: r.orderId,
      outRequestNo: r.outRequestNo,
      amount: r.amount,
      status: r.status,
      settledBy: r.settledBy,
    }),
  );
  const providerRows = (
    await db.select().from(providerRefunds).where(inArray(providerRefunds.orderId, ids))
  ).map(
    (r): ProviderRefundLite => ({
      orderId: r.orderId,
      outRequestNo: r.outRequestNo,
      amount: r.amount,
      status: r.status,
      executions: r.executions,
    }),
  );
  const events = (await db.select().from(merchantEvents).where(inArray(merchantEvents.orderId, ids))).map(
    (e): MerchantEventLite => ({
      id: e.id,
      orderId: e.orderId,
      sequence: e.sequence,
      type: e.type,
      status: e.status,
      endpointId: e.endpointId,
    }),
  );
  const attempts: AttemptRowLite[] = [];
  const eventIds = events.map((e) => e.id);
  for (let i = 0; i < eventIds.length; i += 5_000) {
    const rows = await db
      .select()
      .from(notificationAttempts)
      .where(inArray(notificationAttempts.eventId, eventIds.slice(i, i + 5_000)));
    for (const a of rows) {
      attempts.push({
        eventId: a.eventId,
        attempt: a.attempt,
        startedAt: a.startedAt,
        durationMs: a.durationMs,
        httpStatus: a.httpStatus,
        errorKind: a.errorKind,
      });
    }
  }
  const deliveries = (
    await db.select().from(merchantDeliveries).where(inArray(merchantDeliveries.orderId, ids))
  )
    .sort((a, b) => a.id - b.id)
    .map(deliveryView);
  return { refunds: refundRows, providerRefunds: providerRows, events, attempts, deliveries };
}

export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i] as T);
      }
    }),
  );
  return results;
}

/** An evenly spread, seed-independent sample: every k-th order. */
export function sample<T>(items: T[], limit: number): T[] {
  if (items.length <= limit) return items;
  const step = items.length / limit;
  return Array.from({ length: limit }, (_, i) => items[Math.floor(i * step)] as T);
}

/**
 * Resolves once the restarted process serves again: the worker polls the task queue (its default
 * identity is `<pid>@<host>`), the consumer is subscribed to the work queue.
 */
export async function waitUntilServing(
  name: ServiceProcess,
  pid: number | undefined,
  deps: { config: Config; temporal: Client; signal?: AbortSignal; consumers?: number },
  timeoutMs = 90_000,
): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if (name === 'worker') {
        const { pollers } = await deps.temporal.workflowService.describeTaskQueue({
          namespace: deps.config.TEMPORAL_NAMESPACE,
          taskQueue: { name: deps.config.TEMPORAL_TASK_QUEUE },
        });
        if ((pollers ?? []).some((p) => p.identity?.startsWith(`${pid}@`))) return true;
      } else if (name === 'consumer') {
        const topology = topologyFor(deps.config.AMQP_PREFIX, deps.config.CONSUMER_RETRY_DELAY);
        const connection = await connectAny(deps.config.AMQP_URL);
        connection.on('error', () => {});
        try {
          const channel = await connection.createChannel();
          channel.on('error', () => {});
          const { consumerCount } = await channel.checkQueue(topology.paySuccessQueue);
          if (consumerCount >= (deps.consumers ?? 1)) return true;
        } finally {
          await connection.close();
        }
      } else {
        return true;
      }
    } catch {
      // not yet (or the broker is restarting)
    }
    await sleep(250, deps.signal);
  }
  return false;
}

export async function rabbitmqctl(binary: string, args: string[]) {
  await run(binary, args, { timeout: 120_000 });
}

/**
 * The rows the checks read: payrecon's orders, events and discrepancies, and the simulator's own table
 * (provider.trades): the provider's truth, read where it is kept.
 */
export async function readRows(db: Database, ids: string[]) {
  const orders = new Map<string, OrderRowLite>(
    (await findOrders(db, ids)).map((r) => [
      r.id,
      {
        id: r.id,
        amount: r.amount,
        status: r.status,
        settledBy: r.settledBy,
        tradeNo: r.tradeNo,
        paidAt: r.paidAt,
        closedAt: r.closedAt,
        refundedAmount: r.refundedAmount,
      },
    ]),
  );
  const trades = new Map<string, TradeRowLite>(
    (await findTrades(db, ids)).map((r) => [
      r.orderId,
      {
        orderId: r.orderId,
        tradeNo: r.tradeNo,
        status: r.status,
        amount: r.amount,
        paidAmount: r.paidAmount,
        paidAt: r.paidAt,
        closedAt: r.closedAt,
        refundedAmount: r.refundedAmount,
      },
    ]),
  );
  const events = (await findPaymentEvents(db, ids)).map(
    (r): EventRowLite => ({ orderId: r.orderId, source: r.source, messageId: r.messageId }),
  );
  const discrepancies = (await findDiscrepancies(db, ids)).map(
    (r): DiscrepancyRowLite => ({ orderId: r.orderId, kind: r.kind }),
  );
  return { orders, trades, events, discrepancies };
}
