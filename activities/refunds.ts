import type { Database } from '../src/db/client';
import * as orders from '../src/db/orders';
import * as refunds from '../src/db/refunds';
import type { RefundNotice, SettledBy } from '../src/domain';
import type { PayreconMetrics } from '../src/platform/metrics';

/** The refund workflow's database writes: one conditional write (or one transaction) each, idempotent. */
export function createRefundActivities(db: Database, metrics: PayreconMetrics) {
  return {
    /** The provider refunded: the refund and the order change together (src/db/refunds.ts). */
    async applyRefund(input: {
      refundId: string;
      settledBy: SettledBy;
      providerRefundNo: string | null;
    }): Promise<refunds.RefundResult> {
      const result = await refunds.applyRefund(db, input);
      if (result.changed && result.orderStatus) metrics.settled(input.settledBy, result.orderStatus);
      return result;
    },

    /** Appends a refund notice to payment_events; false if its message id was recorded before. */
    async recordRefundNotice(notice: RefundNotice): Promise<boolean> {
      return orders.recordRefundNotice(db, notice);
    },

    async failRefund(input: { refundId: string; reason: string }): Promise<boolean> {
      return refunds.failRefund(db, input);
    },

    async markRefundUnconfirmed(refundId: string): Promise<void> {
      // Counted once: a re-run after a lost reply finds the refund UNKNOWN already and records nothing.
      if (await refunds.markRefundUnconfirmed(db, refundId)) metrics.discrepancy('REFUND_UNCONFIRMED');
    },
  };
}
