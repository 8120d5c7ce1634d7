import type { Logger } from 'pino';
import type { Database } from '../../src/db/client';
import { type FaultStore, planNotification, type Random, type RefundFaults } from './faults';
import type { NotificationOutcome, NotificationSender } from './notify';
import { dueRefunds, type Refund, type RefundInput, requestRefund, settleRefund } from './refunds';
import { getTrade } from './trades';

/** What a refund request or settlement did: the refund, and its notification when it ended just now. */
export interface RefundResult {
  /** false: this out_request_no was known already; nothing was done again. */
  created: boolean;
  refund: Refund;
  /** The `trade.refunded` notification, when the refund ended in this call. */
  notification: NotificationOutcome | null;
}

/** The refund ended but its notification could not be published (the broker refused or is down). */
export class RefundNoticeError extends Error {
  override name = 'RefundNoticeError';
  constructor(
    readonly refund: Refund,
    cause: unknown,
  ) {
    super(
      `refund ${refund.outRequestNo} of order ${refund.orderId} is ${refund.status}, but its notification could not be published: ${(cause as Error).message}`,
      { cause },
    );
  }
}

/**
 * Runs the simulator's refunds: accepts requests (./refunds.ts), ends them at once or after their
 * `processingMs` (a timer in this process; a refund whose timer was lost with a restart ends when its
 * order is next asked about), and publishes each ended refund's `trade.refunded` notification through
 * the NotificationSender with the fault plan of paid notifications (drop, duplicate, delay, corrupt,
 * forge: the refund's knobs, then the global rates).
 */
export class RefundProcessor {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly deps: {
      db: Database;
      sender: NotificationSender;
      faults: FaultStore;
      logger: Logger;
      random?: Random;
    },
  ) {}

  /**
   * Accepts (or finds again) a refund request. The refund's knobs are the trade's `faults.refund` with
   * the request's on top. Null when the order has no trade; RefundRefusedError when refused;
   * RefundNoticeError when it ended at once but the notification failed.
   */
  async request(input: RefundInput): Promise<RefundResult | null> {
    const { db } = this.deps;
    const trade = await getTrade(db, input.orderId);
    if (!trade) return null;
    const faults: RefundFaults = { ...trade.faults.refund, ...input.faults };
    const accepted = await requestRefund(db, { ...input, faults });
    if (!accepted) return null;
    const { refund } = accepted;
    const log = this.deps.logger.child({ orderId: refund.orderId, outRequestNo: refund.outRequestNo });
    if (!accepted.created) {
      log.info({ status: refund.status }, 'refund requested again: the same refund, nothing done');
      if (refund.status === 'PROCESSING' && refund.settleAt.getTime() <= Date.now()) {
        const settled = await this.settle(refund.refundNo);
        return {
          created: false,
          refund: settled?.refund ?? refund,
          notification: settled?.notification ?? null,
        };
      }
      return { created: false, refund, notification: null };
    }
    log.info({ refundNo: refund.refundNo, amount: refund.amount, faults }, 'refund accepted');
    const waitMs = refund.settleAt.getTime() - Date.now();
    if (waitMs > 0) {
      this.schedule(refund.refundNo, waitMs, log);
      return { created: true, refund, notification: null };
    }
    const settled = await this.settle(refund.refundNo);
    return { created: true, refund: settled?.refund ?? refund, notification: settled?.notification ?? null };
  }

  /**
   * Ends the refund if it is still PROCESSING and publishes its notification; `notification: null` when
   * it had ended already. Throws RefundNoticeError when the refund ended but the notice failed.
   */
  async settle(
    refundNo: string,
  ): Promise<{ refund: Refund; notification: NotificationOutcome | null } | null> {
    this.cancel(refundNo);
    const result = await settleRefund(this.deps.db, refundNo);
    if (!result) return null;
    const { refund } = result;
    if (!result.changed) return { refund, notification: null };
    this.deps.logger.info(
      { orderId: refund.orderId, outRequestNo: refund.outRequestNo, status: refund.status },
      refund.status === 'SUCCESS' ? 'refund succeeded' : 'refund failed',
    );
    const plan = planNotification(
      refund.amount,
      {
        drop: refund.faults.drop,
        duplicate: refund.faults.duplicate,
        delayMs: refund.faults.delayMs,
        corrupt: refund.faults.corrupt,
        forge: refund.faults.forge,
      },
      this.deps.faults.get(),
      this.deps.random,
    );
    try {
      return { refund, notification: await this.deps.sender.sendRefund(refund, plan) };
    } catch (error) {
      throw new RefundNoticeError(refund, error);
    }
  }

  /** Ends the order's PROCESSING refunds whose time has passed (their timer was lost with a restart). */
  async settleDue(orderId: string): Promise<void> {
    for (const refundNo of await dueRefunds(this.deps.db, orderId)) {
      try {
        await this.settle(refundNo);
      } catch (error) {
        this.deps.logger.error(
          { orderId, refundNo, err: (error as Error).message },
          'could not end a due refund',
        );
      }
    }
  }

  /** Refunds waiting for their processing time in this process. */
  get processingCount(): number {
    return this.timers.size;
  }

  /** Stops the timers; the refunds stay PROCESSING in the database and end when next asked about. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  private schedule(refundNo: string, waitMs: number, log: Logger): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(refundNo);
      this.settle(refundNo).catch((error: Error) =>
        log.error({ err: error.message }, 'refund ended, but not as it should have'),
      );
    }, waitMs);
    this.timers.set(refundNo, timer);
  }

  private cancel(refundNo: string): void {
    const timer = this.timers.get(refundNo);
    if (timer) {
      clearTimeout(timer);
      this.timers.delete(refundNo);
    }
  }
}
