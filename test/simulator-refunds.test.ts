import amqplib, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase } from '../src/db/client';
import { hasValidSignature, SIGNATURE_HEADER } from '../src/mq/notification';
import { REFUND_ROUTING_KEY, topologyFor } from '../src/mq/topology';
import { ProviderReplyError } from '../src/provider/gateway';
import { HttpPaymentGateway } from '../src/provider/http';
import { runSimulatorCli } from '../tools/simulator/cli';
import { SimulatorClient, SimulatorHttpError } from '../tools/simulator/client';
import { type RunningSimulator, startSimulator } from '../tools/simulator/server';
import { inProcessCli } from './support/cli';
import { deleteTopology, eventually, testConfig, uniqueSuffix } from './support/env';

/**
 * The payment simulator's refunds in-process, over HTTP, against the real database and broker: every
 * `trade.refunded` notification is read from a queue of this file's own, bound to that routing key.
 */
const config = testConfig('simrefund');
const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
const refundQueue = `${config.AMQP_PREFIX}.test-refunds`;
const secret = config.NOTIFY_HMAC_SECRET;
const database = createDatabase(config.DATABASE_URL, { max: 2 });
const orderPrefix = `simr-${uniqueSuffix()}`;
const AMOUNT = 12_345;

let simulator: RunningSimulator;
let client: SimulatorClient;
let connection: ChannelModel;
let channel: Channel;
let orderCount = 0;

function newOrderId(): string {
  orderCount += 1;
  return `${orderPrefix}-${orderCount}`;
}

async function paidTrade(faults?: Record<string, unknown>): Promise<string> {
  const orderId = newOrderId();
  await client.openTrade({ orderId, amount: AMOUNT, currency: 'CNY', ...(faults ? { faults } : {}) });
  await client.pay(orderId, { faults: { drop: true } });
  return orderId;
}

async function drain(): Promise<GetMessage[]> {
  const messages: GetMessage[] = [];
  for (;;) {
    const message = await channel.get(refundQueue, { noAck: true });
    if (!message) return messages;
    messages.push(message);
  }
}

/** A refund notice as a v1 consumer must read it: signature, JSON, fields. */
function readNotice(message: GetMessage): Record<string, unknown> {
  expect(hasValidSignature(message.content, message.properties.headers?.[SIGNATURE_HEADER], secret)).toBe(
    true,
  );
  expect(message.fields.routingKey).toBe(REFUND_ROUTING_KEY);
  expect(message.properties.type).toBe('trade.refunded.v1');
  const body = JSON.parse(message.content.toString('utf8')) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(
    [
      'amount',
      'currency',
      'messageId',
      'orderId',
      'outRequestNo',
      'refundNo',
      'refundedAt',
      'status',
      'version',
    ].sort(),
  );
  expect(body.version).toBe(1);
  expect(body.messageId).toBe(message.properties.messageId);
  expect(new Date(body.refundedAt as string).toISOString()).toBe(body.refundedAt);
  return body;
}

async function refusal(promise: Promise<unknown>): Promise<SimulatorHttpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SimulatorHttpError);
  return error as SimulatorHttpError;
}

beforeAll(async () => {
  simulator = await startSimulator({ config, port: 0, publisher: { publishTimeoutMs: 5_000 } });
  client = new SimulatorClient(simulator.url);
  connection = await amqplib.connect(config.AMQP_URL);
  channel = await connection.createChannel();
  await channel.assertQueue(refundQueue, { durable: false, autoDelete: false });
  await channel.bindQueue(refundQueue, topology.paymentExchange, REFUND_ROUTING_KEY);
});

beforeEach(async () => {
  simulator.faults.replace({});
  await channel.purgeQueue(refundQueue);
});

afterAll(async () => {
  await simulator?.close();
  await channel?.deleteQueue(refundQueue);
  await connection?.close();
  await deleteTopology(config);
  await database.sql`delete from provider.refunds where order_id like ${`${orderPrefix}-%`}`;
  await database.sql`delete from provider.trades where order_id like ${`${orderPrefix}-%`}`;
  await database.close();
});

