import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import {
  createEndpoint,
  type EndpointRow,
  findEndpoint,
  findEvent,
  listAttempts,
  listStuckEvents,
  setEndpointStatus,
  setEventStatus,
} from '../src/db/merchant';
import { holdOrderForReview, insertOrder, markOrderPaid, resolveReview } from '../src/db/orders';
import type { MerchantEventRef } from '../src/domain';
import { wakeOrderDelivery } from '../src/merchant/delivery';
import { recoverEvents, redeliverEvent } from '../src/merchant/redeliver';
import { reportStuckNotifications } from '../src/merchant/stuck';
import { createMetrics, noMetrics } from '../src/platform/metrics';
import { installWorkerRuntime } from '../workers/runtime';
import { DeliveryStatusKey } from '../workflows/search-attributes';
import { testConfig } from './support/env';
import { DELIVERY_SCENARIOS, fetchChain, HistoryRecorder } from './support/histories';
import { ScriptedGateway } from './support/scripted-gateway';
import { scenarioOf, startTestWorker, startTimeSkipping } from './support/time-skipping';

/**
 * The merchant notification workflow on the time-skipping test server (its ladder spans 11 minutes),
 * the real test database, and a merchant that is a real HTTP server answering as each test scripts.
 */
const config = testConfig('notify');
const database = createDatabase(config.DATABASE_URL, { max: 5 });
const histories = new HistoryRecorder(DELIVERY_SCENARIOS);

interface Received {
  id: string;
  timestamp: string;
  signature: string;
  body: string;
  at: number;
}
/** Per order: what the merchant answers to its n-th request (1-based) for that order. */
type Answer = { status?: number; body?: string; delayMs?: number; headers?: Record<string, string> };
const scripts = new Map<string, (n: number, sequence: number) => Answer>();
const received = new Map<string, Received[]>();
let merchant: Server;
let merchantUrl: string;

let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;

const readBody = async (req: IncomingMessage) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
};

async function answer(req: IncomingMessage, res: ServerResponse) {
  const body = await readBody(req);
  const payload = JSON.parse(body) as { orderId: string; sequence: number };
  const list = received.get(payload.orderId) ?? [];
  list.push({
    id: String(req.headers['webhook-id']),
    timestamp: String(req.headers['webhook-timestamp']),
    signature: String(req.headers['webhook-signature']),
    body,
    at: Date.now(),
  });
  received.set(payload.orderId, list);
  const script = scripts.get(payload.orderId);
  const reply = script?.(list.length, payload.sequence) ?? {};
  if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
  if (res.destroyed) return;
  res.writeHead(reply.status ?? 200, reply.headers).end(reply.body ?? 'success');
}

async function startWorker(): Promise<void> {
  worker = await startTestWorker(env, {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities({
      db: database.db,
      gateway: new ScriptedGateway(),
      merchantAllowlist: config.MERCHANT_PRIVATE_ALLOWLIST,
    }),
    // No sticky queue: a task for a stopped worker's sticky queue would wait for it (the test server
    // does not move it on), and the restart test takes the worker away mid-ladder.
    maxCachedWorkflows: 0,
  });
}

beforeAll(async () => {
  installWorkerRuntime('ERROR');
  merchant = createServer((req, res) => void answer(req, res));
  await new Promise<void>((resolve) => merchant.listen(0, '127.0.0.1', resolve));
  merchantUrl = `http://127.0.0.1:${(merchant.address() as AddressInfo).port}/hooks`;
  env = await startTimeSkipping();
  await startWorker();
});

afterAll(async (file) => {
  await worker?.stop();
  await env?.teardown();
  await new Promise<void>((resolve) => merchant?.close(() => resolve()));
  await database.close();
  await histories.finish(file);
});

const scenario = scenarioOf(histories);

async function endpoint(overrides: Partial<Parameters<typeof createEndpoint>[1]> = {}): Promise<EndpointRow> {
  return createEndpoint(database.db, { url: merchantUrl, ...overrides });
}

