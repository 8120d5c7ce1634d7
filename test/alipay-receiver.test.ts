import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { connectAny } from '../src/mq/connect';
import { parsePaymentNotice, SIGNATURE_HEADER } from '../src/mq/notification';
import { declareAndPurge, topologyFor } from '../src/mq/topology';
import type { Config } from '../src/platform/config';
import { AlipayPaymentGateway } from '../src/provider/alipay';
import { ALIPAY_NOTIFY_PATH, RECEIVER_BODY_LIMIT } from '../src/receiver/app';
import { type RunningReceiver, startReceiver } from '../src/receiver/start';
import { newNotifyId, signNotification } from '../tools/providers/alipay/notifier';
import { type FakeAlipay, FakeAlipayControl } from '../tools/providers/alipay/server';
import {
  type AlipayLifecycle,
  APP_ID,
  alipayKeys,
  alipayPublicKeyFile,
  LADDER_MS,
  merchantKeyFile,
  merchantPrivatePem,
  SELLER_ID,
  startAlipayLifecycle,
  startTestFakeAlipay,
  strangerKeys,
} from './support/alipay';
import { deleteTopology, eventually, testConfig } from './support/env';
import { TcpProxy } from './support/stack';

/**
 * The notification receiver (workers/receiver.ts, src/receiver) on the real broker: Alipay's signed form
 * notifications in, payrecon's HMAC-signed paid notices out on the payment exchange, `success` only after
 * the broker's confirm. Alipay is the fake (tools/providers/alipay), which signs with node:crypto and
 * retries on Alipay's ladder (shortened here); the test holds its key, so it can sign as Alipay too.
 */

/** A pino logger whose JSON lines the test reads. */
function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** A TRADE_SUCCESS notification as Alipay sends it (unsigned). */
function paidParams(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    notify_time: '2026-03-01 10:00:05',
    notify_type: 'trade_status_sync',
    notify_id: newNotifyId(),
    charset: 'utf-8',
    version: '1.0',
    app_id: APP_ID,
    auth_app_id: APP_ID,
    trade_no: `2026030122001${Date.now()}`.slice(0, 28),
    out_trade_no: `ord-${randomUUID().slice(0, 8)}`,
    seller_id: SELLER_ID,
    trade_status: 'TRADE_SUCCESS',
    total_amount: '88.88',
    receipt_amount: '88.88',
    subject: '测试 order & co',
    gmt_create: '2026-03-01 09:59:58',
    gmt_payment: '2026-03-01 10:00:04',
    ...overrides,
  };
}

