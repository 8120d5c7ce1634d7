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
  /** mq: the payment service's message; manual: an operator's `payrecon signal notify`. */
  source: Exclude<PaymentEventSource, 'poll'>;
  tradeNo: string;
  status: TradeStatus;
  /** Minor units (fen, cents). */
  amount: number;
  currency: string;
  /** ISO instant. */
  paidAt: string;
}
