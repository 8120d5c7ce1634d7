/** The provider's side: trade statuses as common Chinese payment APIs name them. Pure. */

export const TRADE_STATUSES = ['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED'] as const;
export type TradeStatus = (typeof TRADE_STATUSES)[number];
/** A status query can also find no trade at all: the buyer never reached the pay page. */
export type TradeLookupStatus = TradeStatus | 'NOT_FOUND';

/** TRADE_FINISHED is a paid trade past its refund window: paid all the same. */
export const PAID_TRADE_STATUSES = [
  'TRADE_SUCCESS',
  'TRADE_FINISHED',
] as const satisfies readonly TradeStatus[];
export type PaidTradeStatus = (typeof PAID_TRADE_STATUSES)[number];

export function isPaidTradeStatus(status: TradeLookupStatus): boolean {
  return (PAID_TRADE_STATUSES as readonly string[]).includes(status);
}

export function isTradeStatus(value: unknown): value is TradeStatus {
  return typeof value === 'string' && (TRADE_STATUSES as readonly string[]).includes(value);
}

/** What the provider knows about the trade behind one order (a status query's or a close's answer). */
export interface TradeSnapshot {
  orderId: string;
  status: TradeLookupStatus;
  tradeNo: string | null;
  /** What the buyer paid, in minor units; null while unpaid or unknown. */
  amount: number | null;
  currency: string | null;
  paidAt: string | null;
  /**
   * What the provider refunded on the trade, when it says. A fully refunded trade reports TRADE_CLOSED at
   * Alipay-like providers, like a trade closed unpaid: a refunded amount tells the two apart.
   */
  refundedAmount?: number | null;
  /**
   * What the buyer scans or opens to pay, when the provider hands one out on opening the trade (Alipay's
   * precreate QR code); the shop shows it.
   */
  payCode?: string | null;
}

/** The trade was paid, whatever happened after: paid, paid past its refund window, or refunded. */
export function wasPaid(snapshot: Pick<TradeSnapshot, 'status' | 'refundedAmount'>): boolean {
  return (
    isPaidTradeStatus(snapshot.status) ||
    (snapshot.status === 'TRADE_CLOSED' && (snapshot.refundedAmount ?? 0) > 0)
  );
}

export const REFUND_STATUSES = ['PROCESSING', 'SUCCESS', 'FAILED'] as const;
/** What the provider says of a refund request (by its out_request_no); NOT_FOUND: it never got it. */
export type RefundLookupStatus = (typeof REFUND_STATUSES)[number] | 'NOT_FOUND';

export interface RefundSnapshot {
  outRequestNo: string;
  status: RefundLookupStatus;
  refundNo: string | null;
  amount: number | null;
  /** Why the provider refused, for FAILED. */
  failureReason: string | null;
}
