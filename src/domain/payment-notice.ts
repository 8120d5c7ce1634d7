import { type NoticeClaim, noticeMismatches } from './discrepancy';
import type { PaymentEventSource } from './order';
import type { TradeStatus } from './trade';

/**
 * A "trade paid" notice: the one type of this message from the wire (src/mq/notification.ts parses and
 * encodes it) through the consumer or the operator CLI (src/order/deliver-notice.ts) to the order
 * workflow's signal and the payment_events row.
 */
export interface PaymentNotice {
  messageId: string;
  orderId: string;
  /**
   * mq: the payment service's signed message (set by the consumer, never read from the wire); manual:
   * an operator's `payrecon signal notify`; reconciliation: a row of the provider's daily statement.
   */
  source: Exclude<PaymentEventSource, 'poll'>;
  tradeNo: string;
  status: TradeStatus;
  /** Minor units (fen, cents). */
  amount: number;
  currency: string;
  /** ISO instant. */
  paidAt: string;
}

/**
 * Why a paid notice must be checked with the provider (one trade query) before it changes an order;
 * empty when it may pay at once. The trust rule: only the provider's own signed MQ channel may pay
 * without a query, and only when it names the trade payrecon opened and the money due (and
 * `verifyNotices` is not `always`). An operator's notice or a statement row is a claim, always checked.
 */
export function noticeChecks(
  order: {
    tradeNo?: string | null;
    amount: number;
    currency: string;
    verifyNotices?: 'always' | 'on-mismatch';
  },
  notice: NoticeClaim & Pick<PaymentNotice, 'source'>,
): string[] {
  if (notice.source !== 'mq') return [`${notice.source} notice`];
  if (order.verifyNotices === 'always') return ['always'];
  return noticeMismatches(order, notice);
}
