import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { type PaymentNoticeBody, signBody } from '../../src/mq/notification';
import type { PaymentEventPublisher } from '../../src/mq/publisher';
import { REFUND_ROUTING_KEY, TRADE_PAID_ROUTING_KEY } from '../../src/mq/topology';
import type { Corruption, NotificationPlan } from './faults';
import type { Refund } from './refunds';
import type { Trade } from './trades';

/** The v1 "trade paid" notification of a paid trade. */
export function buildTradePaidNotification(
  trade: Trade,
  messageId: string = randomUUID(),
): PaymentNoticeBody {
  if (trade.status !== 'TRADE_SUCCESS' || trade.paidAt === null || trade.paidAmount === null) {
    throw new Error(`trade ${trade.tradeNo} of order ${trade.orderId} is ${trade.status}, not paid`);
  }
  return {
    version: 1,
    messageId,
    orderId: trade.orderId,
    tradeNo: trade.tradeNo,
    status: 'TRADE_SUCCESS',
    amount: trade.paidAmount,
    currency: trade.currency,
    paidAt: trade.paidAt.toISOString(),
  };
}

/** The v1 "trade refunded" notification of a refund that ended (REFUND_SUCCESS or REFUND_FAILED). */
export interface RefundNoticeBody {
  version: 1;
  messageId: string;
  orderId: string;
  outRequestNo: string;
  refundNo: string;
  status: 'REFUND_SUCCESS' | 'REFUND_FAILED';
  amount: number;
  currency: string;
  /** ISO instant the refund ended. */
  refundedAt: string;
}

export function buildRefundNotification(refund: Refund, messageId: string = randomUUID()): RefundNoticeBody {
  if (refund.status === 'PROCESSING' || refund.settledAt === null) {
    throw new Error(`refund ${refund.refundNo} of order ${refund.orderId} is still PROCESSING`);
  }
  return {
    version: 1,
    messageId,
    orderId: refund.orderId,
    outRequestNo: refund.outRequestNo,
    refundNo: refund.refundNo,
    status: refund.status === 'SUCCESS' ? 'REFUND_SUCCESS' : 'REFUND_FAILED',
    amount: refund.amount,
    currency: refund.currency,
    refundedAt: refund.settledAt.toISOString(),
  };
}

/** A refund notification's body bytes, or a corrupted version (`schema`: no refundNo, text amount, unknown status). */
export function encodeRefundNotification(notification: RefundNoticeBody, corrupt: Corruption | null): Buffer {
  const json = JSON.stringify(notification);
  if (corrupt === 'json') return Buffer.from(json.slice(0, Math.floor(json.length / 2)), 'utf8');
  if (corrupt === 'schema') {
    const { refundNo: _dropped, ...rest } = notification;
    return Buffer.from(
      JSON.stringify({ ...rest, amount: (notification.amount / 100).toFixed(2), status: 'REFUNDED' }),
      'utf8',
    );
  }
  return Buffer.from(json, 'utf8');
}

/** The body bytes: the JSON of the notification, or a corrupted version of it. */
export function encodeNotification(notification: PaymentNoticeBody, corrupt: Corruption | null): Buffer {
  const json = JSON.stringify(notification);
  if (corrupt === 'json') {
    // Cut off mid-document: not JSON at all.
    return Buffer.from(json.slice(0, Math.floor(json.length / 2)), 'utf8');
  }
  if (corrupt === 'schema') {
    // Valid JSON a v1 consumer must refuse: a float amount as text, no trade number, an unknown status.
    const { tradeNo: _dropped, ...rest } = notification;
    return Buffer.from(
      JSON.stringify({ ...rest, amount: (notification.amount / 100).toFixed(2), status: 'PAID' }),
      'utf8',
    );
  }
  return Buffer.from(json, 'utf8');
}

export interface NotificationOutcome {
  messageId: string;
  /** `scheduled`: will be published after `delayMs`. */
  outcome: 'published' | 'dropped' | 'scheduled';
  copies: number;
  delayMs: number;
  corrupt: Corruption | null;
  forged: boolean;
  amount: number;
}