/** A paid order whose event (order.paid, sequence 1) goes to `endpointId`. */
async function paidOrderEvent(endpointId: string): Promise<{ orderId: string; event: MerchantEventRef }> {
  const orderId = `nt_${randomUUID().slice(0, 12)}`;
  await insertOrder(database.db, {
    id: orderId,
    amount: 9_900,
    currency: 'CNY',
    payDeadline: new Date(Date.now() + 3_600_000),
    notifyEndpointId: endpointId,
  });
  const paid = await markOrderPaid(database.db, {
    orderId,
    tradeNo: `T-${orderId}`,
    paidAt: new Date(),
    settledBy: 'mq',
  });
  if (!paid.event) throw new Error('markOrderPaid wrote no merchant event');
  return { orderId, event: paid.event };
}

/** Wakes the order's delivery workflow, as the workflow that wrote its event does (signal-with-start). */
function deliver(orderId: string) {
  return wakeOrderDelivery(env.client, config.TEMPORAL_TASK_QUEUE, orderId);
}

/** An order with two events: held for review (1, order.needs_review), then resolved PAID (2, order.paid). */
async function reviewedOrderEvents(endpointId: string) {
  const orderId = `nt_${randomUUID().slice(0, 12)}`;
  await insertOrder(database.db, {
    id: orderId,
    amount: 9_900,
    currency: 'CNY',
    payDeadline: new Date(Date.now() + 3_600_000),
    notifyEndpointId: endpointId,
  });
  const held = await holdOrderForReview(database.db, {
    orderId,
    tradeNo: 'T-short',
    settledBy: 'mq',
    kind: 'AMOUNT_MISMATCH',
    details: {},
  });
  const paid = await resolveReview(database.db, {
    orderId,
    outcome: 'PAID',
    note: 'accepted',
    paidTrade: { tradeNo: 'T-short', paidAt: new Date().toISOString() },
  });
  if (!held.event || !paid.event) throw new Error('transitions wrote no events');
  expect([held.event.sequence, paid.event.sequence]).toEqual([1, 2]);
  return { orderId, first: held.event, second: paid.event };
}

/** The sequence numbers of the events the merchant received for an order, in arrival order. */
const arrivals = (orderId: string) =>
  (received.get(orderId) ?? []).map((r) => (JSON.parse(r.body) as { sequence: number }).sequence);

/** The durations of the timers a workflow started, in seconds. */
async function timerSeconds(handle: WorkflowHandle): Promise<number[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .map((e) => e.timerStartedEventAttributes?.startToFireTimeout?.seconds)
    .filter((s) => s !== undefined && s !== null)
    .map(Number);
}

/** The Standard Webhooks signature, computed from the spec: base64 HMAC-SHA256 of "id.timestamp.body". */
function referenceSignature(secret: string, r: Received): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${r.id}.${r.timestamp}.${r.body}`).digest('base64')}`;
}

