import {
  type AmqpConnectionManager,
  AmqpConnectionManagerClass,
  type Channel,
  type ChannelWrapper,
} from 'amqp-connection-manager';
import type { Message } from 'amqplib';
import pino, { type Logger } from 'pino';
import type { z } from 'zod';
import { redactUrl } from '../platform/redact';
import {
  type PaymentNoticeBody,
  paymentNoticeSchema,
  refundNoticeSchema,
  SIGNATURE_HEADER,
  signBody,
} from './notification';
import { declareTopology, REFUND_ROUTING_KEY, type Topology, TRADE_PAID_ROUTING_KEY } from './topology';

/**
 * Publishes payment events with every guarantee the broker offers:
 *
 * - a confirm channel: a publish resolves only once the broker has taken responsibility for the
 *   message (for a persistent message on a durable queue: written to disk / replicated);
 * - `mandatory: true` plus a `return` listener: a message no queue is bound for is an error, not a
 *   silent drop;
 * - a broker nack, a missing exchange (the broker closes the channel) or no confirm in time is an
 *   error too; each is retried with exponential backoff a bounded number of times, then thrown;
 * - while the broker is unreachable amqp-connection-manager keeps messages in memory and reconnects;
 *   this class bounds how many publishes may wait (`maxPending`) and how long each attempt may take.
 *
 * A retry after a timeout may deliver the same message twice (the first copy may have reached the
 * broker after all): delivery is at least once, and consumers dedupe on the message id.
 */
export interface PaymentEventPublisherOptions {
  /** One broker URL, or several to round-robin between on reconnect. */
  url: string | string[];
  topology: Topology;
  /** HMAC-SHA256 secret of the `x-signature` header. */
  secret: string;
  logger?: Logger;
  /** The `appId` property of every message. */
  appId?: string;
  /** Publishes allowed to wait at once (sending, awaiting a confirm or backing off); more are refused. */
  maxPending?: number;
  /** How long one attempt may wait for the broker's confirm, buffering while disconnected included. */
  publishTimeoutMs?: number;
  /** Retries after the first attempt fails; then the publish throws. */
  maxRetries?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  heartbeatSeconds?: number;
  reconnectSeconds?: number;
}

export interface OutgoingMessage {
  /** Defaults to the topology's payment exchange. */
  exchange?: string;
  routingKey: string;
  /** Sent as is: the signature covers these exact bytes. */
  body: Buffer;
  /** Unique per event; a duplicate of the same event reuses it. */
  messageId: string;
  headers?: Record<string, string | number | boolean>;
  /** Overrides the signature computed from `body` and the secret (the simulator forges with it). */
  signature?: string;
  /** The message `type` property. */
  type?: string;
}

export type PublishFailure =
  /** The broker returned the message: no queue is bound for its routing key. */
  | 'UNROUTABLE'
  /** The broker refused the message (basic.nack). */
  | 'NACKED'
  /** The broker closed the channel, e.g. because the exchange does not exist. */
  | 'CHANNEL_CLOSED'
  /** No confirm within `publishTimeoutMs` (broker unreachable, blocked or slow). */
  | 'TIMEOUT'
  /** Too many publishes waiting already. */
  | 'OVERLOADED'
  /** The publisher is closing or closed. */
  | 'CLOSED'
  | 'UNKNOWN';

