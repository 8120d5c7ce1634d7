import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ChannelModel, ConfirmChannel, GetMessage } from 'amqplib';
import { eq } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { refunds } from '../src/db/schema';
import { connectAny } from '../src/mq/connect';
import { parsePaymentNotice, SIGNATURE_HEADER, signBody } from '../src/mq/notification';
import { declareAndPurge, topologyFor } from '../src/mq/topology';
import { requestRefund } from '../src/order/refund';
import { type Config, ConfigError, loadConfig } from '../src/platform/config';
import { loadWechatPayConfig, WechatPayGateway } from '../src/provider/wechatpay';
import { WECHATPAY_NOTIFY_PATH } from '../src/receiver/app';
import { type RunningReceiver, startReceiver } from '../src/receiver/start';
import {
  encryptResource,
  signedHeaders,
  type WechatNotifyAttempt,
  type WechatNotifyFaults,
} from '../tools/providers/wechatpay/notifier';
import { type FakeWechatPay, startFakeWechatPay } from '../tools/providers/wechatpay/server';
import { deleteTopology, eventually, testConfig } from './support/env';
import { type Stack, TcpProxy } from './support/stack';
import {
  APIV3_KEY,
  APP_ID,
  LADDER_MS,
  MCH_ID,
  merchant,
  merchantKeyFile,
  receiverEnvFor,
  SERIAL,
  startWechatPayLifecycle,
  type WechatPayLifecycle,
  wechatKeys,
} from './support/wechatpay';

/**
 * The notification receiver's WeChat Pay route (src/provider/wechatpay/notify.ts) on the real broker:
 * WeChat Pay API v3 notifications in (JSON, the resource AEAD_AES_256_GCM under the APIv3 key, signed
 * with WeChat Pay's key over `timestamp\nnonce\nbody\n`), payrecon's HMAC-signed notices out, 204 only
 * after the broker's confirm. WeChat Pay is the fake (tools/providers/wechatpay), which encrypts and
 * signs with node:crypto and retries on WeChat's ladder (shortened here); the test holds WeChat's key
 * too, so it can sign as WeChat.
 */

const strangerKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
/** The fake's public key id, once it started: the receiver is configured with it. */
let PUBLIC_KEY_ID = 'PUB_KEY_ID_pending';
const dir = mkdtempSync(path.join(tmpdir(), 'payrecon-wechatpay-receiver-'));
const receiverEnv = receiverEnvFor(PUBLIC_KEY_ID);

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { log, lines };
}

/** The decrypted resource of a TRANSACTION.SUCCESS, as WeChat describes a paid Native order. */
function transaction(overrides: Record<string, unknown> = {}) {
  return {
    mchid: MCH_ID,
    appid: APP_ID,
    out_trade_no: `ord_${randomBytes(6).toString('hex')}`,
    transaction_id: `4200001234${Date.now()}`.slice(0, 28),
    trade_type: 'NATIVE',
    trade_state: 'SUCCESS',
    trade_state_desc: '支付成功',
    bank_type: 'OTHERS',
    attach: '',
    success_time: '2026-03-01T10:00:04+08:00',
    payer: { openid: 'oUpF8uMuAJO_M2pxb1Q9zNjWeS6o' },
    amount: { total: 8888, payer_total: 8888, currency: 'CNY', payer_currency: 'CNY' },
    ...overrides,
  };
}

/** A notification's JSON body: `plain` encrypted under `apiV3Key`. */
function envelope(eventType: string, plain: unknown, apiV3Key = APIV3_KEY) {
  const refund = eventType.startsWith('REFUND.');
  const id = `EV-${randomBytes(10).toString('hex')}`;
  const resource = encryptResource(plain, apiV3Key, refund ? 'refund' : 'transaction', 'transaction');
  return {
    id,
    body: JSON.stringify({
      id,
      create_time: '2026-03-01T10:00:05+08:00',
      resource_type: 'encrypt-resource',
      event_type: eventType,
      summary: '支付成功',
      resource,
    }),
  };
}