describe('payment simulator: refund requests', () => {
  it('is idempotent by outRequestNo: the same request twice is one refund, executed once, one notice', async () => {
    const orderId = await paidTrade();
    const first = await client.refund(orderId, {
      outRequestNo: `${orderId}-R1`,
      amount: 1_000,
      reason: 'size',
    });
    expect(first).toMatchObject({
      orderId,
      outRequestNo: `${orderId}-R1`,
      status: 'SUCCESS',
      amount: 1_000,
      currency: 'CNY',
      reason: 'size',
      failureReason: null,
      executions: 1,
      created: true,
      notification: { outcome: 'published', copies: 1 },
    });
    expect(first.refundNo).toMatch(/^R\d{24}$/);
    const again = await client.refund(orderId, {
      outRequestNo: `${orderId}-R1`,
      amount: 1_000,
      reason: 'size',
    });
    expect(again).toMatchObject({
      refundNo: first.refundNo,
      status: 'SUCCESS',
      created: false,
      notification: null,
    });

    const conflict = await refusal(client.refund(orderId, { outRequestNo: `${orderId}-R1`, amount: 999 }));
    expect(conflict.status).toBe(409);
    expect(conflict.body.error).toMatch(/requested for 1000, not 999/);

    expect(await client.refundStats(orderId)).toEqual({
      orderId,
      refunds: 1,
      processing: 0,
      succeeded: 1,
      failed: 0,
      executions: 1,
      maxExecutions: 1,
      refundedAmount: 1_000,
    });
    const messages = await drain();
    expect(messages).toHaveLength(1);
    const [message] = messages;
    if (!message) throw new Error('no refund notice');
    expect(readNotice(message)).toEqual({
      version: 1,
      messageId: first.notification?.messageId,
      orderId,
      outRequestNo: `${orderId}-R1`,
      refundNo: first.refundNo,
      status: 'REFUND_SUCCESS',
      amount: 1_000,
      currency: 'CNY',
      refundedAt: first.refundedAt,
    });
    expect(await client.getRefund(orderId, `${orderId}-R1`)).toMatchObject({
      status: 'SUCCESS',
      executions: 1,
    });
    expect(await client.getRefund(orderId, 'never-asked')).toBeNull();
  });

  it('the same request sent concurrently is still one refund executed once', async () => {
    const orderId = await paidTrade();
    const replies = await Promise.all(
      Array.from({ length: 8 }, () => client.refund(orderId, { outRequestNo: 'same', amount: 500 })),
    );
    expect(new Set(replies.map((r) => r.refundNo)).size).toBe(1);
    expect(replies.filter((r) => r.created)).toHaveLength(1);
    expect(await client.refundStats(orderId)).toMatchObject({ refunds: 1, executions: 1, maxExecutions: 1 });
    expect((await client.getTrade(orderId))?.refundedAmount).toBe(500);
    expect(await drain()).toHaveLength(1);
  });

  it('partial then full: TRADE_SUCCESS with the partial refundedAmount, then TRADE_CLOSED refunded in full', async () => {
    const orderId = await paidTrade();
    await client.refund(orderId, { outRequestNo: 'r1', amount: 2_345 });
    expect(await client.getTrade(orderId)).toMatchObject({
      status: 'TRADE_SUCCESS',
      amount: AMOUNT,
      refundedAmount: 2_345,
      closedAt: null,
    });
    await client.refund(orderId, { outRequestNo: 'r2', amount: AMOUNT - 2_345 });
    const closed = await client.getTrade(orderId);
    expect(closed).toMatchObject({ status: 'TRADE_CLOSED', amount: AMOUNT, refundedAmount: AMOUNT });
    expect(closed?.paidAt).not.toBeNull();
    expect(closed?.closedAt).not.toBeNull();

    const more = await refusal(client.refund(orderId, { outRequestNo: 'r3', amount: 1 }));
    expect(more.status).toBe(409);
    expect(more.body.error).toMatch(/refunded in full/);
    expect((await client.listRefunds(orderId)).map((r) => r.outRequestNo)).toEqual(['r1', 'r2']);
    expect(await client.refundStats(orderId)).toMatchObject({
      succeeded: 2,
      executions: 2,
      refundedAmount: AMOUNT,
    });
  });

  it('refuses a refund over the refundable amount, counting processing refunds as taken', async () => {
    const orderId = await paidTrade();
    const over = await refusal(client.refund(orderId, { outRequestNo: 'big', amount: AMOUNT + 1 }));
    expect(over.status).toBe(409);
    expect(over.body.error).toMatch(/exceeds what is left to refund/);

    const processing = await client.refund(orderId, {
      outRequestNo: 'slow',
      amount: 10_000,
      faults: { processingMs: 60_000 },
    });
    expect(processing.status).toBe('PROCESSING');
    const racing = await refusal(client.refund(orderId, { outRequestNo: 'second', amount: 3_000 }));
    expect(racing.status).toBe(409);
    expect(racing.body.error).toMatch(/refundable 2345/);
    expect((await client.refund(orderId, { outRequestNo: 'rest', amount: 2_345 })).status).toBe('SUCCESS');
  });

  it('two concurrent refunds whose sum exceeds the paid amount: exactly one is accepted', async () => {
    const orderId = await paidTrade();
    const results = await Promise.allSettled([
      client.refund(orderId, { outRequestNo: 'a', amount: 8_000 }),
      client.refund(orderId, { outRequestNo: 'b', amount: 8_000 }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const rejected = results.find((r) => r.status === 'rejected');
    expect((rejected as PromiseRejectedResult).reason).toMatchObject({ status: 409 });
    expect(await client.refundStats(orderId)).toMatchObject({
      refunds: 1,
      executions: 1,
      refundedAmount: 8_000,
    });
  });

  it('refuses unpaid, closed unpaid and TRADE_FINISHED trades (409), and answers 404 without a trade', async () => {
    const unpaid = newOrderId();
    await client.openTrade({ orderId: unpaid, amount: AMOUNT, currency: 'CNY' });
    const notPaid = await refusal(client.refund(unpaid, { outRequestNo: 'x', amount: 1 }));
    expect(notPaid.status).toBe(409);
    expect(notPaid.body.error).toMatch(/not paid \(WAIT_BUYER_PAY\)/);
    expect(notPaid.body.code).toBe('TRADE_NOT_PAID');
    await client.closeTrade(unpaid);
    const closed = await refusal(client.refund(unpaid, { outRequestNo: 'x', amount: 1 }));
    expect(closed.status).toBe(409);
    expect(closed.body.error).toMatch(/closed unpaid/);
    expect(closed.body.code).toBe('TRADE_CLOSED');
    expect(await client.getTrade(unpaid)).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: 0 });

    const finished = await paidTrade();
    expect(await client.finishTrade(finished)).toMatchObject({ status: 'TRADE_FINISHED' });
    const late = await refusal(client.refund(finished, { outRequestNo: 'x', amount: 1 }));
    expect(late.status).toBe(409);
    expect(late.body.error).toMatch(/TRADE_FINISHED: its refund window is over/);
    expect(late.body.code).toBe('TRADE_FINISHED');
    expect((await refusal(client.finishTrade(finished))).status).toBe(409);

    const missing = await refusal(client.refund(newOrderId(), { outRequestNo: 'x', amount: 1 }));
    expect(missing.status).toBe(404);
    expect(await client.refundStats(unpaid)).toMatchObject({ refunds: 0 });
    expect(await drain()).toHaveLength(0);
  });

  it('validates the request', async () => {
    const orderId = await paidTrade();
    const bad = await refusal(
      client.refund(orderId, {
        outRequestNo: 'has space',
        amount: 0,
        faults: { processingMs: -1 },
      }),
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatch(/outRequestNo: .*amount: .*faults\.processingMs/);
  });
});

describe('payment simulator: refund outcomes and notices', () => {
  it('processingMs: PROCESSING, then SUCCESS with a signed REFUND_SUCCESS notice on trade.refunded', async () => {
    const orderId = await paidTrade();
    const accepted = await client.refund(orderId, {
      outRequestNo: 'slow',
      amount: 3_000,
      faults: { processingMs: 400 },
    });
    expect(accepted).toMatchObject({
      status: 'PROCESSING',
      refundedAt: null,
      executions: 0,
      notification: null,
    });
    expect(await drain()).toHaveLength(0);
    expect(await client.getRefund(orderId, 'slow')).toMatchObject({ status: 'PROCESSING' });
    expect((await client.getTrade(orderId))?.refundedAmount).toBe(0);

    const [message] = await eventually('the refund notice', async () => {
      const got = await drain();
      return got.length > 0 ? got : undefined;
    });
    if (!message) throw new Error('no refund notice');
    const refund = await client.getRefund(orderId, 'slow');
    expect(refund).toMatchObject({ status: 'SUCCESS', executions: 1 });
    expect(readNotice(message)).toMatchObject({
      orderId,
      outRequestNo: 'slow',
      refundNo: accepted.refundNo,
      status: 'REFUND_SUCCESS',
      amount: 3_000,
      refundedAt: refund?.refundedAt,
    });
    expect(
      new Date(refund?.refundedAt ?? 0).getTime() - new Date(accepted.requestedAt).getTime(),
    ).toBeGreaterThanOrEqual(390);
    expect((await client.getTrade(orderId))?.refundedAmount).toBe(3_000);
  });

  it('fail: FAILED with a REFUND_FAILED notice, nothing refunded, the amount free again', async () => {
    const orderId = await paidTrade();
    const failed = await client.refund(orderId, {
      outRequestNo: 'f',
      amount: AMOUNT,
      faults: { fail: true },
    });
    expect(failed).toMatchObject({
      status: 'FAILED',
      executions: 0,
      failureReason: expect.stringMatching(/fail/),
    });
    const [message] = await drain();
    if (!message) throw new Error('no refund notice');
    expect(readNotice(message)).toMatchObject({ status: 'REFUND_FAILED', outRequestNo: 'f', amount: AMOUNT });
    expect(await client.getTrade(orderId)).toMatchObject({ status: 'TRADE_SUCCESS', refundedAmount: 0 });

    const slowFail = await client.refund(orderId, {
      outRequestNo: 'f2',
      amount: 100,
      faults: { processingMs: 200, fail: 'insufficient merchant balance' },
    });
    expect(slowFail.status).toBe('PROCESSING');
    const later = await eventually('the failed refund', async () => {
      const refund = await client.getRefund(orderId, 'f2');
      return refund?.status === 'FAILED' ? refund : undefined;
    });
    expect(later.failureReason).toBe('insufficient merchant balance');
    const [second] = await eventually('the second notice', async () => {
      const got = await drain();
      return got.length > 0 ? got : undefined;
    });
    if (!second) throw new Error('no refund notice');
    expect(readNotice(second).status).toBe('REFUND_FAILED');

    expect((await client.refund(orderId, { outRequestNo: 'ok', amount: AMOUNT })).status).toBe('SUCCESS');
    expect(await client.refundStats(orderId)).toMatchObject({ failed: 2, succeeded: 1, executions: 1 });
  });

  it('drop publishes no notice, yet the refund query says SUCCESS', async () => {
    const orderId = await paidTrade();
    const reply = await client.refund(orderId, { outRequestNo: 'd', amount: 10, faults: { drop: true } });
    expect(reply).toMatchObject({ status: 'SUCCESS', notification: { outcome: 'dropped', copies: 0 } });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await drain()).toHaveLength(0);
    expect(await client.getRefund(orderId, 'd')).toMatchObject({ status: 'SUCCESS' });
  });

  it('duplicate publishes copies with one messageId; the refund is still executed once', async () => {
    const orderId = await paidTrade();
    const reply = await client.refund(orderId, { outRequestNo: 'dup', amount: 10, faults: { duplicate: 3 } });
    const messages = await drain();
    expect(messages).toHaveLength(3);
    expect(new Set(messages.map((m) => m.properties.messageId))).toEqual(
      new Set([reply.notification?.messageId]),
    );
    expect(new Set(messages.map((m) => m.content.toString()))).toHaveProperty('size', 1);
    expect(await client.refundStats(orderId)).toMatchObject({ executions: 1 });
  });

  it('forge signs with the wrong secret; corrupt breaks the body; delayMs publishes later', async () => {
    const forged = await paidTrade();
    await client.refund(forged, { outRequestNo: 'x', amount: 10, faults: { forge: true } });
    const [forgedMessage] = await drain();
    if (!forgedMessage) throw new Error('no refund notice');
    const signature = forgedMessage.properties.headers?.[SIGNATURE_HEADER];
    expect(signature).toMatch(/^[0-9a-f]{64}$/);
    expect(hasValidSignature(forgedMessage.content, signature, secret)).toBe(false);

    const notJson = await paidTrade();
    await client.refund(notJson, { outRequestNo: 'x', amount: 10, faults: { corrupt: true } });
    const schema = await paidTrade();
    await client.refund(schema, { outRequestNo: 'x', amount: 10, faults: { corrupt: 'schema' } });
    const [first, second] = await drain();
    if (!first || !second) throw new Error('expected two notices');
    expect(() => JSON.parse(first.content.toString())).toThrow();
    const broken = JSON.parse(second.content.toString());
    expect(broken).not.toHaveProperty('refundNo');
    expect(typeof broken.amount).toBe('string');

    const delayed = await paidTrade();
    const reply = await client.refund(delayed, { outRequestNo: 'x', amount: 10, faults: { delayMs: 300 } });
    expect(reply.notification).toMatchObject({ outcome: 'scheduled', delayMs: 300 });
    expect(await drain()).toHaveLength(0);
    const late = await eventually('the delayed notice', async () => {
      const got = await drain();
      return got.length > 0 ? got : undefined;
    });
    expect(late.map((m) => m.properties.messageId)).toEqual([reply.notification?.messageId]);
  });

  it("uses the trade's faults.refund, a request's knobs win, and global rates apply to refund notices", async () => {
    const orderId = await paidTrade({ refund: { duplicate: 2 } });
    await client.refund(orderId, { outRequestNo: 'a', amount: 10 });
    expect(await drain()).toHaveLength(2);
    await client.refund(orderId, { outRequestNo: 'b', amount: 10, faults: { duplicate: 1 } });
    expect(await drain()).toHaveLength(1);

    simulator.faults.replace({ dropRate: 1 });
    const other = await paidTrade();
    const dropped = await client.refund(other, { outRequestNo: 'a', amount: 10 });
    expect(dropped.notification?.outcome).toBe('dropped');
    expect(await drain()).toHaveLength(0);
  });
});

describe('payment simulator: refunds through payrecon’s HttpPaymentGateway', () => {
  it('submitRefund, queryRefund and queryTrade read what the simulator answers', async () => {
    const gateway = new HttpPaymentGateway({ baseUrl: simulator.url });
    const orderId = await paidTrade();
    const submitted = await gateway.submitRefund({ orderId, outRequestNo: 'g1', amount: 345, reason: null });
    expect(submitted).toMatchObject({
      outRequestNo: 'g1',
      status: 'SUCCESS',
      amount: 345,
      failureReason: null,
    });
    expect(submitted.refundNo).toMatch(/^R/);
    expect(await gateway.submitRefund({ orderId, outRequestNo: 'g1', amount: 345, reason: null })).toEqual(
      submitted,
    );
    expect(await gateway.queryRefund(orderId, 'g1')).toEqual(submitted);
    expect(await gateway.queryRefund(orderId, 'nope')).toMatchObject({ status: 'NOT_FOUND' });
    expect(await gateway.queryTrade(orderId)).toMatchObject({ status: 'TRADE_SUCCESS', refundedAmount: 345 });

    await gateway.submitRefund({ orderId, outRequestNo: 'g2', amount: AMOUNT - 345, reason: 'rest' });
    expect(await gateway.queryTrade(orderId)).toMatchObject({
      status: 'TRADE_CLOSED',
      refundedAmount: AMOUNT,
    });

    const finished = await paidTrade();
    await client.finishTrade(finished);
    // The simulator's refusal code reaches payrecon as an explicit refusal.
    await expect(
      gateway.submitRefund({ orderId: finished, outRequestNo: 'g', amount: 1, reason: null }),
    ).rejects.toMatchObject({ name: 'ProviderRefusedError', code: 'TRADE_FINISHED' });
    // The same out_request_no for another amount: a refund with this number exists, so not a refusal.
    await expect(
      gateway.submitRefund({ orderId, outRequestNo: 'g1', amount: 1, reason: null }),
    ).rejects.toBeInstanceOf(ProviderReplyError);
    await drain();
  });
});

describe('payment simulator: the sim CLI refunds', () => {
  const sim = inProcessCli(runSimulatorCli, () => ({ ...config, PROVIDER_URL: simulator.url }));

  it('refund --processing --duplicate, refunds, trade finish, and a refusal exits 1 with the reason', async () => {
    const orderId = await paidTrade();
    const reply = await sim.cliJson<{ status: string; created: boolean; faults: Record<string, unknown> }>([
      'refund',
      orderId,
      '--amount',
      '300',
      '--out-request-no',
      'cli-1',
      '--processing',
      '200ms',
      '--duplicate',
      '2',
    ]);
    expect(reply).toMatchObject({ status: 'PROCESSING', created: true });
    expect(reply.faults).toEqual({ processingMs: 200, duplicate: 2 });
    // The two copies are published one after the other: keep what each drain takes until both are in.
    const messages: GetMessage[] = [];
    await eventually('two refund notices', async () => {
      messages.push(...(await drain()));
      return messages.length >= 2 ? true : undefined;
    });
    expect(messages).toHaveLength(2);

    const failed = await sim.cli(['refund', orderId, '--amount', '100', '--fail', 'no money']);
    expect(failed.code).toBe(0);
    expect(failed.stdout).toMatch(/refund status:\s+FAILED/);
    expect(failed.stdout).toContain('no money');

    const listed = await sim.cliJson<{ refunds: unknown[]; stats: { executions: number; failed: number } }>([
      'refunds',
      orderId,
    ]);
    expect(listed.refunds).toHaveLength(2);
    expect(listed.stats).toMatchObject({ executions: 1, failed: 1 });

    expect((await sim.cli(['trade', 'finish', orderId])).code).toBe(0);
    const refused = await sim.cli(['refund', orderId, '--amount', '1']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('refund window is over');
    expect((await sim.cli(['refund', orderId, '--amount', '0'])).code).toBe(2);
    await drain();
  });
});

describe('payment simulator: a refund whose simulator stopped while it was PROCESSING', () => {
  it('ends when its order is next asked about, once', async () => {
    const orderId = await paidTrade();
    const other = await startSimulator({ config, port: 0 });
    const accepted = await new SimulatorClient(other.url).refund(orderId, {
      outRequestNo: 'orphan',
      amount: 50,
      faults: { processingMs: 150 },
    });
    expect(accepted.status).toBe('PROCESSING');
    await other.close();
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(await drain()).toHaveLength(0);
    expect(await client.getTrade(orderId)).toMatchObject({ refundedAmount: 50 });
    expect(await client.getRefund(orderId, 'orphan')).toMatchObject({ status: 'SUCCESS', executions: 1 });
    const messages = await drain();
    expect(messages).toHaveLength(1);
    expect(readNotice(messages[0] as GetMessage)).toMatchObject({
      outRequestNo: 'orphan',
      status: 'REFUND_SUCCESS',
    });
  });
});
