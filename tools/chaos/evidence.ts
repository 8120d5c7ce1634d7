import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import amqplib from 'amqplib';
import type { Database } from '../../src/db/client';
import { findDiscrepancies, findOrders, findPaymentEvents } from '../../src/db/orders';
import { orderWorkflowId } from '../../src/domain';
import { declareAndPurge, topologyFor } from '../../src/mq/topology';
import type { Config } from '../../src/platform/config';
import { activityRuns } from '../../src/platform/history';
import type { ServiceProcess } from '../service';
import { findTrades } from '../simulator/trades';
import type {
  DiscrepancyRowLite,
  EventRowLite,
  OrderRowLite,
  TradeRowLite,
  TransitionEvidence,
  WorkflowEvidence,
} from './checks';

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
  const connection = await amqplib.connect(config.AMQP_URL);
  try {
    const channel = await connection.createChannel();
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

const TRANSITION_ACTIVITIES = new Set(['markOrderPaid', 'closeOrder', 'holdOrderForReview']);

/** The latest run's history of an order's workflow, reduced to what checkSingleTransition needs. */
export async function workflowEvidence(client: Client, orderId: string): Promise<WorkflowEvidence> {
  const history = await client.workflow.getHandle(orderWorkflowId(orderId)).fetchHistory();
  const transitions: TransitionEvidence[] = [];
  for (const run of activityRuns(history)) {
    if (!TRANSITION_ACTIVITIES.has(run.type) || !run.result) continue;
    const value = defaultPayloadConverter.fromPayload<{ changed: boolean; status: string | null }>(
      run.result,
    );
    transitions.push({ activity: run.type, changed: value.changed, status: value.status });
  }
  let execution = 'RUNNING';
  let resultStatus: string | null = null;
  for (const event of history.events ?? []) {
    const done = event.workflowExecutionCompletedEventAttributes;
    if (done) {
      execution = 'COMPLETED';
      const payload = done.result?.payloads?.[0];
      resultStatus = payload
        ? (defaultPayloadConverter.fromPayload<{ status: string }>(payload)?.status ?? null)
        : null;
    }
    if (event.workflowExecutionFailedEventAttributes) execution = 'FAILED';
    if (event.workflowExecutionTerminatedEventAttributes) execution = 'TERMINATED';
    if (event.workflowExecutionTimedOutEventAttributes) execution = 'TIMED_OUT';
    if (event.workflowExecutionCanceledEventAttributes) execution = 'CANCELED';
    if (event.workflowExecutionContinuedAsNewEventAttributes) execution = 'CONTINUED_AS_NEW';
  }
  return { orderId, execution, resultStatus, transitions };
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
  deps: { config: Config; temporal: Client; signal?: AbortSignal },
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
        const connection = await amqplib.connect(deps.config.AMQP_URL);
        try {
          const channel = await connection.createChannel();
          const { consumerCount } = await channel.checkQueue(topology.paySuccessQueue);
          if (consumerCount > 0) return true;
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