async function post(url: string, body: string, headers: Record<string, string>) {
  const response = await fetch(`${url}${WECHATPAY_NOTIFY_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, json: text ? (JSON.parse(text) as unknown) : null };
}

const signAsWechat = (body: string, timestampS?: number) =>
  signedHeaders(body, wechatKeys.privateKey, PUBLIC_KEY_ID, timestampS);

async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('the WeChat Pay notification receiver on the real broker', () => {
  let config: Config;
  let receiver: RunningReceiver;
  let logged: Record<string, unknown>[];
  let broker: ChannelModel;
  let channel: ConfirmChannel;
  let fake: FakeWechatPay;

  const queue = () => topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY).paySuccessQueue;
  const takeMessages = async () => {
    const messages: GetMessage[] = [];
    for (;;) {
      const message = await channel.get(queue(), { noAck: true });
      if (!message) return messages;
      messages.push(message);
    }
  };

  beforeAll(async () => {
    fake = await startFakeWechatPay({
      mchId: MCH_ID,
      appId: APP_ID,
      merchantCertSerial: SERIAL,
      merchantPublicKey: merchant.publicKey,
      wechatpayKeys: wechatKeys,
      apiV3Key: APIV3_KEY,
      notifyLadderMs: LADDER_MS,
    });
    // The fake names its key by its own id: the receiver is configured with that one.
    PUBLIC_KEY_ID = fake.publicKeyId;
    receiverEnv.WECHATPAY_PUBLIC_KEY_ID = PUBLIC_KEY_ID;
    config = testConfig('wechatpay-receiver', { ...receiverEnv, RECEIVER_PORT: '0' }, 'receiver');
    await declareAndPurge(config.AMQP_URL, topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY));
    const { log, lines } = capturingLogger();
    logged = lines;
    receiver = await startReceiver({ config, log, env: receiverEnv });
    await receiver.publisher.waitForConnect();
    broker = await connectAny(config.AMQP_URL);
    channel = await broker.createConfirmChannel();
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

  it('starts without the merchant private key, serving /notify/wechatpay; a worker config would need it', () => {
    expect(receiver.routes).toEqual([WECHATPAY_NOTIFY_PATH]);
    expect(() => loadConfig({ ...process.env, ...receiverEnv })).toThrow(/WECHATPAY_MCH_PRIVATE_KEY_FILE/);
    expect(() =>
      loadConfig(
        { ...process.env, ...receiverEnv, WECHATPAY_APIV3_KEY_FILE: path.join(dir, 'none') },
        'receiver',
      ),
    ).toThrow(ConfigError);
  });

  it("publishes a genuine TRANSACTION.SUCCESS as payrecon's paid notice (HMAC verifies) and answers 204 after the confirm; a retry is the same message", async () => {
    const plain = transaction();
    const { id, body } = envelope('TRANSACTION.SUCCESS', plain);
    const answer = await post(receiver.url, body, signAsWechat(body));
    expect(answer).toEqual({ status: 204, json: null });
    // Answered after the broker's confirm: the message is in the queue the moment the answer is read.
    const [message, ...more] = await takeMessages();
    expect(more).toHaveLength(0);
    expect(message?.fields.routingKey).toBe('trade.paid');
    expect(message?.properties).toMatchObject({
      deliveryMode: 2,
      messageId: `wechatpay-${id}`,
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
        messageId: `wechatpay-${id}`,
        orderId: plain.out_trade_no,
        tradeNo: plain.transaction_id,
        status: 'TRADE_SUCCESS',
        amount: 8888,
        currency: 'CNY',
        // 10:00:04 in Beijing time.
        paidAt: '2026-03-01T02:00:04.000Z',
        source: 'mq',
      },
    });
    // WeChat's retry: the same body, signed anew. The same messageId, so the consumer dedupes.
    expect((await post(receiver.url, body, signAsWechat(body))).status).toBe(204);
    const [again] = await takeMessages();
    expect(again?.properties.messageId).toBe(`wechatpay-${id}`);
    expect(logged.filter((line) => line.msg === 'notification published')).toHaveLength(2);
  });

  const tamper = (body: string) => {
    const json = JSON.parse(body) as { resource: { ciphertext: string } };
    const bytes = Buffer.from(json.resource.ciphertext, 'base64');
    bytes[3] = (bytes[3] ?? 0) ^ 0x01;
    json.resource.ciphertext = bytes.toString('base64');
    return JSON.stringify(json);
  };

  it.each<[string, number, string, () => { body: string; headers: Record<string, string> }]>([
    [
      'a signature by another key',
      401,
      'BAD_SIGNATURE',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction());
        return { body, headers: signedHeaders(body, strangerKeys.privateKey, PUBLIC_KEY_ID) };
      },
    ],
    [
      'a body changed after signing',
      401,
      'BAD_SIGNATURE',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction());
        return { body: body.replace('支付成功', '支付失败'), headers: signAsWechat(body) };
      },
    ],
    [
      'a wrong Wechatpay-Serial',
      401,
      'UNKNOWN_SERIAL',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction());
        return { body, headers: signedHeaders(body, wechatKeys.privateKey, 'PUB_KEY_ID_0114999999999999') };
      },
    ],
    [
      'a timestamp 6 minutes old',
      401,
      'STALE_TIMESTAMP',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction());
        return { body, headers: signAsWechat(body, Math.floor(Date.now() / 1000) - 360) };
      },
    ],
    [
      'a signature probe',
      401,
      'BAD_SIGNATURE',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction());
        return {
          body,
          headers: { ...signAsWechat(body), 'Wechatpay-Signature': 'WECHATPAY/SIGNTEST/7b2a9c0e4f1d' },
        };
      },
    ],
    [
      'a tampered ciphertext (signed after tampering, the GCM tag fails)',
      400,
      'UNDECRYPTABLE',
      () => {
        const body = tamper(envelope('TRANSACTION.SUCCESS', transaction()).body);
        return { body, headers: signAsWechat(body) };
      },
    ],
    [
      'a resource encrypted under another APIv3 key',
      400,
      'UNDECRYPTABLE',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction(), 'x'.repeat(32));
        return { body, headers: signAsWechat(body) };
      },
    ],
    [
      'another mchid',
      400,
      'WRONG_MERCHANT',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction({ mchid: '1900000999' }));
        return { body, headers: signAsWechat(body) };
      },
    ],
    [
      'another appid',
      400,
      'WRONG_APP',
      () => {
        const { body } = envelope('TRANSACTION.SUCCESS', transaction({ appid: 'wx0000000000000999' }));
        return { body, headers: signAsWechat(body) };
      },
    ],
    [
      'an amount in yuan',
      400,
      'SCHEMA_VIOLATION',
      () => {
        const { body } = envelope(
          'TRANSACTION.SUCCESS',
          transaction({ amount: { total: 88.88, currency: 'CNY' } }),
        );
        return { body, headers: signAsWechat(body) };
      },
    ],
  ])(
    'refuses %s: a FAIL answer, nothing published, the reason logged, no secret in the log',
    async (_what, status, reason, make) => {
      const { body, headers } = make();
      const answer = await post(receiver.url, body, headers);
      expect(answer).toEqual({ status, json: { code: 'FAIL', message: reason } });
      expect(await takeMessages()).toHaveLength(0);
      expect(logged.find((entry) => entry.msg === 'notification refused')).toMatchObject({
        provider: 'wechatpay',
        reason,
        notificationId: (JSON.parse(body) as { id: string }).id,
      });
      const log = JSON.stringify(logged);
      const { ciphertext } = (JSON.parse(body) as { resource: { ciphertext: string } }).resource;
      for (const secret of [APIV3_KEY, headers['Wechatpay-Signature'] ?? '', ciphertext]) {
        expect(log).not.toContain(secret);
      }
    },
  );

  it('refuses a body that is not a notification, and a form, with FAIL', async () => {
    const notJson = await post(receiver.url, '{"id":', signAsWechat('{"id":'));
    expect(notJson).toEqual({ status: 400, json: { code: 'FAIL', message: 'UNPARSEABLE' } });
    const response = await fetch(`${receiver.url}${WECHATPAY_NOTIFY_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=b',
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ code: 'FAIL' });
    expect(await takeMessages()).toHaveLength(0);
  });

  it("publishes REFUND.SUCCESS and REFUND.CLOSED as payrecon's refund notices; REFUND.ABNORMAL is acknowledged, nothing published", async () => {
    const refund = (status: string, extra: Record<string, unknown> = {}) => ({
      mchid: MCH_ID,
      out_trade_no: 'ord_refunded01',
      transaction_id: '4200001234202603010000000001',
      out_refund_no: `rf_${randomBytes(4).toString('hex')}`,
      refund_id: '50300000000000000000000000001',
      refund_status: status,
      user_received_account: '支付用户零钱',
      amount: { total: 8888, refund: 1000, payer_total: 8888, payer_refund: 1000 },
      ...extra,
    });
    const success = refund('SUCCESS', { success_time: '2026-03-02T11:00:00+08:00' });
    const sent = envelope('REFUND.SUCCESS', success);
    expect((await post(receiver.url, sent.body, signAsWechat(sent.body))).status).toBe(204);
    const closed = envelope('REFUND.CLOSED', refund('CLOSED'));
    expect((await post(receiver.url, closed.body, signAsWechat(closed.body))).status).toBe(204);
    const abnormal = envelope('REFUND.ABNORMAL', refund('ABNORMAL'));
    expect((await post(receiver.url, abnormal.body, signAsWechat(abnormal.body))).status).toBe(204);
    const messages = await takeMessages();
    expect(messages.map((m) => m.fields.routingKey)).toEqual(['trade.refunded', 'trade.refunded']);
    const [first, second] = messages;
    expect(first?.properties.headers?.[SIGNATURE_HEADER]).toBe(
      signBody(first?.content ?? Buffer.alloc(0), config.NOTIFY_HMAC_SECRET),
    );
    expect(JSON.parse(first?.content.toString() ?? '{}')).toEqual({
      version: 1,
      messageId: `wechatpay-${sent.id}`,
      orderId: 'ord_refunded01',
      outRequestNo: success.out_refund_no,
      refundNo: success.refund_id,
      status: 'REFUND_SUCCESS',
      amount: 1000,
      currency: 'CNY',
      refundedAt: '2026-03-02T03:00:00.000Z',
    });
    expect(JSON.parse(second?.content.toString() ?? '{}')).toMatchObject({
      messageId: `wechatpay-${closed.id}`,
      status: 'REFUND_FAILED',
      amount: 1000,
    });
    expect(logged.find((line) => line.msg === 'notification acknowledged; nothing to publish')).toMatchObject(
      {
        notificationId: abnormal.id,
        why: 'refund ABNORMAL (still open)',
      },
    );
  });

  it('answers 500 FAIL naming RabbitMQ while the broker is unreachable', async () => {
    const { log, lines } = capturingLogger();
    const down = await startReceiver({
      config: { ...config, AMQP_URL: `amqp://guest:guest@127.0.0.1:${await closedPort()}` },
      log,
      env: receiverEnv,
      publisher: { publishTimeoutMs: 500, maxRetries: 0 },
    });
    try {
      const { body } = envelope('TRANSACTION.SUCCESS', transaction());
      const answer = await post(down.url, body, signAsWechat(body));
      expect(answer.status).toBe(500);
      expect(answer.json).toMatchObject({ code: 'FAIL', message: expect.stringMatching(/RabbitMQ/) });
      const line = lines.find((entry) => entry.msg?.toString().startsWith('notification not published'));
      expect(String(line?.err)).toMatch(/RabbitMQ/);
    } finally {
      await down.close();
    }
  });

  describe("the fake's notifications", () => {
    const gateway = (notifyUrl: string) =>
      new WechatPayGateway(
        loadWechatPayConfig({
          ...receiverEnv,
          WECHATPAY_MCH_CERT_SERIAL: SERIAL,
          WECHATPAY_MCH_PRIVATE_KEY_FILE: merchantKeyFile,
          WECHATPAY_NOTIFY_URL: notifyUrl,
          WECHATPAY_ENDPOINT: fake.url,
        }),
        { timeoutMs: 2_000 },
      );
    /** An order opened at the fake through payrecon's adapter, then paid by the buyer. */
    const paidTrade = async (
      notify?: WechatNotifyFaults,
      notifyUrl = `${receiver.url}${WECHATPAY_NOTIFY_PATH}`,
    ) => {
      const orderId = `ord_${randomBytes(6).toString('hex')}`;
      await gateway(notifyUrl).openTrade({ orderId, amount: 2990, currency: 'CNY' });
      const response = await fetch(`${fake.url}/fake/trades/${orderId}/state`, {
        method: 'POST',
        body: JSON.stringify({ trade_state: 'SUCCESS', ...(notify ? { notify } : {}) }),
      });
      expect(response.status).toBe(200);
      return orderId;
    };
    const attemptsFor = (orderId: string): WechatNotifyAttempt[] =>
      fake.notifications().filter((a) => a.outTradeNo === orderId);
    const settle = () => new Promise((resolve) => setTimeout(resolve, 1_000));

    it('a payment reaches the receiver, is published and is not sent again', async () => {
      const orderId = await paidTrade();
      await eventually('answered', async () =>
        attemptsFor(orderId).some((a) => a.success) ? true : undefined,
      );
      const [message, ...more] = await takeMessages();
      expect(more).toHaveLength(0);
      expect(JSON.parse(message?.content.toString() ?? '{}')).toMatchObject({
        orderId,
        amount: 2990,
        status: 'TRADE_SUCCESS',
      });
      await settle();
      expect(attemptsFor(orderId)).toMatchObject([
        { attempt: 1, status: 204, success: true, kind: 'genuine' },
      ]);
    });

    it('retries on its ladder until a 2xx (the receiver unreachable for the first attempts)', async () => {
      const proxy = await TcpProxy.start(new URL(receiver.url).host, { up: false });
      try {
        const orderId = await paidTrade(undefined, `http://${proxy.address}${WECHATPAY_NOTIFY_PATH}`);
        await eventually('three failed attempts', async () =>
          attemptsFor(orderId).length >= 3 ? true : undefined,
        );
        await proxy.up();
        const sent = await eventually('an attempt answered 2xx', async () => {
          const all = attemptsFor(orderId);
          return all.some((a) => a.success) ? all : undefined;
        });
        await settle();
        expect(attemptsFor(orderId)).toHaveLength(sent.length);
        expect(sent.length).toBeGreaterThanOrEqual(4);
        expect(sent.map((a) => a.attempt)).toEqual(sent.map((_a, i) => i + 1));
        expect(new Set(sent.map((a) => a.id)).size).toBe(1);
        expect(sent.slice(0, -1).every((a) => a.status === null && !a.success)).toBe(true);
        const messages = await takeMessages();
        expect(messages).toHaveLength(1);
        expect(messages[0]?.properties.messageId).toBe(`wechatpay-${sent[0]?.id}`);
      } finally {
        await proxy.close();
      }
    });

    it('forged and replayed notifications are refused at every attempt and never published; the ladder goes on', async () => {
      const forged = await paidTrade({ forge: true });
      const stale = await paidTrade({ replayOldTimestamp: true });
      for (const [orderId, kind] of [
        [forged, 'forged'],
        [stale, 'stale'],
      ] as const) {
        const sent = await eventually(`three ${kind} attempts`, async () =>
          attemptsFor(orderId).length >= 3 ? attemptsFor(orderId) : undefined,
        );
        expect(sent.every((a) => a.kind === kind && a.status === 401 && !a.success)).toBe(true);
      }
      expect(await takeMessages()).toHaveLength(0);
      const reasons = logged.filter((l) => l.msg === 'notification refused').map((l) => l.reason);
      expect(new Set(reasons)).toEqual(new Set(['BAD_SIGNATURE', 'STALE_TIMESTAMP']));
    });

    it('a signature probe is answered as a failure; the genuine notification after it is published', async () => {
      const orderId = await paidTrade({ probe: true });
      await eventually('answered', async () =>
        attemptsFor(orderId).some((a) => a.success) ? true : undefined,
      );
      expect(attemptsFor(orderId)).toMatchObject([
        { attempt: 0, kind: 'probe', status: 401, success: false },
        { attempt: 1, kind: 'genuine', status: 204, success: true },
      ]);
      expect(await takeMessages()).toHaveLength(1);
    });

    it('a duplicated notification is published twice under one messageId; a dropped one is never sent', async () => {
      const duplicated = await paidTrade({ duplicate: true });
      const dropped = await paidTrade({ drop: true });
      await eventually('both copies answered', async () =>
        attemptsFor(duplicated).filter((a) => a.success).length === 2 ? true : undefined,
      );
      const messages = await takeMessages();
      expect(messages).toHaveLength(2);
      expect(new Set(messages.map((m) => m.properties.messageId)).size).toBe(1);
      await settle();
      expect(attemptsFor(dropped)).toHaveLength(0);
    });
  });
});

