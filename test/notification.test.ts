import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import { createEndpoint, type EndpointRow, findEndpoint, findEvent, listAttempts } from '../src/db/merchant';
import { holdOrderForReview, insertOrder, markOrderPaid, resolveReview } from '../src/db/orders';
import type { MerchantEventRef } from '../src/domain';
import { redeliverEvent } from '../src/merchant/redeliver';
import { installWorkerRuntime } from '../workers/runtime';
import { merchantNotificationWorkflow } from '../workflows/notification';
import { notificationWorkflowId } from '../workflows/notify-merchant';
import { DeliveryStatusKey } from '../workflows/search-attributes';
import { testConfig } from './support/env';
import { DELIVERY_SCENARIOS, HistoryRecorder } from './support/histories';
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
    activities: createActivities({ db: database.db, gateway: new ScriptedGateway() }),
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

function deliver(orderId: string, event: MerchantEventRef) {
  return env.client.workflow.start(merchantNotificationWorkflow, {
    workflowId: notificationWorkflowId(event.id),
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    args: [{ eventId: event.id, orderId, sequence: event.sequence }],
  });
}

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
      const handle = await deliver(orderId, event);
      expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attempts: 1 });
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
      const handle = await deliver(orderId, event);
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
      // An operator re-drives it: a new run, the same id, attempts numbered on.
      scripts.set(orderId, () => ({ body: 'SUCCESS' }));
      const again = await redeliverEvent(
        { db: database.db, client: env.client, taskQueue: config.TEMPORAL_TASK_QUEUE },
        event.id,
      );
      expect(await again.result()).toMatchObject({ status: 'DELIVERED', attempts: 1 });
      expect((await listAttempts(database.db, event.id)).map((a) => a.attempt)).toEqual([
        1, 2, 3, 4, 5, 6, 7, 8,
      ]);
      expect(new Set((received.get(orderId) ?? []).map((r) => r.id))).toEqual(new Set([event.id]));
      return handle;
    },
  );

  scenario(
    'delivery-exponential-failures',
    'the 5·(2^n−1) s schedule; a 500, a body that is not success and a timeout each count as a failure',
    async () => {
      const ep = await endpoint({ ladder: 'exponential', attemptTimeoutMs: 1_000 });
      const { orderId, event } = await paidOrderEvent(ep.id);
      scripts.set(orderId, (n) =>
        n === 1 ? { status: 500 } : n === 2 ? { body: 'ok thanks' } : n === 3 ? { delayMs: 1_500 } : {},
      );
      const handle = await deliver(orderId, event);
      expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attempts: 4 });
      expect(await timerSeconds(handle)).toEqual([5, 15, 35]);
      const attempts = await listAttempts(database.db, event.id);
      expect(attempts.map((a) => a.errorKind)).toEqual(['HTTP_STATUS', 'BAD_BODY', 'TIMEOUT', null]);
      return handle;
    },
  );

  it('uses 5·(2^n−1) s for at most 5 attempts: 5s, 15s, 35s, 75s, then EXHAUSTED', async () => {
    const ep = await endpoint({ ladder: 'exponential' });
    const { orderId, event } = await paidOrderEvent(ep.id);
    scripts.set(orderId, () => ({ status: 502 }));
    const handle = await deliver(orderId, event);
    expect(await handle.result()).toMatchObject({ status: 'EXHAUSTED', attempts: 5 });
    expect(await timerSeconds(handle)).toEqual([5, 15, 35, 75]);
  });

  scenario('delivery-gone', '410 Gone disables the endpoint and stops', async () => {
    const ep = await endpoint();
    const { orderId, event } = await paidOrderEvent(ep.id);
    scripts.set(orderId, () => ({ status: 410, body: 'gone' }));
    const handle = await deliver(orderId, event);
    expect(await handle.result()).toMatchObject({ status: 'ENDPOINT_DISABLED', attempts: 1 });
    expect(await findEndpoint(database.db, ep.id)).toMatchObject({ status: 'DISABLED' });
    expect(await findEvent(database.db, event.id)).toMatchObject({ status: 'ENDPOINT_DISABLED' });
    return handle;
  });

  scenario('delivery-retry-after', 'a 503 with Retry-After waits at least that long', async () => {
    const ep = await endpoint();
    const { orderId, event } = await paidOrderEvent(ep.id);
    scripts.set(orderId, (n) => (n === 1 ? { status: 503, headers: { 'retry-after': '100' } } : {}));
    const handle = await deliver(orderId, event);
    expect(await handle.result()).toMatchObject({ status: 'DELIVERED', attempts: 2 });
    expect(await timerSeconds(handle)).toEqual([100]);
    return handle;
  });

  scenario(
    'delivery-waits-for-previous',
    "an order's second event waits until the first is delivered, under a flapping endpoint",
    async () => {
      const ep = await endpoint();
      const orderId = `nt_${randomUUID().slice(0, 12)}`;
      await insertOrder(database.db, {
        id: orderId,
        amount: 9_900,
        currency: 'CNY',
        payDeadline: new Date(Date.now() + 3_600_000),
        notifyEndpointId: ep.id,
      });
      const held = await holdOrderForReview(database.db, {
        orderId,
        tradeNo: 'T-short',
        settledBy: 'mq',
        kind: 'AMOUNT_MISMATCH',
        details: {},
      });
      const paid = await resolveReview(database.db, { orderId, outcome: 'PAID', note: 'accepted' });
      if (!held.event || !paid.event) throw new Error('transitions wrote no events');
      expect([held.event.sequence, paid.event.sequence]).toEqual([1, 2]);
      // The first event fails twice before the merchant takes it; the second is started first.
      scripts.set(orderId, (n, sequence) => (sequence === 1 && n <= 2 ? { status: 500 } : {}));
      const second = await deliver(orderId, paid.event);
      const first = await deliver(orderId, held.event);
      expect(await second.result()).toMatchObject({ status: 'DELIVERED', attempts: 1 });
      expect(await first.result()).toMatchObject({ status: 'DELIVERED', attempts: 3 });
      const order = (received.get(orderId) ?? []).map(
        (r) => (JSON.parse(r.body) as { sequence: number }).sequence,
      );
      expect(order).toEqual([1, 1, 1, 2]);
      return second;
    },
  );

  scenario(
    'delivery-worker-restart',
    'a worker stopped mid-ladder: a new one resumes the same ladder',
    async () => {
      const ep = await endpoint();
      const { orderId, event } = await paidOrderEvent(ep.id);
      scripts.set(orderId, (n) => (n <= 2 ? { status: 500 } : {}));
      const handle = await deliver(orderId, event);
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
