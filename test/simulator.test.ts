import amqplib, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase } from '../src/db/client';
import { hasValidSignature, parsePaymentNotice, SIGNATURE_HEADER } from '../src/mq/notification';
import { topologyFor } from '../src/mq/topology';
import { type RunningSimulator, startSimulator } from '../tools/simulator/server';
import { deleteTopology, eventually, testConfig, uniqueSuffix } from './support/env';

/**
 * The payment simulator in-process, over HTTP, against the real database and broker: every fault is
 * checked by reading what actually landed in this file's own pay-success queue.
 */
const config = testConfig('sim');
const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
const secret = config.NOTIFY_HMAC_SECRET;
const database = createDatabase(config.DATABASE_URL, { max: 2 });
const orderPrefix = `sim-${uniqueSuffix()}`;
const AMOUNT = 12_345;

let simulator: RunningSimulator;
let connection: ChannelModel;
let channel: Channel;
let orderCount = 0;

function newOrderId(): string {
  orderCount += 1;
  return `${orderPrefix}-${orderCount}`;
}

// biome-ignore lint/suspicious/noExplicitAny: the tests read response JSON loosely and assert its shape
type Json = any;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const response = await fetch(`${simulator.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  return { status: response.status, json: await response.json() };
}

async function createTrade(orderId = newOrderId(), extra: Record<string, unknown> = {}) {
  const { status, json } = await call('POST', '/trades', {
    orderId,
    amount: AMOUNT,
    currency: 'CNY',
    ...extra,
  });
  expect(status).toBe(201);
  return json as { orderId: string; tradeNo: string };
}

async function drain(): Promise<GetMessage[]> {
  const messages: GetMessage[] = [];
  for (;;) {
    const message = await channel.get(topology.paySuccessQueue, { noAck: true });
    if (!message) return messages;
    messages.push(message);
  }
}

beforeAll(async () => {
  simulator = await startSimulator({ config, port: 0, publisher: { publishTimeoutMs: 5_000 } });
  connection = await amqplib.connect(config.AMQP_URL);
  channel = await connection.createChannel();
});

beforeEach(async () => {
  simulator.faults.replace({});
  await channel.purgeQueue(topology.paySuccessQueue);
});

afterAll(async () => {
  await simulator?.close();
  await connection?.close();
  await deleteTopology(config);
  await database.sql`delete from provider.trades where order_id like ${`${orderPrefix}-%`}`;
  await database.close();
});

describe('payment simulator: trades', () => {
  it('creates a trade idempotently per order and refuses a different amount', async () => {
    const orderId = newOrderId();
    const first = await call('POST', '/trades', { orderId, amount: AMOUNT, currency: 'CNY' });
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({
      orderId,
      status: 'WAIT_BUYER_PAY',
      amount: AMOUNT,
      currency: 'CNY',
      created: true,
    });
    expect(first.json.tradeNo).toMatch(/^\d{24}$/);

    const again = await call('POST', '/trades', { orderId, amount: AMOUNT, currency: 'CNY' });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ tradeNo: first.json.tradeNo, created: false });

    const conflict = await call('POST', '/trades', { orderId, amount: AMOUNT + 1, currency: 'CNY' });
    expect(conflict.status).toBe(409);
    expect(conflict.json.error).toContain(first.json.tradeNo);
  });

  it('answers 400 with a clear message for bad input', async () => {
    const bad = await call('POST', '/trades', { orderId: 'no spaces', amount: 1.5, currency: 'yuan' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/orderId: .*amount: .*currency: /);

    const notJson = await call('POST', '/trades', '{"orderId":');
    expect(notJson.status).toBe(400);
    expect(notJson.json.error).toMatch(/not valid JSON/);

    const badFault = await call('POST', `/trades/${newOrderId()}/pay`, { faults: { duplicate: 0 } });
    expect(badFault.status).toBe(400);
    expect(badFault.json.error).toMatch(/faults\.duplicate/);
  });

  it('answers a status query, and NOT_FOUND for an order without a trade', async () => {
    const { orderId, tradeNo } = await createTrade();
    const found = await call('GET', `/trades/${orderId}`);
    expect(found.status).toBe(200);
    expect(found.json).toEqual({
      orderId,
      tradeNo,
      status: 'WAIT_BUYER_PAY',
      amount: AMOUNT,
      totalAmount: AMOUNT,
      currency: 'CNY',
      paidAt: null,
      closedAt: null,
      refundedAmount: 0,
    });

    const missing = await call('GET', `/trades/${newOrderId()}`);
    expect(missing.status).toBe(404);
    expect(missing.json.status).toBe('NOT_FOUND');
  });

  it('closes an unpaid trade, but a paid one stays paid', async () => {
    const unpaid = await createTrade();
    const closed = await call('POST', `/trades/${unpaid.orderId}/close`);
    expect(closed.status).toBe(200);
    expect(closed.json).toMatchObject({ status: 'TRADE_CLOSED', closed: true });
    expect(closed.json.closedAt).not.toBeNull();
    expect((await call('GET', `/trades/${unpaid.orderId}`)).json.status).toBe('TRADE_CLOSED');

    const paid = await createTrade();
    expect((await call('POST', `/trades/${paid.orderId}/pay`)).status).toBe(200);
    const notClosed = await call('POST', `/trades/${paid.orderId}/close`);
    expect(notClosed.status).toBe(200);
    expect(notClosed.json).toMatchObject({ status: 'TRADE_SUCCESS', closed: false, amount: AMOUNT });
    expect(notClosed.json.paidAt).not.toBeNull();

    expect((await call('POST', `/trades/${newOrderId()}/close`)).status).toBe(404);
  });

  it('refuses to pay twice or to pay a closed trade, unless forced (a payment racing the close)', async () => {
    const { orderId } = await createTrade();
    await call('POST', `/trades/${orderId}/close`);
    const refused = await call('POST', `/trades/${orderId}/pay`);
    expect(refused.status).toBe(409);
    expect(refused.json.trade.status).toBe('TRADE_CLOSED');
    expect(await drain()).toHaveLength(0);

    const forced = await call('POST', `/trades/${orderId}/pay`, { force: true });
    expect(forced.status).toBe(200);
    expect(forced.json.trade.status).toBe('TRADE_SUCCESS');
    expect(await drain()).toHaveLength(1);

    const twice = await call('POST', `/trades/${orderId}/pay`, { force: true });
    expect(twice.status).toBe(409);
    expect(twice.json.error).toMatch(/is TRADE_SUCCESS/);
  });
});

describe('payment simulator: notifications', () => {
  it('pays without faults: one signed, valid notification in the queue', async () => {
    const { orderId, tradeNo } = await createTrade();
    const paid = await call('POST', `/trades/${orderId}/pay`);
    expect(paid.status).toBe(200);
    expect(paid.json.notification).toMatchObject({
      outcome: 'published',
      copies: 1,
      forged: false,
      corrupt: null,
    });

    const [message, ...rest] = await drain();
    expect(rest).toHaveLength(0);
    if (!message) throw new Error('no notification in the queue');
    expect(message.properties.messageId).toBe(paid.json.notification.messageId);
    expect(message.properties.deliveryMode).toBe(2);
    const parsed = parsePaymentNotice(
      message.content,
      message.properties.headers?.[SIGNATURE_HEADER],
      secret,
    );
    expect(parsed).toEqual({
      ok: true,
      notice: {
        source: 'mq',
        messageId: paid.json.notification.messageId,
        orderId,
        tradeNo,
        status: 'TRADE_SUCCESS',
        amount: AMOUNT,
        currency: 'CNY',
        paidAt: paid.json.trade.paidAt,
      },
    });

    const query = await call('GET', `/trades/${orderId}`);
    expect(query.json).toMatchObject({
      status: 'TRADE_SUCCESS',
      amount: AMOUNT,
      paidAt: paid.json.trade.paidAt,
    });
  });

  it('duplicate=3 publishes three copies with the same messageId', async () => {
    const { orderId } = await createTrade();
    const paid = await call('POST', `/trades/${orderId}/pay`, { faults: { duplicate: 3 } });
    expect(paid.json.notification.copies).toBe(3);
    const messages = await drain();
    expect(messages).toHaveLength(3);
    expect(new Set(messages.map((m) => m.properties.messageId))).toEqual(
      new Set([paid.json.notification.messageId]),
    );
    expect(new Set(messages.map((m) => m.content.toString()))).toHaveProperty('size', 1);
  });

  it('drop publishes nothing, yet the status query says TRADE_SUCCESS', async () => {
    const { orderId } = await createTrade();
    const paid = await call('POST', `/trades/${orderId}/pay`, { faults: { drop: true } });
    expect(paid.json.notification).toMatchObject({ outcome: 'dropped', copies: 0 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await drain()).toHaveLength(0);
    expect((await call('GET', `/trades/${orderId}`)).json.status).toBe('TRADE_SUCCESS');
  });

  it('forge signs with the wrong secret: the signature does not verify', async () => {
    const { orderId } = await createTrade();
    await call('POST', `/trades/${orderId}/pay`, { faults: { forge: true } });
    const [message] = await drain();
    if (!message) throw new Error('no notification in the queue');
    const signature = message.properties.headers?.[SIGNATURE_HEADER];
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(hasValidSignature(message.content, signature, secret)).toBe(false);
    expect(parsePaymentNotice(message.content, signature, secret)).toMatchObject({
      ok: false,
      reason: 'BAD_SIGNATURE',
    });
  });

  it('corrupt sends a body that is not JSON, or JSON that violates the schema', async () => {
    const notJson = await createTrade();
    await call('POST', `/trades/${notJson.orderId}/pay`, { faults: { corrupt: true } });
    const schema = await createTrade();
    await call('POST', `/trades/${schema.orderId}/pay`, { faults: { corrupt: 'schema' } });

    const [first, second] = await drain();
    if (!first || !second) throw new Error('expected two notifications');
    const reasons = [first, second].map((m) => {
      const parsed = parsePaymentNotice(m.content, m.properties.headers?.[SIGNATURE_HEADER], secret);
      return parsed.ok ? 'ok' : parsed.reason;
    });
    expect(reasons).toEqual(['NOT_JSON', 'SCHEMA_VIOLATION']);
  });

  it('wrongAmount pays a different amount and the notification reports it', async () => {
    const { orderId } = await createTrade();
    const paid = await call('POST', `/trades/${orderId}/pay`, { faults: { wrongAmount: true } });
    expect(paid.json.trade).toMatchObject({ amount: AMOUNT - 1, totalAmount: AMOUNT });
    const [message] = await drain();
    if (!message) throw new Error('no notification in the queue');
    expect(JSON.parse(message.content.toString()).amount).toBe(AMOUNT - 1);
    expect((await call('GET', `/trades/${orderId}`)).json.amount).toBe(AMOUNT - 1);

    const exact = await createTrade();
    await call('POST', `/trades/${exact.orderId}/pay`, { faults: { wrongAmount: 1 } });
    expect((await call('GET', `/trades/${exact.orderId}`)).json.amount).toBe(1);
  });

  it('delayMs publishes later', async () => {
    const { orderId } = await createTrade();
    const paid = await call('POST', `/trades/${orderId}/pay`, { faults: { delayMs: 400 } });
    expect(paid.json.notification).toMatchObject({ outcome: 'scheduled', delayMs: 400 });
    expect(await drain()).toHaveLength(0);
    const messages = await eventually('the delayed notification', async () => {
      const got = await drain();
      return got.length > 0 ? got : undefined;
    });
    expect(messages.map((m) => m.properties.messageId)).toEqual([paid.json.notification.messageId]);
  });

  it('uses the faults stored with the trade, and a per-trade knob wins over a global rate', async () => {
    const { orderId } = await createTrade(newOrderId(), { faults: { duplicate: 2, drop: false } });
    simulator.faults.replace({ dropRate: 1 });
    await call('POST', `/trades/${orderId}/pay`);
    expect(await drain()).toHaveLength(2);

    const other = await createTrade();
    const dropped = await call('POST', `/trades/${other.orderId}/pay`);
    expect(dropped.json.notification.outcome).toBe('dropped');
    expect(await drain()).toHaveLength(0);
  });
});

describe('payment simulator: provider faults and knobs', () => {
  it('a global query error rate of 1.0 answers every status query with 503', async () => {
    const { orderId } = await createTrade();
    const set = await call('PUT', '/faults', { queryErrorRate: 1 });
    expect(set.json.queryErrorRate).toBe(1);
    const failed = await call('GET', `/trades/${orderId}`);
    expect(failed.status).toBe(503);
    expect(failed.json.error).toMatch(/simulated provider outage/);

    await call('PUT', '/faults', {});
    expect((await call('GET', `/trades/${orderId}`)).status).toBe(200);
  });

  it('queryErrors fails exactly the next n queries of one trade', async () => {
    const { orderId } = await createTrade();
    expect((await call('PUT', `/trades/${orderId}/faults`, { queryErrors: 2 })).status).toBe(200);
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call('GET', `/trades/${orderId}`)).status);
    expect(statuses).toEqual([503, 503, 200]);
  });

  it('queryLatencyMs slows the status query down', async () => {
    const { orderId } = await createTrade();
    await call('PATCH', '/faults', { queryLatencyMs: 300 });
    const started = Date.now();
    expect((await call('GET', `/trades/${orderId}`)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('validates the global knobs; PATCH merges, PUT replaces', async () => {
    const bad = await call('PUT', '/faults', { dropRate: 2, nonsense: true });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/dropRate: a rate is between 0 and 1/);

    await call('PUT', '/faults', { dropRate: 0.3 });
    const merged = await call('PATCH', '/faults', { delayRate: 0.5, delayMs: 100 });
    expect(merged.json).toMatchObject({ dropRate: 0.3, delayRate: 0.5, delayMs: 100 });
    const replaced = await call('PUT', '/faults', { forgeRate: 0.1 });
    expect(replaced.json).toMatchObject({ dropRate: 0, delayRate: 0, forgeRate: 0.1 });
    expect((await call('GET', '/faults')).json).toEqual(replaced.json);
  });

  it('reports health, and unknown routes or methods as JSON errors', async () => {
    expect((await call('GET', '/health')).json).toMatchObject({
      status: 'ok',
      database: 'up',
      broker: 'connected',
    });
    expect((await call('GET', '/nope')).status).toBe(404);
    const wrongMethod = await call('DELETE', '/faults');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.json.error).toMatch(/allowed: GET, PUT, PATCH/);
  });
});
