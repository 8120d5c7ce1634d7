import { createHmac, randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase } from '../src/db/client';
import {
  checkDeliveries,
  type DeliveryView,
  type MerchantClient,
  MerchantHttpError,
  MerchantUnreachableError,
  newWebhookSecret,
  startMerchant,
} from '../tools/merchant/client';
import type { RunningMerchantSimulator } from '../tools/merchant/server';
import { eventually, testConfig, uniqueSuffix } from './support/env';

/**
 * The merchant simulator in-process, over real HTTP, against the real database: signatures made with
 * the `standardwebhooks` library and with a reference signer written here from the spec, rotation,
 * every fault knob, and a refusal window that really refuses connections and then listens again.
 */
const config = testConfig('merchant');
const database = createDatabase(config.DATABASE_URL, { max: 2 });
const prefix = `msim-${uniqueSuffix()}`;
const merchantId = `${prefix}-shop`;
const secret = newWebhookSecret();

let simulator: RunningMerchantSimulator;
let client: MerchantClient;
let count = 0;

function newId(kind: string): string {
  count += 1;
  return `${prefix}-${kind}-${count}`;
}

/** Standard Webhooks from the spec: HMAC-SHA256 of `${id}.${timestamp}.${body}` under the base64-decoded secret. */
function referenceSign(whsec: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(whsec.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

function librarySign(whsec: string, id: string, timestamp: number, body: string): string {
  return new Webhook(whsec).sign(id, new Date(timestamp * 1000), body);
}

interface Delivery {
  orderId?: string;
  type?: string;
  sequence?: number;
  webhookId?: string;
  /** Secrets to sign with (one `v1,` entry each); default the merchant's. */
  signWith?: string[];
  /** Replace the signature header outright. */
  signature?: string;
  timestamp?: number;
  to?: string;
  timeoutMs?: number;
  signer?: 'library' | 'reference';
  omit?: ('webhook-id' | 'webhook-timestamp' | 'webhook-signature')[];
}

/** POSTs one signed event to the simulator, as payrecon's sender does. */
async function deliver(options: Delivery = {}) {
  const webhookId = options.webhookId ?? `evt_${randomUUID()}`;
  const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
  const body = JSON.stringify({
    id: webhookId,
    type: options.type ?? 'order.paid',
    orderId: options.orderId ?? newId('order'),
    sequence: options.sequence ?? 1,
    amount: 9900,
    currency: 'CNY',
  });
  const sign = options.signer === 'reference' ? referenceSign : librarySign;
  const signature =
    options.signature ??
    (options.signWith ?? [secret]).map((s) => sign(s, webhookId, timestamp, body)).join(' ');
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'webhook-id': webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signature,
  };
  for (const name of options.omit ?? []) delete headers[name];
  const response = await fetch(options.to ?? simulator.hookUrl(merchantId), {
    method: 'POST',
    headers,
    body,
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  return {
    webhookId,
    status: response.status,
    text: await response.text(),
    retryAfter: response.headers.get('retry-after'),
  };
}

async function only(filter: { webhookId: string }): Promise<DeliveryView> {
  const rows = await client.deliveries(filter);
  expect(rows).toHaveLength(1);
  return rows[0] as DeliveryView;
}

beforeAll(async () => {
  ({ simulator, client } = await startMerchant({ config, secrets: { [merchantId]: [secret] } }));
});

beforeEach(async () => {
  await client.setFaults({});
});

afterAll(async () => {
  await simulator?.close();
  const like = `${prefix}-%`;
  await database.sql`delete from merchant.deliveries where merchant_id like ${like}`;
  await database.sql`delete from merchant.order_faults where order_id like ${like}`;
  await database.sql`delete from merchant.merchants where merchant_id like ${like}`;
  await database.close();
});

describe('signatures', () => {
  it('the standardwebhooks library and the reference signer from the spec make the same signature', () => {
    for (let i = 0; i < 20; i++) {
      const whsec = newWebhookSecret();
      const id = `evt_${randomUUID()}`;
      const timestamp = 1_700_000_000 + i * 7919;
      const body = JSON.stringify({ orderId: `o-${i}`, note: 'ünïcødé ✓', n: i });
      expect(referenceSign(whsec, id, timestamp, body)).toBe(librarySign(whsec, id, timestamp, body));
    }
  });

  it.each(['library', 'reference'] as const)(
    'accepts a delivery signed by the %s signer and records it',
    async (signer) => {
      const orderId = newId('order');
      const sent = await deliver({ orderId, type: 'order.paid', sequence: 1, signer });
      expect(sent).toMatchObject({ status: 200, text: 'success' });
      const row = await only({ webhookId: sent.webhookId });
      expect(row).toMatchObject({
        merchantId,
        webhookId: sent.webhookId,
        orderId,
        eventType: 'order.paid',
        sequence: 1,
        signatureValid: true,
        signatureError: null,
        orderDelivery: 1,
        answer: '200',
        answerBody: 'success',
        acknowledged: true,
        delayMs: 0,
      });
      expect(row.webhookTimestamp).toBeGreaterThan(Date.now() / 1000 - 60);
      expect(JSON.parse(row.body)).toMatchObject({ orderId, id: sent.webhookId });
      expect(row.answeredAt).not.toBeNull();
    },
  );

  it('reads orderId, type and sequence from a Standard Webhooks envelope ({ type, data }) too', async () => {
    const webhookId = `evt_${randomUUID()}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const orderId = newId('order');
    const body = JSON.stringify({
      type: 'order.closed',
      timestamp: new Date().toISOString(),
      data: { orderId, sequence: 2 },
    });
    const response = await fetch(simulator.hookUrl(merchantId), {
      method: 'POST',
      headers: {
        'webhook-id': webhookId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': librarySign(secret, webhookId, timestamp, body),
      },
      body,
    });
    expect(response.status).toBe(200);
    expect(await only({ webhookId })).toMatchObject({ orderId, eventType: 'order.closed', sequence: 2 });
  });

  it('answers a bad signature with 401 and records it as invalid', async () => {
    const sent = await deliver({ signWith: [newWebhookSecret()] });
    expect(sent.status).toBe(401);
    expect(JSON.parse(sent.text).error).toMatch(/invalid signature: No matching signature found/);
    expect(await only({ webhookId: sent.webhookId })).toMatchObject({
      signatureValid: false,
      signatureError: 'No matching signature found',
      orderDelivery: null,
      answer: '401',
      acknowledged: false,
    });
  });

  it('rejects a body changed after signing, a stale timestamp, missing headers and an unknown merchant', async () => {
    const tampered = await deliver({
      signature: referenceSign(secret, 'evt_other', Math.floor(Date.now() / 1000), '{}'),
    });
    expect(tampered.status).toBe(401);

    const stale = await deliver({ timestamp: Math.floor(Date.now() / 1000) - 10 * 60 });
    expect(stale.status).toBe(401);
    expect((await only({ webhookId: stale.webhookId })).signatureError).toBe('Message timestamp too old');

    const unsigned = await deliver({ omit: ['webhook-signature'] });
    expect(unsigned.status).toBe(401);
    expect((await only({ webhookId: unsigned.webhookId })).signatureError).toBe(
      'missing header webhook-signature',
    );

    const stranger = `${prefix}-stranger`;
    const unknown = await deliver({ to: simulator.hookUrl(stranger) });
    expect(unknown.status).toBe(401);
    expect((await only({ webhookId: unknown.webhookId })).signatureError).toBe(
      'no secret is configured for this merchant',
    );
  });

  it('during a rotation accepts a delivery that any of the secrets verifies', async () => {
    const rotating = `${prefix}-rotating`;
    const [oldSecret, newSecret] = [newWebhookSecret(), newWebhookSecret()];
    await client.setSecrets(rotating, [oldSecret]);
    const to = simulator.hookUrl(rotating);
    expect((await deliver({ to, signWith: [newSecret] })).status).toBe(401);

    expect(await client.setSecrets(rotating, [oldSecret, newSecret])).toEqual({
      merchantId: rotating,
      secrets: 2,
    });
    expect((await deliver({ to, signWith: [oldSecret] })).status).toBe(200);
    expect((await deliver({ to, signWith: [newSecret], signer: 'reference' })).status).toBe(200);
    // The sender signs with both during the rotation: one header, two entries.
    expect((await deliver({ to, signWith: [newSecret, oldSecret] })).status).toBe(200);
    // An entry that matches nothing beside one that matches: still valid.
    expect((await deliver({ to, signWith: [newWebhookSecret(), oldSecret] })).status).toBe(200);

    await client.setSecrets(rotating, [newSecret]);
    expect((await deliver({ to, signWith: [oldSecret] })).status).toBe(401);
    expect((await deliver({ to, signWith: [newSecret] })).status).toBe(200);
  });

  it('refuses secrets that are not whsec_<base64>', async () => {
    const error = await client.setSecrets(`${prefix}-bad`, ['not-a-secret']).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MerchantHttpError);
    expect((error as MerchantHttpError).status).toBe(400);
    await expect(client.setSecrets(`${prefix}-bad`, [])).rejects.toThrow(/at least one secret/);
  });
});

describe('fault knobs', () => {
  it('failFirst per order: the order first n deliveries get 500, then success; other orders are untouched', async () => {
    const orderId = newId('order');
    await client.setOrderFaults(orderId, { failFirst: 2 });
    expect(await client.getOrderFaults(orderId)).toEqual({ orderId, faults: { failFirst: 2 } });
    const webhookId = `evt_${randomUUID()}`;
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push((await deliver({ orderId, webhookId })).status);
    expect(answers).toEqual([500, 500, 200]);
    // The next event of the order counts on: the order has had its failures.
    expect((await deliver({ orderId, sequence: 2 })).status).toBe(200);
    expect((await deliver()).status).toBe(200);

    const rows = await client.deliveries({ orderId });
    expect(rows.map((row) => [row.orderDelivery, row.answer, row.acknowledged])).toEqual([
      [1, '500', false],
      [2, '500', false],
      [3, '200', true],
      [4, '200', true],
    ]);
    expect(rows.slice(0, 3).every((row) => row.webhookId === webhookId)).toBe(true);
    expect(checkDeliveries(rows, { webhookIds: [webhookId] })).toEqual({ ok: true, problems: [] });
  });

  it('global failFirst applies to every order; an order own knob wins', async () => {
    await client.setFaults({ failFirst: 1 });
    const [a, protectedOrder] = [newId('order'), newId('order')];
    await client.setOrderFaults(protectedOrder, { failFirst: 0 });
    expect((await deliver({ orderId: a })).status).toBe(500);
    expect((await deliver({ orderId: a })).status).toBe(200);
    expect((await deliver({ orderId: protectedOrder })).status).toBe(200);
    // Bad signatures do not count towards failFirst.
    const b = newId('order');
    expect((await deliver({ orderId: b, signWith: [newWebhookSecret()] })).status).toBe(401);
    expect((await deliver({ orderId: b })).status).toBe(500);
    expect((await deliver({ orderId: b })).status).toBe(200);
  });

  it('status answers every delivery with it, with Retry-After when asked; 410 Gone', async () => {
    await client.setFaults({ status: 503, retryAfterSeconds: 7 });
    const first = await deliver();
    expect(first).toMatchObject({ status: 503, retryAfter: '7', text: 'fault injected: HTTP 503' });
    expect(await only({ webhookId: first.webhookId })).toMatchObject({
      answer: '503',
      acknowledged: false,
      faults: { status: 503, retryAfterSeconds: 7 },
    });

    const gone = newId('order');
    await client.setOrderFaults(gone, { status: 410 });
    expect((await deliver({ orderId: gone })).status).toBe(410);
    expect((await deliver({ orderId: gone })).status).toBe(410);
  });

  it('failFirst with a status: the first n get that status (429 + Retry-After), then success', async () => {
    const orderId = newId('order');
    await client.setOrderFaults(orderId, { failFirst: 2, status: 429, retryAfterSeconds: 3 });
    const first = await deliver({ orderId });
    expect(first).toMatchObject({ status: 429, retryAfter: '3' });
    expect((await deliver({ orderId })).status).toBe(429);
    const third = await deliver({ orderId });
    expect(third).toMatchObject({ status: 200, retryAfter: null, text: 'success' });
  });

  it('badBody answers 200 "ok thanks" (not an acknowledgement); answerJsonSuccess answers {"code":"SUCCESS"}', async () => {
    await client.setFaults({ badBody: true });
    const bad = await deliver();
    expect(bad).toMatchObject({ status: 200, text: 'ok thanks' });
    expect(await only({ webhookId: bad.webhookId })).toMatchObject({ answer: '200', acknowledged: false });

    await client.setFaults({ answerJsonSuccess: true });
    const json = await deliver();
    expect(json.status).toBe(200);
    expect(JSON.parse(json.text)).toEqual({ code: 'SUCCESS' });
    expect(await only({ webhookId: json.webhookId })).toMatchObject({ acknowledged: true });
  });

  it('delayMs holds the answer back; a sender that gives up first is recorded as timeout', async () => {
    const orderId = newId('order');
    await client.setOrderFaults(orderId, { delayMs: 400 });
    const started = Date.now();
    const slow = await deliver({ orderId });
    expect(slow.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(await only({ webhookId: slow.webhookId })).toMatchObject({
      answer: '200',
      delayMs: 400,
      acknowledged: true,
    });

    await client.setOrderFaults(orderId, { delayMs: 3_000 });
    const webhookId = `evt_${randomUUID()}`;
    await expect(deliver({ orderId, webhookId, timeoutMs: 500 })).rejects.toThrow(/abort|timeout/i);
    const row = await eventually('the timeout recorded', async () => {
      const found = await only({ webhookId });
      return found.answer === 'timeout' ? found : undefined;
    });
    expect(row).toMatchObject({ delayMs: 3_000, acknowledged: false });
    expect(new Date(row.answeredAt ?? 0).getTime() - new Date(row.receivedAt).getTime()).toBeLessThan(2_500);
  });

  it('PATCH changes only the knobs given, PUT replaces them all; bad knobs are a 400', async () => {
    await client.setFaults({ failFirst: 3, delayMs: 10 });
    expect((await client.setFaults({ badBody: true }, 'merge')).faults).toEqual({
      failFirst: 3,
      delayMs: 10,
      badBody: true,
    });
    expect((await client.setFaults({ status: 503 })).faults).toEqual({ status: 503 });
    expect(await client.getFaults()).toEqual({ faults: { status: 503 }, refusingUntil: null });
    for (const bad of [{ failFirst: -1 }, { status: 99 }, { delayMs: 'soon' }, { unknownKnob: true }]) {
      const reply = await client.request<{ error: string }>('PUT', '/faults', bad);
      expect(reply.status).toBe(400);
      expect(reply.body.error).toMatch(/^invalid fault knobs/);
    }
    const reply = await client.request('PUT', `/orders/${newId('order')}/faults`, { refuseForMs: 100 });
    expect(reply.status).toBe(400);
  });

  it('refuseForMs refuses connections on the port, cuts a held answer, then listens again', async () => {
    const orderId = newId('order');
    await client.setOrderFaults(orderId, { delayMs: 5_000 });
    const heldId = `evt_${randomUUID()}`;
    const held = deliver({ orderId, webhookId: heldId }).catch((error: Error) => error);
    await eventually('the held delivery', async () =>
      (await client.deliveries({ webhookId: heldId })).length ? true : undefined,
    );

    const view = await client.refuseConnections(1_500);
    expect(view.refusingUntil).not.toBeNull();
    const refusedAt = Date.now();
    // The held delivery's connection is cut.
    expect(await held).toBeInstanceOf(Error);

    const refused = await deliver().catch((error: Error) => error);
    expect(refused).toBeInstanceOf(Error);
    expect(String((refused as Error & { cause?: { code?: string } }).cause?.code)).toBe('ECONNREFUSED');
    await expect(client.health()).rejects.toBeInstanceOf(MerchantUnreachableError);

    await client.waitUntilUp(10_000);
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(1_000);
    expect(new URL(client.url).port).toBe(String(simulator.port));
    expect((await client.getFaults()).refusingUntil).toBeNull();
    expect((await deliver()).status).toBe(200);
    expect((await only({ webhookId: heldId })).answer).toBe('refused');
  });
});

describe('records and client', () => {
  it('filters deliveries by order, webhook id and merchant', async () => {
    const other = `${prefix}-other`;
    const otherSecret = newWebhookSecret();
    await client.setSecrets(other, [otherSecret]);
    const orderId = newId('order');
    const a = await deliver({ orderId, sequence: 1 });
    const b = await deliver({ orderId, sequence: 2, type: 'order.refunded' });
    const c = await deliver({ orderId, sequence: 3, to: simulator.hookUrl(other), signWith: [otherSecret] });
    expect((await client.deliveries({ orderId })).map((row) => row.webhookId)).toEqual([
      a.webhookId,
      b.webhookId,
      c.webhookId,
    ]);
    expect((await client.deliveries({ orderId, merchantId: other })).map((row) => row.webhookId)).toEqual([
      c.webhookId,
    ]);
    expect((await client.deliveries({ merchantId: other })).every((row) => row.merchantId === other)).toBe(
      true,
    );
    expect(
      checkDeliveries(await client.deliveries({ orderId }), { webhookIds: [a.webhookId, b.webhookId] }).ok,
    ).toBe(true);
  });

  it('checkDeliveries finds a missing event, an unacknowledged one and a sequence delivered too early', async () => {
    const orderId = newId('order');
    await client.setOrderFaults(orderId, { failFirst: 1 });
    const paid = `evt_${randomUUID()}`;
    const refunded = `evt_${randomUUID()}`;
    expect((await deliver({ orderId, webhookId: paid, sequence: 1 })).status).toBe(500);
    // A sender that did not wait for order.paid's acknowledgement:
    expect(
      (await deliver({ orderId, webhookId: refunded, sequence: 2, type: 'order.refunded' })).status,
    ).toBe(200);
    expect((await deliver({ orderId, webhookId: paid, sequence: 1 })).status).toBe(200);
    const result = checkDeliveries(await client.deliveries({ orderId }), {
      webhookIds: [paid, refunded, 'evt_never'],
    });
    expect(result.ok).toBe(false);
    expect(result.problems).toEqual([
      'event evt_never never arrived validly signed',
      expect.stringMatching(
        new RegExp(
          `^order ${orderId}: sequence 2 \\(event ${refunded}, delivery \\d+\\) arrived before sequence 1 was acknowledged`,
        ),
      ),
    ]);
  });

  it('a restarted simulator keeps secrets and order knobs (they live in its schema)', async () => {
    const orderId = newId('order');
    await client.setOrderFaults(orderId, { failFirst: 1 });
    const second = await startMerchant({ config });
    try {
      const to = second.simulator.hookUrl(merchantId);
      expect((await deliver({ orderId, to })).status).toBe(500);
      expect((await deliver({ orderId, to })).status).toBe(200);
      await expect(second.client.health()).resolves.toMatchObject({
        status: 200,
        body: { status: 'ok', database: 'up' },
      });
    } finally {
      await second.simulator.close();
    }
  });

  it('answers unknown paths with 404 and wrong methods with 405', async () => {
    expect((await client.request('GET', '/nope')).status).toBe(404);
    expect((await client.request('GET', `/hooks/${merchantId}`)).status).toBe(405);
  });
});
