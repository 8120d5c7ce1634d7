import { randomUUID } from 'node:crypto';
import amqplib, { type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasValidSignature, type PaymentNoticeBody, parsePaymentNotice } from '../src/mq/notification';
import { PaymentEventPublisher, type PaymentEventPublisherOptions, PublishError } from '../src/mq/publisher';
import { TRADE_PAID_ROUTING_KEY, topologyFor } from '../src/mq/topology';
import { deleteTopology, testConfig } from './support/env';

/** The publisher against the real broker, under this file's own exchange and queue names. */
const config = testConfig('pub');
const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
const secret = config.NOTIFY_HMAC_SECRET;
/** A classic queue that refuses every message, so the broker nacks what is routed to it. */
const fullQueue = `${config.AMQP_PREFIX}.always-full`;
const FULL_ROUTING_KEY = 'test.always-full';

let connection: ChannelModel;
let channel: Channel;
const publishers: PaymentEventPublisher[] = [];

function newPublisher(overrides: Partial<PaymentEventPublisherOptions> = {}): PaymentEventPublisher {
  const publisher = new PaymentEventPublisher({
    url: config.AMQP_URL,
    topology,
    secret,
    publishTimeoutMs: 5_000,
    maxRetries: 1,
    retryBaseMs: 50,
    reconnectSeconds: 0.2,
    ...overrides,
  });
  publishers.push(publisher);
  return publisher;
}

function notification(overrides: Partial<PaymentNoticeBody> = {}): PaymentNoticeBody {
  return {
    version: 1,
    messageId: randomUUID(),
    orderId: `pub-${randomUUID().slice(0, 8)}`,
    tradeNo: '2026010112345678',
    status: 'TRADE_SUCCESS',
    amount: 9_900,
    currency: 'CNY',
    paidAt: new Date().toISOString(),
    ...overrides,
  };
}

async function drain(queue: string): Promise<GetMessage[]> {
  const messages: GetMessage[] = [];
  for (;;) {
    const message = await channel.get(queue, { noAck: true });
    if (!message) return messages;
    messages.push(message);
  }
}

async function rejection(promise: Promise<unknown>): Promise<PublishError> {
  const error = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(error, 'the publish should have been rejected').toBeInstanceOf(PublishError);
  return error as PublishError;
}

beforeAll(async () => {
  connection = await amqplib.connect(config.AMQP_URL);
  channel = await connection.createChannel();
  const publisher = newPublisher();
  await publisher.waitForConnect();
  await channel.assertQueue(fullQueue, {
    durable: false,
    autoDelete: false,
    arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
  });
  await channel.bindQueue(fullQueue, topology.paymentExchange, FULL_ROUTING_KEY);
});

afterAll(async () => {
  await Promise.allSettled(publishers.map((publisher) => publisher.close({ timeoutMs: 1_000 })));
  await channel?.deleteQueue(fullQueue);
  await connection?.close();
  await deleteTopology(config);
});

