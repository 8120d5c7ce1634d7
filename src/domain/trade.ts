/** The provider's side: trade statuses as common Chinese payment APIs name them. Pure. */

export const TRADE_STATUSES = ['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED'] as const;
export type TradeStatus = (typeof TRADE_STATUSES)[number];
/** A status query can also find no trade at all: the buyer never reached the pay page. */
export type TradeLookupStatus = TradeStatus | 'NOT_FOUND';

/** TRADE_FINISHED is a paid trade past its refund window: paid all the same. */
export function isPaidTradeStatus(status: TradeLookupStatus): boolean {
  return status === 'TRADE_SUCCESS' || status === 'TRADE_FINISHED';
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
}
