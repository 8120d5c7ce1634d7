import type { Database } from '../src/db/client';
import * as orders from '../src/db/orders';
import type {
  DiscrepancyKind,
  PaymentNotice,
  SettledBy,
  TradeSnapshot,
  TransitionResult,
} from '../src/domain';
import type { PayreconMetrics } from '../src/platform/metrics';

/**
 * The order workflow's database writes, one write (or one transaction) each. Every one is idempotent
 * (conditional update or insert-on-conflict-do-nothing), so Temporal's at-least-once execution can
 * never settle an order twice. The workflow runs them as local activities.
 */
export function createOrderActivities(db: Database, metrics: PayreconMetrics) {
  const counted = (path: SettledBy, result: TransitionResult) => {
    if (result.changed && result.status) metrics.settled(path, result.status);
    return result;
  };

  return {
    /** Appends a notice to payment_events; false if this message id was recorded before. */
    async recordPaymentNotice(notice: PaymentNotice): Promise<boolean> {
      return orders.recordPaymentNotice(db, notice);
    },

    /** Appends the provider's answer to a status query or a close to payment_events. */
    async recordTradeSnapshot(snapshot: TradeSnapshot): Promise<void> {
      await orders.recordTradeSnapshot(db, snapshot);
    },

    async markOrderPaid(input: {
      orderId: string;
      tradeNo: string;
      paidAt: string;
      settledBy: SettledBy;
    }): Promise<TransitionResult> {
      return counted(
        input.settledBy,
        await orders.markOrderPaid(db, { ...input, paidAt: new Date(input.paidAt) }),
      );
    },

    /** A matching paid notice recorded and the order paid, in one transaction (the MQ path's usual case). */
    async markOrderPaidByNotice(input: {
      notice: PaymentNotice;
      settledBy: SettledBy;
    }): Promise<TransitionResult> {
      return counted(input.settledBy, await orders.markOrderPaidByNotice(db, input));
    },

    async closeOrder(input: {
      orderId: string;
      reason: string;
      settledBy: SettledBy;
    }): Promise<TransitionResult> {
      return counted(input.settledBy, await orders.closeOrder(db, input));
    },

    /** The order waits for an operator, with the discrepancy that says why (one transaction). */
    async holdOrderForReview(input: {
      orderId: string;
      tradeNo: string | null;
      settledBy: SettledBy;
      kind: DiscrepancyKind;
      details: Record<string, unknown>;
    }): Promise<TransitionResult> {
      const result = await orders.holdOrderForReview(db, input);
      if (result.changed) metrics.discrepancy(input.kind);
      return counted(input.settledBy, result);
    },

    /** An operator's decision on an order held for review (conditional on NEEDS_REVIEW). */
    async resolveReview(input: Parameters<typeof orders.resolveReview>[1]): Promise<TransitionResult> {
      return counted('manual', await orders.resolveReview(db, input));
    },

    /** A new row per order, kind and subject (the trade, refund or notice it is about); true if new. */
    async recordDiscrepancy(input: orders.NewDiscrepancy): Promise<boolean> {
      const isNew = await orders.recordDiscrepancy(db, input);
      if (isNew) metrics.discrepancy(input.kind);
      return isNew;
    },
  };
}