describe('PaymentEventPublisher', () => {
  it('declares the topology and confirms a persistent, signed message that lands in the pay-success queue', async () => {
    const publisher = newPublisher();
    const sent = notification();
    await publisher.publishTradePaid(sent);

    const [message, ...rest] = await drain(topology.paySuccessQueue);
    expect(rest).toHaveLength(0);
    expect(message).toBeDefined();
    if (!message) return;
    expect(message.fields.routingKey).toBe(TRADE_PAID_ROUTING_KEY);
    expect(message.properties.messageId).toBe(sent.messageId);
    expect(message.properties.deliveryMode).toBe(2);
    expect(message.properties.contentType).toBe('application/json');
    expect(hasValidSignature(message.content, message.properties.headers?.['x-signature'], secret)).toBe(
      true,
    );
    expect(parsePaymentNotice(message.content, message.properties.headers?.['x-signature'], secret)).toEqual({
      ok: true,
      // version is the wire's; source says where the notice came from
      notice: { ...sent, version: undefined, source: 'mq' },
    });
  });

  it('refuses to publish a notification that breaks the v1 schema', async () => {
    const publisher = newPublisher();
    await expect(publisher.publishTradePaid(notification({ amount: 99.5 }))).rejects.toThrow(
      /not a valid v1 payment notification: amount/,
    );
  });

  it('rejects an unroutable message (mandatory return) at once, without retrying', async () => {
    const publisher = newPublisher({ maxRetries: 3 });
    const messageId = randomUUID();
    const error = await rejection(
      publisher.publish({ routingKey: 'nobody.listens.here', body: Buffer.from('{}'), messageId }),
    );
    expect(error.failure).toBe('UNROUTABLE');
    expect(error.attempts).toBe(1);
    expect(error.message).toContain(messageId);
    expect(error.message).toMatch(/312 NO_ROUTE/);
    expect(error.message).toContain('nobody.listens.here');
    expect(await drain(topology.paySuccessQueue)).toHaveLength(0);
  });

  it('rejects a publish to a missing exchange after its retries, then recovers the channel', async () => {
    const publisher = newPublisher({ maxRetries: 1 });
    const missing = `${config.AMQP_PREFIX}.no-such-exchange`;
    const error = await rejection(
      publisher.publish({
        exchange: missing,
        routingKey: 'x',
        body: Buffer.from('{}'),
        messageId: randomUUID(),
      }),
    );
    expect(error.failure).toBe('CHANNEL_CLOSED');
    expect(error.attempts).toBe(2);
    expect(error.message).toMatch(/NOT_FOUND - no exchange/);

    // The broker closed the channel; the publisher reopens it and carries on.
    const sent = notification();
    await publisher.publishTradePaid(sent);
    const messages = await drain(topology.paySuccessQueue);
    expect(messages.map((m) => m.properties.messageId)).toEqual([sent.messageId]);
  });

  it('surfaces a broker nack as an error once its retries are used up', async () => {
    const publisher = newPublisher({ maxRetries: 2 });
    const error = await rejection(
      publisher.publish({ routingKey: FULL_ROUTING_KEY, body: Buffer.from('{}'), messageId: randomUUID() }),
    );
    expect(error.failure).toBe('NACKED');
    expect(error.attempts).toBe(3);
    expect(error.message).toMatch(/basic\.nack/);
  });

  it('keeps publishing across a reconnect: messages sent while disconnected wait and are confirmed', async () => {
    // A publish caught on the closing channel is lost inside amqp-connection-manager (amqplib throws
    // "Connection closing" synchronously and the wrapper never settles it); the per-attempt timeout and
    // the retry are what deliver it, so keep the timeout short here.
    const publisher = newPublisher({ publishTimeoutMs: 1_000 });
    await publisher.waitForConnect();
    // Drop the connection the way a broker restart or a network blip would.
    (publisher as unknown as { connection: { reconnect(): void } }).connection.reconnect();
    const sent = Array.from({ length: 5 }, () => notification());
    await Promise.all(sent.map((n) => publisher.publishTradePaid(n)));
    const ids = (await drain(topology.paySuccessQueue)).map((m) => m.properties.messageId);
    expect(ids.sort()).toEqual(sent.map((n) => n.messageId).sort());
  });

  it('bounds the buffer while the broker is unreachable and fails each publish after its timeout and retries', async () => {
    const publisher = newPublisher({
      url: 'amqp://guest:guest@127.0.0.1:1',
      maxPending: 2,
      publishTimeoutMs: 300,
      maxRetries: 1,
      retryBaseMs: 50,
    });
    const first = rejection(publisher.publishTradePaid(notification()));
    const second = rejection(publisher.publishTradePaid(notification()));
    const overflow = await rejection(publisher.publishTradePaid(notification()));
    expect(overflow.failure).toBe('OVERLOADED');
    expect(overflow.message).toMatch(/limit 2/);

    for (const error of [await first, await second]) {
      expect(error.failure).toBe('TIMEOUT');
      expect(error.attempts).toBe(2);
      expect(error.message).toMatch(/no confirm from RabbitMQ within 300ms/);
    }
    expect(publisher.pendingCount).toBe(0);
    await publisher.close();
  });

  it('close() waits for pending confirms, then refuses new publishes', async () => {
    const publisher = newPublisher();
    const sent = Array.from({ length: 20 }, () => notification());
    const publishes = sent.map((n) => publisher.publishTradePaid(n));
    await publisher.close();

    const results = await Promise.allSettled(publishes);
    expect(results.every((result) => result.status === 'fulfilled')).toBe(true);
    expect(await drain(topology.paySuccessQueue)).toHaveLength(20);

    const late = await rejection(publisher.publishTradePaid(notification()));
    expect(late.failure).toBe('CLOSED');
  });
});