describe('merchant notifications (time-skipping)', () => {
  scenario(
    'delivery-first-success',
    'stops at the first success; JSON {"code":"SUCCESS"} counts',
    async () => {
      const ep = await endpoint();
      const { orderId, event } = await paidOrderEvent(ep.id);
      scripts.set(orderId, () => ({ body: '{"code":"SUCCESS"}' }));
      const handle = await deliver(orderId);
      expect(await handle.result()).toMatchObject({ eventId: event.id, status: 'DELIVERED', attempts: 1 });
      expect(await timerSeconds(handle)).toEqual([]);
      expect(await findEvent(database.db, event.id)).toMatchObject({ status: 'DELIVERED' });
      const [only] = received.get(orderId) ?? [];
      expect(only?.id).toBe(event.id);
      expect(JSON.parse(only?.body ?? '{}')).toMatchObject({
        type: 'order.paid',
        sequence: 1,
        orderId,
        amount: 9_900,
      });
      const { typedSearchAttributes } = await handle.describe();
      expect(typedSearchAttributes.get(DeliveryStatusKey)).toBe('DELIVERED');
      return handle;
    },
  );

  scenario(
    'delivery-stepwise-exhausted',
    'walks the exact ladder 3s, 30s, 60s, 120s, 180s, 300s, every attempt signed with the same id, then EXHAUSTED',
    async () => {
      // Two secrets, as during a rotation: each signs every attempt.
      const ep = await endpoint({
        secrets: [
          `whsec_${Buffer.from(randomUUID()).toString('base64')}`,
          `whsec_${Buffer.from(randomUUID()).toString('base64')}`,
        ],
      });
      const { orderId, event } = await paidOrderEvent(ep.id);
      scripts.set(orderId, () => ({ status: 500, body: 'oops' }));
      const handle = await deliver(orderId);
      expect(await handle.result()).toMatchObject({ status: 'EXHAUSTED', attempts: 7 });
      expect(await timerSeconds(handle)).toEqual([3, 30, 60, 120, 180, 300]);
      const attempts = await listAttempts(database.db, event.id);
      expect(attempts.map((a) => [a.attempt, a.httpStatus, a.errorKind])).toEqual(
        [1, 2, 3, 4, 5, 6, 7].map((n) => [n, 500, 'HTTP_STATUS']),
      );
      expect(await findEvent(database.db, event.id)).toMatchObject({ status: 'EXHAUSTED' });
      const seen = received.get(orderId) ?? [];
      expect(seen).toHaveLength(7);
      for (const r of seen) {
        expect(r.id).toBe(event.id);
        const signatures = r.signature.split(' ');
        expect(signatures).toEqual(ep.secrets.map((secret) => referenceSignature(secret, r)));
        for (const secret of ep.secrets) {
          expect(() =>
            new Webhook(secret).verify(r.body, {
              'webhook-id': r.id,
              'webhook-timestamp': r.timestamp,
              'webhook-signature': r.signature,
            }),
          ).not.toThrow();
        }
      }
      return handle;
    },
  );

  it('redeliver: the same webhook-id again, attempts numbered on from the earlier ones', async () => {
    const ep = await endpoint();
    const { orderId, event } = await paidOrderEvent(ep.id);
    scripts.set(orderId, () => ({ body: 'SUCCESS' }));
    expect(await (await deliver(orderId)).result()).toMatchObject({ status: 'DELIVERED', attempts: 1 });
    const again = await redeliverEvent(
      { db: database.db, client: env.client, taskQueue: config.TEMPORAL_TASK_QUEUE },
      event.id,
    );
    expect(await again.result()).toMatchObject({ eventId: event.id, status: 'DELIVERED', attempts: 1 });
    expect((await listAttempts(database.db, event.id)).map((a) => a.attempt)).toEqual([1, 2]);
    expect((received.get(orderId) ?? []).map((r) => r.id)).toEqual([event.id, event.id]);
  });

  scenario(
    'delivery-exponential-failures',
    'the 5·(2^n−1) s schedule; a 500, a body that is not success and a timeout each count as a failure',
    async () => {
      const ep = await endpoint({ ladder: 'exponential', attemptTimeoutMs: 1_000 });
      const { orderId, event } = await paidOrderEvent(ep.id);
      scripts.set(orderId, (n) =>
        n === 1 ? { status: 500 } : n === 2 ? { body: 'ok thanks' } : n === 3 ? { delayMs: 1_500 } : {},
      );
      const handle = await deliver(orderId);
      expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attempts: 4 });
      expect(await timerSeconds(handle)).toEqual([5, 15, 35]);
      const attempts = await listAttempts(database.db, event.id);
      expect(attempts.map((a) => a.errorKind)).toEqual(['HTTP_STATUS', 'BAD_BODY', 'TIMEOUT', null]);
      return handle;
    },
  );

  it('uses 5·(2^n−1) s for at most 5 attempts: 5s, 15s, 35s, 75s, then EXHAUSTED', async () => {
    const ep = await endpoint({ ladder: 'exponential' });
    const { orderId } = await paidOrderEvent(ep.id);
    scripts.set(orderId, () => ({ status: 502 }));
    const handle = await deliver(orderId);
    expect(await handle.result()).toMatchObject({ status: 'EXHAUSTED', attempts: 5 });
    expect(await timerSeconds(handle)).toEqual([5, 15, 35, 75]);
  });

  scenario('delivery-gone', '410 Gone disables the endpoint and stops', async () => {
    const ep = await endpoint();
    const { orderId, event } = await paidOrderEvent(ep.id);
    scripts.set(orderId, () => ({ status: 410, body: 'gone' }));
    const handle = await deliver(orderId);
    expect(await handle.result()).toMatchObject({ status: 'ENDPOINT_DISABLED', attempts: 1 });
    expect(await findEndpoint(database.db, ep.id)).toMatchObject({ status: 'DISABLED' });
    expect(await findEvent(database.db, event.id)).toMatchObject({ status: 'ENDPOINT_DISABLED' });
    return handle;
  });

  scenario('delivery-retry-after', 'a 503 with Retry-After waits at least that long', async () => {
    const ep = await endpoint();
    const { orderId } = await paidOrderEvent(ep.id);
    scripts.set(orderId, (n) => (n === 1 ? { status: 503, headers: { 'retry-after': '100' } } : {}));
    const handle = await deliver(orderId);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attempts: 2 });
    expect(await timerSeconds(handle)).toEqual([100]);
    return handle;
  });

  scenario(
    'delivery-in-sequence',
    "an order's events go out in sequence from one wake, one event per run (continue-as-new), under a flapping endpoint",
    async () => {
      const ep = await endpoint();
      const { orderId, first, second } = await reviewedOrderEvents(ep.id);
      // The first event fails twice before the merchant takes it.
      scripts.set(orderId, (n, sequence) => (sequence === 1 && n <= 2 ? { status: 500 } : {}));
      const handle = await deliver(orderId);
      expect(await handle.result()).toMatchObject({ eventId: second.id, status: 'DELIVERED', attempts: 1 });
      expect(arrivals(orderId)).toEqual([1, 1, 1, 2]);
      expect(await findEvent(database.db, first.id)).toMatchObject({ status: 'DELIVERED' });
      // Two runs, one event each: a history holds one event's ladder, never a wait for another event.
      const runs = await fetchChain(handle);
      expect(runs).toHaveLength(2);
      for (const run of runs) expect(run.events?.length ?? 0).toBeLessThan(60);
      return handle;
    },
  );

  it('an event left PENDING with no workflow (a start that failed) goes out, first, at the next wake of its order', async () => {
    const ep = await endpoint();
    // Event 1's delivery was never started; event 2's transition wakes the order. The old design had
    // event 2 poll for event 1 until Temporal's history limit ended it.
    const { orderId, first, second } = await reviewedOrderEvents(ep.id);
    scripts.set(orderId, () => ({}));
    const handle = await deliver(orderId);
    await handle.result();
    expect(arrivals(orderId)).toEqual([1, 2]);
    expect(await findEvent(database.db, first.id)).toMatchObject({ status: 'DELIVERED' });
    expect(await findEvent(database.db, second.id)).toMatchObject({ status: 'DELIVERED' });
  });

  it('a wake for an order with nothing PENDING ends at once, and a later wake delivers what became PENDING', async () => {
    const ep = await endpoint();
    const { orderId, event } = await paidOrderEvent(ep.id);
    scripts.set(orderId, () => ({}));
    await (await deliver(orderId)).result();
    const idle = await deliver(orderId);
    expect(await idle.result()).toMatchObject({ eventId: null, attempts: 0 });
    await setEventStatus(database.db, event.id, 'PENDING');
    expect(await (await deliver(orderId)).result()).toMatchObject({ eventId: event.id, status: 'DELIVERED' });
    expect(arrivals(orderId)).toEqual([1, 1]);
  });

  it("Retry-After is honoured up to twice the ladder's longest step: a year, or a number no date holds, waits 600 s", async () => {
    const ep = await endpoint();
    const { orderId } = await paidOrderEvent(ep.id);
    scripts.set(orderId, (n) =>
      n === 1
        ? { status: 503, headers: { 'retry-after': '31536000' } }
        : n === 2
          ? { status: 429, headers: { 'retry-after': '100000000000000000' } }
          : {},
    );
    const handle = await deliver(orderId);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attempts: 3 });
    expect(await timerSeconds(handle)).toEqual([600, 600]);
  });

  it('an endpoint disabled mid-ladder gets no further request: the delivery ends ENDPOINT_DISABLED', async () => {
    const ep = await endpoint();
    const { orderId, event } = await paidOrderEvent(ep.id);
    // The merchant fails the first attempt; meanwhile an operator disables the endpoint.
    scripts.set(orderId, (n) => {
      if (n === 1) void setEndpointStatus(database.db, ep.id, 'DISABLED', 'disabled by an operator');
      return { status: 500 };
    });
    const handle = await deliver(orderId);
    expect(await handle.result()).toMatchObject({ status: 'ENDPOINT_DISABLED', attempts: 1 });
    expect(received.get(orderId)).toHaveLength(1);
    expect((await listAttempts(database.db, event.id)).map((a) => a.attempt)).toEqual([1]);
    expect(await findEvent(database.db, event.id)).toMatchObject({ status: 'ENDPOINT_DISABLED' });
  });

  it('recover: per order, in sequence, and ENDPOINT_DISABLED events once their endpoint is enabled again', async () => {
    const ep = await endpoint();
    const since = new Date();
    const a = await reviewedOrderEvents(ep.id);
    const b = await paidOrderEvent(ep.id);
    const off = await endpoint();
    const c = await paidOrderEvent(off.id);
    for (const id of [a.first.id, a.second.id]) await setEventStatus(database.db, id, 'EXHAUSTED');
    await setEventStatus(database.db, b.event.id, 'ENDPOINT_DISABLED');
    await setEventStatus(database.db, c.event.id, 'ENDPOINT_DISABLED');
    await setEndpointStatus(database.db, off.id, 'DISABLED', 'disabled by an operator');
    for (const orderId of [a.orderId, b.orderId, c.orderId]) scripts.set(orderId, () => ({}));

    const deps = { db: database.db, client: env.client, taskQueue: config.TEMPORAL_TASK_QUEUE };
    const result = await recoverEvents(deps, since);
    expect(result.failed).toEqual([]);
    const mine = result.orders.filter((o) => [a.orderId, b.orderId, c.orderId].includes(o.orderId));
    expect(mine.map((o) => [o.orderId, o.eventIds]).sort()).toEqual(
      [
        [a.orderId, [a.first.id, a.second.id]],
        [b.orderId, [b.event.id]],
      ].sort(),
    );
    for (const o of mine) await env.client.workflow.getHandle(o.workflowId).result();
    expect(arrivals(a.orderId)).toEqual([1, 2]);
    expect(arrivals(b.orderId)).toEqual([1]);
    expect(arrivals(c.orderId)).toEqual([]);
    expect(await findEvent(database.db, c.event.id)).toMatchObject({ status: 'ENDPOINT_DISABLED' });
  });

  it("a PENDING event older than its ladder's span is listed as stuck and counted on the gauge", async () => {
    const ep = await endpoint({ ladder: 'exponential', attemptTimeoutMs: 1_000 });
    const stuck = await paidOrderEvent(ep.id);
    const fresh = await paidOrderEvent(ep.id);
    // Nobody delivers either (no wake). The exponential ladder spans 130 s + 5 × 1 s: one is older.
    await database.sql`update merchant_events set updated_at = now() - interval '136 seconds' where id = ${stuck.event.id}`;
    await database.sql`update merchant_events set updated_at = now() - interval '120 seconds' where id = ${fresh.event.id}`;
    const listed = (await listStuckEvents(database.db)).map((e) => e.id);
    expect(listed).toContain(stuck.event.id);
    expect(listed).not.toContain(fresh.event.id);

    const gauges = new Map<string, number>();
    const meter = {
      createCounter: () => ({ add() {} }),
      createHistogram: () => ({ record() {} }),
      createGauge: (name: string) => ({ set: (value: number) => gauges.set(name, value) }),
    } as unknown as Parameters<typeof createMetrics>[0];
    const count = await reportStuckNotifications(database.db, createMetrics(meter));
    expect(count).toBe(listed.length);
    expect(gauges.get('payrecon_merchant_notifications_stuck')).toBe(listed.length);
    expect(await reportStuckNotifications(database.db, noMetrics)).toBeGreaterThanOrEqual(1);
  });

  scenario(
    'delivery-worker-restart',
    'a worker stopped mid-ladder: a new one resumes the same ladder',
    async () => {
      const ep = await endpoint();
      const { orderId, event } = await paidOrderEvent(ep.id);
      scripts.set(orderId, (n) => (n <= 2 ? { status: 500 } : {}));
      const handle = await deliver(orderId);
      // Let it make its first attempt and start the 3 s timer, then take the worker away.
      for (let i = 0; i < 100 && (received.get(orderId) ?? []).length < 1; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await worker?.stop();
      await startWorker();
      expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attempts: 3 });
      expect(await timerSeconds(handle)).toEqual([3, 30]);
      expect((await listAttempts(database.db, event.id)).map((a) => a.attempt)).toEqual([1, 2, 3]);
      return handle;
    },
  );
});
