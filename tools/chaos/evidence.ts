import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import amqplib from 'amqplib';
import type { Sql } from '../../src/db/client';
import { type OrderStatus, orderWorkflowId } from '../../src/domain/index';
import { declareAndPurge, HEADERS, topologyFor } from '../../src/mq/topology';
import type { Config } from '../../src/platform/config';
import { activityRuns } from '../../src/platform/history';
import type { ServiceProcess } from '../service';
import type {
  DiscrepancyRowLite,
  EventRowLite,
  OrderRowLite,
  ParkedMessage,
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

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export class Simulator {
  constructor(private readonly url: string) {}

  async call(method: string, route: string, body?: unknown): Promise<{ status: number; json: unknown }> {
    const response = await fetch(`${this.url}${route}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await response.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // keep the text
    }
    return { status: response.status, json };
  }

  async waitUntilUp(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      try {
        if ((await fetch(`${this.url}/health`)).ok) return;
      } catch {
        // not up yet
      }
      await sleep(250, signal);
    }
    throw new Error(`the payment simulator did not answer at ${this.url} within ${timeoutMs / 1000}s`);
  }
}

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

/** Reads every parked message without consuming it: get each (unacked), then requeue them all. */
export async function readParked(config: Config): Promise<ParkedMessage[]> {
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const connection = await amqplib.connect(config.AMQP_URL);
  try {
    const channel = await connection.createChannel();
    const parked: ParkedMessage[] = [];
    for (;;) {
      const message = await channel.get(topology.parkingQueue, { noAck: false });
      if (!message) break;
      const headers = message.properties.headers ?? {};
      const own = headers[HEADERS.reason];
      // Dead-lettered by the broker itself (delivery limit): the reason is in x-death.
      const death = Array.isArray(headers['x-death']) ? headers['x-death'][0]?.reason : undefined;
      parked.push({
        messageId: message.properties.messageId ?? null,
        reason: own ? String(own) : death ? `BROKER_${String(death).toUpperCase()}` : null,
      });
    }
    await channel.nackAll(true);
    await channel.close();
    return parked;
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

/** drizzle's postgres.js setup returns timestamps as text; plain postgres.js as Date. */
export function toDate(value: Date | string | null): Date | null {
  return value === null ? null : new Date(value);
}

export async function statusCounts(sql: Sql, ids: string[]) {
  const rows = await sql<{ status: string; n: string }[]>`
    select status, count(*)::text as n from orders where id = any(${ids}) group by status`;
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Record<string, number>;
}

/**
 * The rows the checks read: payrecon's orders, events and discrepancies, and the simulator's own table
 * (provider.trades): the provider's truth, read where it is kept.
 */
export async function readRows(sql: Sql, ids: string[]) {
  const orderRows = await sql<
    {
      id: string;
      amount: string;
      status: OrderStatus;
      settled_by: string | null;
      trade_no: string | null;
      paid_at: Date | string | null;
      closed_at: Date | string | null;
    }[]
  >`select id, amount, status, settled_by, trade_no, paid_at, closed_at from orders where id = any(${ids})`;
  const orders = new Map<string, OrderRowLite>(
    orderRows.map((r) => [
      r.id,
      {
        id: r.id,
        amount: Number(r.amount),
        status: r.status,
        settledBy: r.settled_by,
        tradeNo: r.trade_no,
        paidAt: toDate(r.paid_at),
        closedAt: toDate(r.closed_at),
      },
    ]),
  );
  // The simulator's own table (provider.trades): the provider's truth, read where it is kept.
  const tradeRows = await sql<
    {
      order_id: string;
      trade_no: string;
      status: string;
      amount: string;
      paid_amount: string | null;
      paid_at: Date | string | null;
      closed_at: Date | string | null;
    }[]
  >`select order_id, trade_no, status, amount, paid_amount, paid_at, closed_at from provider.trades where order_id = any(${ids})`;
  const trades = new Map<string, TradeRowLite>(
    tradeRows.map((r) => [
      r.order_id,
      {
        orderId: r.order_id,
        tradeNo: r.trade_no,
        status: r.status,
        amount: Number(r.amount),
        paidAmount: r.paid_amount === null ? null : Number(r.paid_amount),
        paidAt: toDate(r.paid_at),
        closedAt: toDate(r.closed_at),
      },
    ]),
  );
  const events = (
    await sql<{ order_id: string; source: string; message_id: string | null }[]>`
      select order_id, source, message_id from payment_events where order_id = any(${ids})`
  ).map((r): EventRowLite => ({ orderId: r.order_id, source: r.source, messageId: r.message_id }));
  const discrepancies = (
    await sql<{ order_id: string; kind: string }[]>`
      select order_id, kind from payment_discrepancies where order_id = any(${ids})`
  ).map((r): DiscrepancyRowLite => ({ orderId: r.order_id, kind: r.kind }));
  return { orders, trades, events, discrepancies };
}
