import type { TradeLookupStatus } from '../domain/index';

/** What the provider knows about the trade behind one order. */
export interface TradeSnapshot {
  orderId: string;
  status: TradeLookupStatus;
  tradeNo: string | null;
  /** What the buyer paid, in minor units; null while unpaid or unknown. */
  amount: number | null;
  currency: string | null;
  paidAt: string | null;
}

/**
 * The only way payrecon talks to a payment provider. The simulator's HTTP API implements it
 * (./http.ts); a real provider's adapter implements the same two calls.
 */
export interface PaymentGateway {
  /** The trade's status; `NOT_FOUND` when the buyer never reached the pay page. */
  queryTrade(orderId: string): Promise<TradeSnapshot>;
  /** Closes an unpaid trade. A trade that was paid meanwhile stays paid, and the snapshot says so. */
  closeTrade(orderId: string): Promise<TradeSnapshot>;
}

/** The provider answered, but with an error that may pass (timeouts, 5xx, connection refused). */
export class ProviderUnavailableError extends Error {
  override name = 'ProviderUnavailableError';
}
