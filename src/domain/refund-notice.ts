import type { PaymentEventSource } from './order';

/**
 * A "trade refunded" notice: the provider's asynchronous answer to a refund request, the one type of
 * this message from the wire (routing key `trade.refunded`) to the refund workflow's signal.
 */
export interface RefundNotice {
  messageId: string;
  orderId: string;
  source: Exclude<PaymentEventSource, 'poll'>;
  /** payrecon's idempotency key of the request (refunds.out_request_no). */
  outRequestNo: string;
  refundNo: string;
  status: 'REFUND_SUCCESS' | 'REFUND_FAILED';
  /** Minor units. */
  amount: number;
  currency: string;
  /** ISO instant. */
  refundedAt: string;
}
