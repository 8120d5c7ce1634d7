import type { Readable } from 'node:stream';
import type { RefundSnapshot, TradeSnapshot } from '../domain';
import type { StatementEntry } from './statement';
import type { StatementFormat, StatementLocation } from './statement-format';

/** What payrecon asks the provider to open for an order. */
export interface TradeRequest {
  orderId: string;
  /** Minor units. */
  amount: number;
  currency: string;
}

/**
 * The only way payrecon talks to a payment provider. The simulator's HTTP API implements it
 * (./http.ts); a real provider's adapter implements the same calls and throws the same two errors.
 */
export interface PaymentGateway {
  /** Opens (idempotently) the trade the buyer will pay; the snapshot carries the provider's trade number. */
  openTrade(request: TradeRequest): Promise<TradeSnapshot>;
  /** The trade's status; `NOT_FOUND` when the buyer never reached the pay page. */
  queryTrade(orderId: string): Promise<TradeSnapshot>;
  /**
   * Closes an unpaid trade. A trade that was paid meanwhile stays paid, and the snapshot says so; a trade
   * the provider never opened answers `NOT_FOUND`: there is nothing to close.
   */
  closeTrade(orderId: string): Promise<TradeSnapshot>;
  /**
   * Asks for a refund, idempotent by `outRequestNo`: the same request again returns the same refund and
   * never refunds twice. TRADE_FINISHED (past its refund window) refuses: a ProviderReplyError.
   */
  submitRefund(request: RefundRequest): Promise<RefundSnapshot>;
  /** A refund's status by its `outRequestNo`. */
  queryRefund(orderId: string, outRequestNo: string): Promise<RefundSnapshot>;
  /**
   * Where the day's statement (YYYY-MM-DD, the provider's calendar day) can be downloaded, for a short
   * time: download it at once. StatementNotReadyError before the provider has it (T+1).
   */
  statementLocation(billDate: string): Promise<StatementLocation>;
  /** The file behind a location, streamed; StatementUrlExpiredError once its time is up (ask again). */
  downloadStatement(location: StatementLocation): Promise<Readable>;
  /** Reads a downloaded file in this provider's statement format. */
  readStatement(file: Readable, format: StatementFormat): AsyncIterable<StatementEntry>;
}

export interface RefundRequest {
  orderId: string;
  outRequestNo: string;
  /** Minor units. */
  amount: number;
  reason: string | null;
}

/** The provider could not be reached or failed in a way that may pass (timeouts, 5xx, refused): retry. */
export class ProviderUnavailableError extends Error {
  override name = 'ProviderUnavailableError';
}

/**
 * The provider answered something payrecon cannot read (an unknown trade status, a malformed body, a
 * request it refuses): asking again gets the same answer, so it is not retried.
 */
export class ProviderReplyError extends Error {
  override name = 'ProviderReplyError';
}

/** The day's statement is not out yet (bills come T+1): ask again later. */
export class StatementNotReadyError extends ProviderUnavailableError {
  override name = 'StatementNotReadyError';
}

/** The download URL's time is up (30 s at Alipay): ask for a new one and download at once. */
export class StatementUrlExpiredError extends ProviderUnavailableError {
  override name = 'StatementUrlExpiredError';
}