async function post(url: string, body: string, contentType = 'application/x-www-form-urlencoded') {
  const response = await fetch(`${url}${ALIPAY_NOTIFY_PATH}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
  return { status: response.status, text: await response.text() };
}

const form = (params: Record<string, string>) => new URLSearchParams(params).toString();

/** A free loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the Alipay notification receiver on the real broker', () => {
  let config: Config;
  let receiver: RunningReceiver;
  let logged: Record<string, unknown>[];
  let broker: ChannelModel;
  let channel: ConfirmChannel;
  let fake: FakeAlipay;
  let control: FakeAlipayControl;

  const queue = () => topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY).paySuccessQueue;
  /** Every message in the pay-success queue now, taken off it. */
  const takeMessages = async () => {
    const messages = [];
    for (;;) {
      const message = await channel.get(queue(), { noAck: true });
      if (!message) return messages;
      messages.push(message);
    }
  };

  beforeAll(async () => {
    config = testConfig('alipay-receiver', {
      ALIPAY_APP_ID: APP_ID,
      ALIPAY_PUBLIC_KEY_FILE: alipayPublicKeyFile,
      ALIPAY_SELLER_ID: SELLER_ID,
      RECEIVER_PORT: '0',
    });
    await declareAndPurge(config.AMQP_URL, topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY));
    const { log, lines } = capturingLogger();
    logged = lines;
    receiver = await startReceiver({ config, log });
    await receiver.publisher.waitForConnect();
    broker = await connectAny(config.AMQP_URL);
    channel = await broker.createConfirmChannel();
    fake = await startTestFakeAlipay();
    control = new FakeAlipayControl(fake.url);
  });

  beforeEach(async () => {
    await takeMessages();
    logged.length = 0;
  });

  afterAll(async () => {
    await fake?.close();
    await receiver?.close();
    await broker?.close();
    if (config) await deleteTopology(config);
  });

  /** A trade opened through payrecon's adapter with the receiver as its notify_url, scanned by the buyer. */
  const openTrade = async (notifyUrl = `${receiver.url}${ALIPAY_NOTIFY_PATH}`) => {
    const gateway = new AlipayPaymentGateway({
      appId: APP_ID,
      privateKey: merchantPrivatePem,
      alipayPublicKey: fake.alipayPublicKey,
      endpoint: fake.url,
      notifyUrl,
    });
    const orderId = `ord-${randomUUID().slice(0, 8)}`;
    await gateway.openTrade({ orderId, amount: 8888, currency: 'CNY' });
    await control.scan(orderId);
    return orderId;
  };

  it("publishes a signed TRADE_SUCCESS as payrecon's paid notice (HMAC verifies) and answers success after the confirm", async () => {
    const params = paidParams();
    const answer = await post(receiver.url, form(signNotification(params, alipayKeys.privateKey)));
    expect(answer).toEqual({ status: 200, text: 'success' });
    // Answered after the broker's confirm: the message is in the queue the moment the answer is read.
    const [message, ...more] = await takeMessages();
    expect(more).toHaveLength(0);
    expect(message?.fields.routingKey).toBe('trade.paid');
    expect(message?.properties).toMatchObject({
      deliveryMode: 2,
      messageId: `alipay-${params.notify_id}`,
      appId: 'payrecon-receiver',
    });
    const parsed = parsePaymentNotice(
      message?.content ?? Buffer.alloc(0),
      message?.properties.headers?.[SIGNATURE_HEADER],
      config.NOTIFY_HMAC_SECRET,
    );
    expect(parsed).toEqual({
      ok: true,
      notice: {
        messageId: `alipay-${params.notify_id}`,
        orderId: params.out_trade_no,
        tradeNo: params.trade_no,
        status: 'TRADE_SUCCESS',
        amount: 8888,
        currency: 'CNY',
        // 10:00:04 in Asia/Shanghai.
        paidAt: '2026-03-01T02:00:04.000Z',
        source: 'mq',
      },
    });
    expect(logged.some((line) => line.msg === 'notification published')).toBe(true);
  });

  it('publishes TRADE_FINISHED as paid too', async () => {
    const params = paidParams({ trade_status: 'TRADE_FINISHED', total_amount: '0.29' });
    expect(await post(receiver.url, form(signNotification(params, alipayKeys.privateKey)))).toEqual({
      status: 200,
      text: 'success',
    });
    const [message] = await takeMessages();
    expect(JSON.parse(message?.content.toString() ?? '{}')).toMatchObject({
      status: 'TRADE_FINISHED',
      amount: 29,
    });
  });

  it.each<[string, () => Record<string, string>]>([
    ['a signature by another key', () => signNotification(paidParams(), strangerKeys.privateKey)],
    [
      'a signed notification whose amount was changed after signing',
      () => ({ ...signNotification(paidParams(), alipayKeys.privateKey), total_amount: '0.01' }),
    ],
    [
      'no signature',
      () => {
        const { sign: _sign, ...rest } = signNotification(paidParams(), alipayKeys.privateKey);
        return rest;
      },
    ],
  ])(
    'refuses %s: fail, nothing published, BAD_SIGNATURE logged without the signature',
    async (_what, make) => {
      const body = make();
      const answer = await post(receiver.url, form(body));
      expect(answer).toEqual({ status: 400, text: 'fail' });
      expect(await takeMessages()).toHaveLength(0);
      const line = logged.find((entry) => entry.msg === 'notification refused');
      expect(line).toMatchObject({ reason: 'BAD_SIGNATURE', notifyId: body.notify_id });
      if (body.sign) expect(JSON.stringify(logged)).not.toContain(body.sign);
    },
  );

  it.each([
    ['WRONG_APP', { app_id: '2021000000009999' }],
    ['WRONG_SELLER', { seller_id: '2088000000009999' }],
    ['UNSUPPORTED', { trade_status: 'TRADE_PENDING' }],
    ['SCHEMA_VIOLATION', { total_amount: '1.234' }],
    ['SCHEMA_VIOLATION', { out_trade_no: 'not an order id!' }],
  ])('refuses a notification signed by Alipay but %s: fail, nothing published', async (reason, change) => {
    const answer = await post(
      receiver.url,
      form(signNotification(paidParams(change), alipayKeys.privateKey)),
    );
    expect(answer).toEqual({ status: 400, text: 'fail' });
    expect(await takeMessages()).toHaveLength(0);
    expect(logged.find((entry) => entry.msg === 'notification refused')).toMatchObject({ reason });
  });

  it('refuses what is not a notification: JSON, a repeated parameter, a body over the limit', async () => {
    const signed = signNotification(paidParams(), alipayKeys.privateKey);
    expect(await post(receiver.url, JSON.stringify(signed), 'application/json')).toEqual({
      status: 415,
      text: 'fail',
    });
    expect(await post(receiver.url, `${form(signed)}&trade_status=TRADE_SUCCESS`)).toEqual({
      status: 400,
      text: 'fail',
    });
    const huge = `${form(signed)}&body=${'x'.repeat(RECEIVER_BODY_LIMIT)}`;
    expect(await post(receiver.url, huge)).toEqual({ status: 413, text: 'fail' });
    expect(await takeMessages()).toHaveLength(0);
    const refused = logged.filter((entry) => entry.msg === 'notification refused');
    expect(refused.map((entry) => entry.reason)).toEqual(['UNPARSEABLE', 'UNPARSEABLE', 'UNPARSEABLE']);
  });

  it('answers success and publishes nothing for WAIT_BUYER_PAY, TRADE_CLOSED and a refund', async () => {
    for (const change of [
      { trade_status: 'WAIT_BUYER_PAY' } as Record<string, string>,
      { trade_status: 'TRADE_CLOSED' },
      { out_biz_no: 'refund-1', refund_fee: '10.00', gmt_refund: '2026-03-02 11:00:00.000' },
    ]) {
      const answer = await post(
        receiver.url,
        form(signNotification(paidParams(change), alipayKeys.privateKey)),
      );
      expect(answer).toEqual({ status: 200, text: 'success' });
    }
    expect(await takeMessages()).toHaveLength(0);
    expect(
      logged.filter((entry) => entry.msg?.toString().startsWith('notification acknowledged')),
    ).toHaveLength(3);
  });

  it('answers fail, naming RabbitMQ in its log, while the broker is unreachable; /healthz says 503', async () => {
    const { log, lines } = capturingLogger();
    const down = await startReceiver({
      config: { ...config, AMQP_URL: `amqp://guest:guest@127.0.0.1:${await closedPort()}` },
      log,
      publisher: { publishTimeoutMs: 500, maxRetries: 0 },
    });
    try {
      const answer = await post(down.url, form(signNotification(paidParams(), alipayKeys.privateKey)));
      expect(answer).toEqual({ status: 503, text: 'fail' });
      const line = lines.find((entry) => entry.msg?.toString().startsWith('notification not published'));
      expect(String(line?.err)).toMatch(/RabbitMQ/);
      const health = await fetch(`${down.url}/healthz`);
      expect(health.status).toBe(503);
      expect(await health.json()).toMatchObject({ broker: 'disconnected' });
    } finally {
      await down.close();
    }
    expect((await fetch(`${receiver.url}/healthz`)).status).toBe(200);
  });

  it("the fake's payment notification reaches the receiver, is published, and is not sent again", async () => {
    const orderId = await openTrade();
    await control.pay(orderId);
    const attempts = await eventually('the notification answered', async () => {
      const sent = (await control.notifications()).filter((a) => a.outTradeNo === orderId);
      return sent.some((a) => a.success) ? sent : undefined;
    });
    const [message] = await takeMessages();
    expect(JSON.parse(message?.content.toString() ?? '{}')).toMatchObject({ orderId, amount: 8888 });
    await new Promise((resolve) => setTimeout(resolve, LADDER_MS[1] * 3));
    expect((await control.notifications()).filter((a) => a.outTradeNo === orderId)).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ attempt: 1, status: 200, answer: 'success' });
  });

  it('the fake retries on its ladder until it reads success (the receiver unreachable for the first tries)', async () => {
    const proxy = await TcpProxy.start(new URL(receiver.url).host, { up: false });
    try {
      const orderId = await openTrade(`http://${proxy.address}${ALIPAY_NOTIFY_PATH}`);
      await control.pay(orderId);
      await eventually('two refused attempts', async () => {
        const sent = (await control.notifications()).filter((a) => a.outTradeNo === orderId);
        return sent.length >= 2 ? true : undefined;
      });
      await proxy.up();
      const sent = await eventually('an attempt answered success', async () => {
        const all = (await control.notifications()).filter((a) => a.outTradeNo === orderId);
        return all.some((a) => a.success) ? all : undefined;
      });
      expect(sent.length).toBeGreaterThanOrEqual(3);
      expect(sent.map((a) => a.attempt)).toEqual(sent.map((_a, i) => i + 1));
      expect(new Set(sent.map((a) => a.notifyId)).size).toBe(1);
      expect(sent.slice(0, -1).every((a) => a.status === null && !a.success)).toBe(true);
      expect(await takeMessages()).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it('knobs: a forged notification is refused on all 8 attempts; drop sends none; duplicate sends each twice', async () => {
    const forged = await openTrade();
    await control.pay(forged, undefined, { forge: true });
    const refused = await eventually(
      'the whole ladder',
      async () => {
        const sent = (await control.notifications()).filter((a) => a.outTradeNo === forged);
        return sent.length >= 8 ? sent : undefined;
      },
      10_000,
    );
    expect(refused.map((a) => [a.attempt, a.status, a.answer])).toEqual(
      Array.from({ length: 8 }, (_v, i) => [i + 1, 400, 'fail']),
    );

    const dropped = await openTrade();
    await control.pay(dropped, undefined, { drop: true });

    const duplicated = await openTrade();
    await control.pay(duplicated, undefined, { duplicate: true });
    const copies = await eventually('both copies answered', async () => {
      const sent = (await control.notifications()).filter((a) => a.outTradeNo === duplicated);
      return sent.length === 2 && sent.every((a) => a.success) ? sent : undefined;
    });
    expect(copies[0]?.notifyId).toBe(copies[1]?.notifyId);
    const messages = await takeMessages();
    // Both published with one message id: the consumer's dedupe makes them one notice.
    expect(messages.map((m) => m.properties.messageId)).toEqual([
      `alipay-${copies[0]?.notifyId}`,
      `alipay-${copies[0]?.notifyId}`,
    ]);
    expect((await control.notifications()).filter((a) => a.outTradeNo === dropped)).toHaveLength(0);
  });
});

describe('the receiver at start-up', () => {
  it('refuses to start without a provider, or with half of Alipay, naming what is missing', async () => {
    const log = pino({ level: 'silent' });
    await expect(
      startReceiver({ config: testConfig('alipay-receiver-none', { RECEIVER_PORT: '0' }), log }),
    ).rejects.toThrow(
      /no provider to receive notifications for: set ALIPAY_APP_ID and ALIPAY_PUBLIC_KEY_FILE/,
    );
    await expect(
      startReceiver({
        config: testConfig('alipay-receiver-half', { RECEIVER_PORT: '0', ALIPAY_APP_ID: APP_ID }),
        log,
      }),
    ).rejects.toThrow(/ALIPAY_PUBLIC_KEY_FILE is unset/);
    await expect(
      startReceiver({
        config: testConfig('alipay-receiver-swapped', {
          RECEIVER_PORT: '0',
          ALIPAY_APP_ID: APP_ID,
          // The app's private key where Alipay's public key belongs.
          ALIPAY_PUBLIC_KEY_FILE: merchantKeyFile,
        }),
        log,
      }),
    ).rejects.toThrow(/holds a private key, not Alipay's public key/);
  });
});

describe('the Alipay lifecycle on the real services (PAYMENT_PROVIDER=alipay)', () => {
  let alipay: AlipayLifecycle;

  beforeAll(async () => {
    alipay = await startAlipayLifecycle('alipay-lifecycle');
  }, 60_000);
  afterAll(async () => {
    await alipay?.stop();
  });

  const newOrder = (ladderMs: number) => alipay.newOrder({ amount: 4321, ladderMs });

  it('paid through the fake: notification → receiver → RabbitMQ → consumer → workflow → PAID by mq', async () => {
    const { control, orderRow } = alipay;
    const { order } = await newOrder(3_600_000);
    await control.scan(order.id);
    await control.pay(order.id);
    const paid = await eventually('the order PAID', async () => {
      const row = await orderRow(order.id);
      return row?.status === 'PAID' ? row : undefined;
    });
    expect(paid).toMatchObject({ settledBy: 'mq', amount: 4321 });
    expect(paid.tradeNo).toMatch(/^\d{28}$/);
  });

  it('notification dropped: paid by the ladder of queries (PAID by poll)', async () => {
    const { control, orderRow } = alipay;
    const { order } = await newOrder(1_000);
    await control.scan(order.id);
    await control.pay(order.id, undefined, { drop: true });
    const paid = await eventually('the order PAID', async () => {
      const row = await orderRow(order.id);
      return row?.status === 'PAID' ? row : undefined;
    });
    expect(paid.settledBy).toBe('poll');
    expect((await control.notifications()).filter((a) => a.outTradeNo === order.id)).toHaveLength(0);
  });

  it('a forged notification for an unpaid trade is refused; the order stays UNPAID', async () => {
    const { control, orderRow, receiver, stack } = alipay;
    const { order } = await newOrder(3_600_000);
    await control.scan(order.id);
    const forged = signNotification(
      paidParams({ out_trade_no: order.id, total_amount: '43.21' }),
      strangerKeys.privateKey,
    );
    expect(await post(receiver.url, form(forged))).toEqual({ status: 400, text: 'fail' });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await orderRow(order.id)).toMatchObject({ status: 'UNPAID', settledBy: null });
    expect(await stack.queueDepth(stack.topology.paySuccessQueue)).toBe(0);
  });
});