interface Delayed {
  timer: NodeJS.Timeout;
  send: () => Promise<void>;
}

/**
 * Sends a paid trade's (or an ended refund's) notification through the publisher as its fault plan says: not at all,
 * several times with the same messageId, later, with a corrupted body or a forged signature.
 */
export class NotificationSender {
  private readonly delayed = new Set<Delayed>();

  constructor(
    private readonly publisher: PaymentEventPublisher,
    private readonly logger: Logger,
  ) {}

  /** Resolves once every copy is confirmed by the broker (or at once when dropped or delayed). */
  send(trade: Trade, plan: NotificationPlan): Promise<NotificationOutcome> {
    const notification = buildTradePaidNotification(trade);
    return this.dispatch(
      {
        orderId: trade.orderId,
        messageId: notification.messageId,
        amount: notification.amount,
        body: encodeNotification(notification, plan.corrupt),
        routingKey: TRADE_PAID_ROUTING_KEY,
        type: 'trade.paid.v1',
      },
      plan,
    );
  }

  /** The `trade.refunded` notification of a refund that ended, as its fault plan says. */
  sendRefund(refund: Refund, plan: NotificationPlan): Promise<NotificationOutcome> {
    const notification = buildRefundNotification(refund);
    return this.dispatch(
      {
        orderId: refund.orderId,
        messageId: notification.messageId,
        amount: notification.amount,
        body: encodeRefundNotification(notification, plan.corrupt),
        routingKey: REFUND_ROUTING_KEY,
        type: 'trade.refunded.v1',
      },
      plan,
    );
  }

  private async dispatch(
    message: {
      orderId: string;
      messageId: string;
      amount: number;
      body: Buffer;
      routingKey: string;
      type: string;
    },
    plan: NotificationPlan,
  ): Promise<NotificationOutcome> {
    const { body, messageId } = message;
    // A forged signature: well-formed, made with a secret the consumer does not know.
    const signature = plan.forge ? signBody(body, `forged-${randomBytes(16).toString('hex')}`) : undefined;
    const outcome: NotificationOutcome = {
      messageId,
      outcome: 'published',
      copies: plan.drop ? 0 : plan.copies,
      delayMs: plan.drop ? 0 : plan.delayMs,
      corrupt: plan.corrupt,
      forged: plan.forge,
      amount: message.amount,
    };
    const log = this.logger.child({ orderId: message.orderId, messageId, routingKey: message.routingKey });

    if (plan.drop) {
      log.info('fault: notification dropped');
      return { ...outcome, outcome: 'dropped' };
    }
    const sendCopies = async () => {
      for (let copy = 1; copy <= plan.copies; copy++) {
        await this.publisher.publish({
          routingKey: message.routingKey,
          body,
          messageId,
          signature,
          type: message.type,
        });
      }
      log.info({ copies: plan.copies, corrupt: plan.corrupt, forged: plan.forge }, 'notification published');
    };
    if (plan.delayMs > 0) {
      this.schedule(plan.delayMs, sendCopies, log);
      log.info({ delayMs: plan.delayMs }, 'fault: notification delayed');
      return { ...outcome, outcome: 'scheduled' };
    }
    await sendCopies();
    return outcome;
  }

  /** Notifications still waiting for their delay. */
  get delayedCount(): number {
    return this.delayed.size;
  }

  /** Publishes every delayed notification now (at shutdown: late rather than lost). */
  async flushDelayed(): Promise<void> {
    const pending = [...this.delayed];
    this.delayed.clear();
    for (const entry of pending) clearTimeout(entry.timer);
    if (pending.length > 0)
      this.logger.info({ count: pending.length }, 'publishing delayed notifications now');
    await Promise.allSettled(pending.map((entry) => entry.send()));
  }

  private schedule(delayMs: number, sendCopies: () => Promise<void>, log: Logger): void {
    const send = () =>
      sendCopies().catch((err: Error) =>
        log.error({ err: err.message }, 'delayed notification could not be published'),
      );
    const entry: Delayed = {
      timer: setTimeout(() => {
        this.delayed.delete(entry);
        void send();
      }, delayMs),
      send,
    };
    this.delayed.add(entry);
  }
}