describe('the WeChat Pay lifecycle on the real services (PAYMENT_PROVIDER=wechatpay)', () => {
  let wechat: WechatPayLifecycle;
  let stack: Stack;
  let fake: FakeWechatPay;

  beforeAll(async () => {
    wechat = await startWechatPayLifecycle('wechatpay-lifecycle', {
      // Queries an hour apart: a refund settled within the test was settled by its notice.
      REFUND_LADDER: '1h',
      REFUND_REPEAT: '1h',
    });
    ({ stack, fake } = wechat);
  }, 60_000);

  afterAll(async () => {
    await wechat?.stop();
  });

  const newOrder = (ladderMs: number) => wechat.newOrder({ amount: 4321, ladderMs });
  const orderRow = (id: string) => wechat.orderRow(id);
  /** The buyer pays once the workflow opened the Native order at the fake. */
  const pay = (orderId: string, notify?: WechatNotifyFaults) =>
    eventually('the trade opened and paid', async () => {
      const response = await fetch(`${fake.url}/fake/trades/${orderId}/state`, {
        method: 'POST',
        body: JSON.stringify({ trade_state: 'SUCCESS', ...(notify ? { notify } : {}) }),
      });
      return response.status === 200 ? true : undefined;
    });

  it('paid at the fake: notification → receiver → RabbitMQ → consumer → workflow → PAID by mq', async () => {
    const { order } = await newOrder(3_600_000);
    await pay(order.id);
    const paid = await eventually('the order PAID', async () => {
      const row = await orderRow(order.id);
      return row?.status === 'PAID' ? row : undefined;
    });
    expect(paid).toMatchObject({ settledBy: 'mq', amount: 4321, provider: 'wechatpay' });
    expect(paid.tradeNo).toMatch(/^42\d{26}$/);
    const sent = fake.notifications().filter((a) => a.outTradeNo === order.id);
    expect(sent).toMatchObject([{ attempt: 1, status: 204, success: true }]);
  });

  it('refunded at the fake: REFUND.SUCCESS → receiver → RabbitMQ → consumer → refund SUCCEEDED by mq', async () => {
    const { order } = await newOrder(3_600_000);
    await pay(order.id);
    await eventually('the order PAID', async () =>
      (await orderRow(order.id))?.status === 'PAID' ? true : undefined,
    );
    const { refund } = await requestRefund(
      { db: stack.db, client: stack.temporal, config: stack.config },
      { orderId: order.id, amount: 1_000 },
    );
    // WeChat answered PROCESSING; the refund goes through at WeChat, which notifies it.
    await eventually('the refund at WeChat settled', async () => {
      const response = await fetch(`${fake.url}/fake/refunds/${refund.outRequestNo}/outcome`, {
        method: 'POST',
        body: JSON.stringify({ status: 'SUCCESS' }),
      });
      return response.status === 200 ? true : undefined;
    });
    const settled = await eventually('the refund SUCCEEDED', async () => {
      const [row] = await stack.db.select().from(refunds).where(eq(refunds.id, refund.id));
      return row?.status === 'SUCCEEDED' ? row : undefined;
    });
    expect(settled).toMatchObject({ settledBy: 'mq', amount: 1_000 });
    expect(settled.providerRefundNo).toMatch(/^50\d{27}$/);
    const sent = fake
      .notifications()
      .filter((a) => a.eventType === 'REFUND.SUCCESS' && a.outTradeNo === order.id);
    expect(sent).toMatchObject([{ status: 204, success: true }]);
  });

  it('notification dropped: paid by the ladder of queries (PAID by poll)', async () => {
    const { order } = await newOrder(1_000);
    await pay(order.id, { drop: true });
    const paid = await eventually('the order PAID', async () => {
      const row = await orderRow(order.id);
      return row?.status === 'PAID' ? row : undefined;
    });
    expect(paid.settledBy).toBe('poll');
    expect(fake.notifications().filter((a) => a.outTradeNo === order.id)).toHaveLength(0);
  });
});