export class PublishError extends Error {
  override name = 'PublishError';
  constructor(
    message: string,
    readonly failure: PublishFailure,
    readonly retryable: boolean,
    readonly attempts = 1,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface ReturnedInfo {
  replyCode: number;
  replyText: string;
  exchange: string;
  routingKey: string;
}

const DEFAULTS = {
  appId: 'payrecon-payment-service',
  maxPending: 1_000,
  publishTimeoutMs: 10_000,
  maxRetries: 3,
  retryBaseMs: 200,
  retryMaxMs: 5_000,
  heartbeatSeconds: 5,
  reconnectSeconds: 1,
} as const;

export class PaymentEventPublisher {
  readonly topology: Topology;
  private readonly options: Required<Omit<PaymentEventPublisherOptions, 'logger' | 'url' | 'topology'>>;
  private readonly log: Logger;
  private readonly connection: AmqpConnectionManager;
  private readonly channel: ChannelWrapper;
  /** Every publish() not settled yet, including ones backing off between attempts. */
  private readonly pending = new Set<Promise<void>>();
  /** Attempts awaiting their confirm, per message id, so a return can be matched to them. */
  private readonly inFlight = new Map<string, number>();
  private readonly returned = new Map<string, ReturnedInfo[]>();
  /** Why the broker last closed the channel; explains the bare "channel closed" of the confirms. */
  private lastChannelError: Error | undefined;
  private recoveryTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private closed = false;
  private closePromise: Promise<void> | undefined;

  constructor(options: PaymentEventPublisherOptions) {
    this.topology = options.topology;
    this.log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'publisher' });
    this.options = {
      secret: options.secret,
      appId: options.appId ?? DEFAULTS.appId,
      maxPending: positive('maxPending', options.maxPending ?? DEFAULTS.maxPending),
      publishTimeoutMs: positive('publishTimeoutMs', options.publishTimeoutMs ?? DEFAULTS.publishTimeoutMs),
      maxRetries: nonNegative('maxRetries', options.maxRetries ?? DEFAULTS.maxRetries),
      retryBaseMs: positive('retryBaseMs', options.retryBaseMs ?? DEFAULTS.retryBaseMs),
      retryMaxMs: positive('retryMaxMs', options.retryMaxMs ?? DEFAULTS.retryMaxMs),
      heartbeatSeconds: positive('heartbeatSeconds', options.heartbeatSeconds ?? DEFAULTS.heartbeatSeconds),
      reconnectSeconds: positive('reconnectSeconds', options.reconnectSeconds ?? DEFAULTS.reconnectSeconds),
    };

    this.connection = new AmqpConnectionManagerClass(options.url, {
      heartbeatIntervalInSeconds: this.options.heartbeatSeconds,
      reconnectTimeInSeconds: this.options.reconnectSeconds,
    });
    this.connection.on('connect', ({ url }) =>
      this.log.info({ url: redactAmqpUrl(url) }, 'connected to RabbitMQ'),
    );
    this.connection.on('disconnect', ({ err }) =>
      this.log.warn({ err: err?.message }, 'disconnected from RabbitMQ; publishes wait for the reconnect'),
    );
    this.connection.on('connectFailed', ({ err, url }) =>
      this.log.warn({ err: err.message, url: redactAmqpUrl(url) }, 'cannot connect to RabbitMQ; retrying'),
    );
    this.connection.on('blocked', ({ reason }) =>
      this.log.warn({ reason }, 'RabbitMQ blocked the connection'),
    );
    this.connection.on('unblocked', () => this.log.info('RabbitMQ unblocked the connection'));

    this.channel = this.connection.createChannel({
      name: 'payment-event-publisher',
      confirm: true,
      setup: (channel: Channel) => this.setupChannel(channel),
    });
    // Without a listener an 'error' event would crash the process.
    this.channel.on('error', (err: Error) => this.log.error({ err: err.message }, 'publisher channel error'));
    this.connection.connect().catch(() => {
      // Reported by 'connectFailed'; amqp-connection-manager keeps retrying in the background.
    });
  }

