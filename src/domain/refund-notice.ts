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

/** What payrecon knows of the refund a notice names: its order, its amount, the provider's refund number. */
export interface RefundRecord {
  orderId: string;
  amount: number;
  /** From the provider's answer to the request; null until it gave one. */
  refundNo: string | null;
}

/**
 * Where a signed refund notice differs from the refund it names. Any difference means the notice is
 * checked with the provider before it settles anything: the signature proves who sent it, not what the
 * provider did with this refund.
 */
export function refundNoticeMismatches(refund: RefundRecord, notice: RefundNotice): string[] {
  const fields: string[] = [];
  if (notice.orderId !== refund.orderId) fields.push('orderId');
  if (notice.amount !== refund.amount) fields.push('amount');
  if (refund.refundNo !== null && notice.refundNo !== refund.refundNo) fields.push('refundNo');
  return fields;
}

/** Where the provider's own answer contradicts a refund notice: another outcome, refund number or amount. */
export function refundNoticeContradictions(
  provider: { status: string; refundNo: string | null; amount: number | null },
  notice: RefundNotice,
): string[] {
  const outcome = notice.status === 'REFUND_SUCCESS' ? 'SUCCESS' : 'FAILED';
  const fields: string[] = [];
  if (provider.status !== outcome) fields.push('status');
  if (provider.refundNo !== notice.refundNo) fields.push('refundNo');
  if (provider.amount !== notice.amount) fields.push('amount');
  return fields;
}
