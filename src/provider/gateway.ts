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
   * never refunds twice. A refusal the provider documents (TRADE_FINISHED: past its refund window) is a
   * ProviderRefusedError; any other answer that cannot be read is a ProviderReplyError, and says nothing
   * about whether the provider took the refund.
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

/**
 * The refusal codes of a refund request: the provider answered that it did not take the refund, and
 * will not for this request (a trade not paid, past its refund window, closed, or not enough left).
 * Only these end a refund FAILED at submission; any other failed answer is ambiguous.
 */
export const REFUND_REFUSAL_CODES = [
  'TRADE_NOT_PAID',
  'TRADE_FINISHED',
  'TRADE_CLOSED',
  'REFUND_AMOUNT_EXCEEDED',
] as const;
export type RefundRefusalCode = (typeof REFUND_REFUSAL_CODES)[number];

export function isRefundRefusalCode(code: unknown): code is RefundRefusalCode {
  return (REFUND_REFUSAL_CODES as readonly unknown[]).includes(code);
}

/**
 * The provider refused the request explicitly, with a refusal code payrecon knows: nothing was done.
 * Unlike a ProviderReplyError (an answer payrecon cannot read, which may hide a refund the provider
 * executed), this one may settle a refund FAILED.
 */
export class ProviderRefusedError extends Error {
  override name = 'ProviderRefusedError';
  constructor(
    readonly code: RefundRefusalCode,
    message: string,
  ) {
    super(message);
  }
}

/** The day's statement is not out yet (bills come T+1): ask again later. */
export class StatementNotReadyError extends ProviderUnavailableError {
  override name = 'StatementNotReadyError';
}

/** The download URL's time is up (30 s at Alipay): ask for a new one and download at once. */
export class StatementUrlExpiredError extends ProviderUnavailableError {
  override name = 'StatementUrlExpiredError';
}