  /** Resolves once the channel is connected and the topology declared; rejects after `timeoutMs`. */
  async waitForConnect(timeoutMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.channel.waitForConnect(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`RabbitMQ publisher channel not connected within ${timeoutMs}ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  isConnected(): boolean {
    return this.connection.isConnected();
  }

  /** Publishes not settled yet. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** Publishes a v1 "trade paid" notification, signed, with its own messageId. Validates it first. */
  publishTradePaid(notification: PaymentNoticeBody): Promise<void> {
    const checked = paymentNoticeSchema.safeParse(notification);
    if (!checked.success) {
      const detail = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      return Promise.reject(new TypeError(`not a valid v1 payment notification: ${detail}`));
    }
    return this.publish({
      routingKey: TRADE_PAID_ROUTING_KEY,
      body: Buffer.from(JSON.stringify(notification), 'utf8'),
      messageId: notification.messageId,
      type: 'trade.paid.v1',
    });
  }

  /** Publishes a v1 "trade refunded" notice, signed, with its own messageId. Validates it first. */
  publishTradeRefunded(notice: z.input<typeof refundNoticeSchema>): Promise<void> {
    const checked = refundNoticeSchema.safeParse(notice);
    if (!checked.success) {
      const detail = checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      return Promise.reject(new TypeError(`not a valid v1 refund notice: ${detail}`));
    }
    return this.publish({
      routingKey: REFUND_ROUTING_KEY,
      body: Buffer.from(JSON.stringify(notice), 'utf8'),
      messageId: notice.messageId,
      type: 'trade.refunded.v1',
    });
  }

  /**
   * Publishes one message and resolves once the broker confirmed it and routed it to at least one
   * queue. Rejects with a PublishError when it cannot be done within the retry budget.
   */
  publish(message: OutgoingMessage): Promise<void> {
    if (this.closing) {
      return Promise.reject(
        new PublishError(`publisher is closed; message ${message.messageId} was not sent`, 'CLOSED', false),
      );
    }
    if (this.pending.size >= this.options.maxPending) {
      return Promise.reject(
        new PublishError(
          `${this.pending.size} publishes are already waiting (limit ${this.options.maxPending}): RabbitMQ is unreachable or too slow; message ${message.messageId} was not sent`,
          'OVERLOADED',
          true,
        ),
      );
    }
    const task = this.publishWithRetry(message);
    this.pending.add(task);
    const untrack = () => this.pending.delete(task);
    task.then(untrack, untrack);
    return task;
  }

  /**
   * Stops accepting publishes, waits up to `timeoutMs` for the pending ones to be confirmed (or to
   * fail), then closes the channel and the connection. Whatever is still pending then is rejected.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    this.closePromise ??= this.shutdown(options.timeoutMs ?? this.options.publishTimeoutMs);
    return this.closePromise;
  }

  private async shutdown(timeoutMs: number): Promise<void> {
    this.closing = true;
    if (this.pending.size > 0) {
      this.log.info({ pending: this.pending.size }, 'waiting for pending publishes before closing');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        Promise.allSettled([...this.pending]).then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        this.log.error(
          { pending: this.pending.size },
          `publishes still pending after ${timeoutMs}ms; closing anyway, they are rejected`,
        );
      }
    }
    this.closed = true;
    clearTimeout(this.recoveryTimer);
    await this.channel.close().catch(() => {});
    await this.connection.close().catch(() => {});
  }

  private async setupChannel(channel: Channel): Promise<void> {
    this.lastChannelError = undefined;
    let closedByBroker = false;
    // The wrapper attaches no 'error' listener to the raw channel, and an unheard 'error' event throws.
    channel.on('error', (err: Error) => {
      closedByBroker = true;
      this.lastChannelError = err;
      this.log.error({ err: err.message }, 'RabbitMQ closed the publisher channel');
    });
    channel.on('close', () => {
      // amqp-connection-manager reopens a channel only when the connection comes back, so a channel the
      // broker closed on its own (e.g. a publish to a missing exchange) needs a forced reconnect.
      if (closedByBroker && !this.closed) this.scheduleRecovery();
    });
    channel.on('return', (msg: Message) => this.onReturn(msg));
    // The parking queue on a channel of its own: its node being down must not stop payment events.
    await declareTopology(channel, this.topology, {
      sideChannel: async () => {
        const open = this.connection.connection;
        if (!open) throw new Error('RabbitMQ connection closed while declaring the topology');
        return open.createChannel();
      },
    });
  }

  private scheduleRecovery(): void {
    if (this.recoveryTimer) return;
    const delayMs = this.options.reconnectSeconds * 1000;
    this.log.warn({ delayMs }, 'reopening the publisher channel');
    this.recoveryTimer = setTimeout(() => {
      this.recoveryTimer = undefined;
      if (this.closed) return;
      try {
        this.connection.reconnect();
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'cannot reconnect the publisher');
      }
    }, delayMs);
  }

  private onReturn(msg: Message): void {
    const messageId = msg.properties.messageId;
    const fields = msg.fields as unknown as Partial<ReturnedInfo>;
    const info: ReturnedInfo = {
      replyCode: fields.replyCode ?? 0,
      replyText: fields.replyText ?? 'unknown',
      exchange: fields.exchange ?? '',
      routingKey: fields.routingKey ?? '',
    };
    if (typeof messageId !== 'string' || !this.inFlight.has(messageId)) {
      this.log.warn({ messageId, ...info }, 'broker returned a message no publish is waiting for');
      return;
    }
    const list = this.returned.get(messageId) ?? [];
    list.push(info);
    this.returned.set(messageId, list);
  }

  private async publishWithRetry(message: OutgoingMessage): Promise<void> {
    const exchange = message.exchange ?? this.topology.paymentExchange;
    const where = `exchange "${exchange}", routing key "${message.routingKey}"`;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.publishOnce(exchange, message);
        if (attempt > 1) this.log.info({ messageId: message.messageId, attempt }, 'published after retrying');
        return;
      } catch (raw) {
        const error = raw instanceof PublishError ? raw : this.explain(raw, message.messageId, where);
        const giveUp = !error.retryable || attempt > this.options.maxRetries || this.closed;
        if (giveUp) {
          const tries = attempt === 1 ? '' : ` after ${attempt} attempts`;
          throw new PublishError(
            `could not publish message ${message.messageId} (${where})${tries}: ${error.message}`,
            error.failure,
            error.retryable,
            attempt,
            { cause: error },
          );
        }
        const delayMs = backoff(attempt, this.options.retryBaseMs, this.options.retryMaxMs);
        this.log.warn(
          { messageId: message.messageId, attempt, delayMs, failure: error.failure, err: error.message },
          'publish failed; retrying',
        );
        await sleep(delayMs);
      }
    }
  }

  private async publishOnce(exchange: string, message: OutgoingMessage): Promise<void> {
    const { messageId } = message;
    this.inFlight.set(messageId, (this.inFlight.get(messageId) ?? 0) + 1);
    try {
      await this.channel.publish(exchange, message.routingKey, message.body, {
        persistent: true,
        mandatory: true,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        messageId,
        type: message.type,
        appId: this.options.appId,
        timestamp: Math.floor(Date.now() / 1000),
        headers: {
          ...message.headers,
          [SIGNATURE_HEADER]: message.signature ?? signBody(message.body, this.options.secret),
        },
        timeout: this.options.publishTimeoutMs,
      });
      // The broker sends basic.return before the basic.ack of the same message, so it is known here.
      const returned = this.returned.get(messageId)?.shift();
      if (returned) {
        throw new PublishError(
          `the broker returned it as unroutable (${returned.replyCode} ${returned.replyText}): no queue is bound to exchange "${returned.exchange}" for routing key "${returned.routingKey}"`,
          'UNROUTABLE',
          false,
        );
      }
    } finally {
      const left = (this.inFlight.get(messageId) ?? 1) - 1;
      if (left > 0) {
        this.inFlight.set(messageId, left);
      } else {
        this.inFlight.delete(messageId);
        this.returned.delete(messageId);
      }
    }
  }

  /** Turns amqp-connection-manager's and amqplib's terse errors into ones that say what happened. */
  private explain(raw: unknown, messageId: string, where: string): PublishError {
    const err = raw instanceof Error ? raw : new Error(String(raw));
    switch (err.message) {
      case 'timeout':
        return new PublishError(
          `no confirm from RabbitMQ within ${this.options.publishTimeoutMs}ms (broker unreachable, blocked or slow)`,
          'TIMEOUT',
          true,
          1,
          { cause: err },
        );
      case 'message nacked':
        return new PublishError(`RabbitMQ refused message ${messageId} (basic.nack)`, 'NACKED', true, 1, {
          cause: err,
        });
      case 'channel closed': {
        const why = this.lastChannelError?.message ?? 'the channel closed before the confirm arrived';
        return new PublishError(
          `the broker closed the channel (${why}) [${where}]`,
          'CHANNEL_CLOSED',
          true,
          1,
          {
            cause: err,
          },
        );
      }
      case 'Channel closed':
        // ChannelWrapper.close() rejects whatever it still holds.
        return new PublishError(
          'the publisher was closed before the broker confirmed it',
          'CLOSED',
          false,
          1,
          {
            cause: err,
          },
        );
      default:
        return new PublishError(err.message, 'UNKNOWN', true, 1, { cause: err });
    }
  }
}

/** Exponential backoff with ±20% jitter: base, 2×base, 4×base, ... capped at max. */
export function backoff(attempt: number, baseMs: number, maxMs: number): number {
  const exp = Math.min(maxMs, baseMs * 2 ** (attempt - 1));
  return Math.round(exp * (0.8 + Math.random() * 0.4));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function positive(name: string, value: number): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}

function nonNegative(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`${name} must be a whole number >= 0, got ${value}`);
  return value;
}

function redactAmqpUrl(url: unknown): string {
  return typeof url === 'string' ? redactUrl(url) : '(options object)';
}
