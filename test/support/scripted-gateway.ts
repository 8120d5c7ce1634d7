import type { RefundSnapshot, TradeLookupStatus, TradeSnapshot } from '../../src/domain';
import {
  type PaymentGateway,
  ProviderRefusedError,
  ProviderReplyError,
  ProviderUnavailableError,
  type RefundRequest,
  type TradeRequest,
} from '../../src/provider/gateway';

/**
 * A payment provider whose answers a workflow test scripts in advance: "paid from the 3rd query on",
 * "down for the first 4 calls", "paid at the moment of close", "a notice arrives during the close". Time-skipping tests need answers that
 * depend on the call count, not on wall-clock time.
 */
export class ScriptedGateway implements PaymentGateway {
  readonly queries: string[] = [];
  readonly closes: string[] = [];
  private readonly trades = new Map<string, TradeScript>();

  script(orderId: string, script: TradeScript): void {
    this.trades.set(orderId, script);
  }

  async openTrade(request: TradeRequest): Promise<TradeSnapshot> {
    if (!this.trades.has(request.orderId)) this.script(request.orderId, { amount: request.amount });
    return this.snapshot(request.orderId, this.trades.get(request.orderId) ?? {}, 'WAIT_BUYER_PAY');
  }

  // The workflow tests reconcile nothing: the daily statement is tested on the real simulator.
  async statementLocation(): Promise<never> {
    throw new ProviderReplyError('the scripted provider has no statements');
  }

  async downloadStatement(): Promise<never> {
    throw new ProviderReplyError('the scripted provider has no statements');
  }

  readStatement(): never {
    throw new ProviderReplyError('the scripted provider has no statements');
  }

  async queryTrade(orderId: string): Promise<TradeSnapshot> {
    this.queries.push(orderId);
    const script = this.trades.get(orderId) ?? {};
    const call = this.queries.filter((id) => id === orderId).length;
    if (script.downForCalls && call <= script.downForCalls) {
      throw new ProviderUnavailableError(`scripted outage (call ${call})`);
    }
    if (script.unreadable)
      throw new ProviderReplyError('scripted answer: unknown trade status "TRADE_PENDING"');
    const paid = script.paidFromQuery !== undefined && call >= script.paidFromQuery;
    return this.snapshot(orderId, script, paid ? 'TRADE_SUCCESS' : (script.unpaidStatus ?? 'WAIT_BUYER_PAY'));
  }

  async closeTrade(orderId: string): Promise<TradeSnapshot> {
    this.closes.push(orderId);
    const script = this.trades.get(orderId) ?? {};
    await script.duringClose?.();
    if (script.closeUnreadable)
      throw new ProviderReplyError('scripted answer to the close: unknown trade status');
    if (script.paidAtClose) return this.snapshot(orderId, script, 'TRADE_SUCCESS');
    return this.snapshot(orderId, script, 'TRADE_CLOSED');
  }

  /** Refunds as a provider keeps them: one per out_request_no, however often it is asked. */
  readonly refunds = new Map<string, RefundSnapshot & { orderId: string; queries: number }>();

  async submitRefund(request: RefundRequest): Promise<RefundSnapshot> {
    const script = this.trades.get(request.orderId) ?? {};
    if (script.refundSubmit === 'refused') {
      throw new ProviderRefusedError('TRADE_FINISHED', 'scripted refusal: TRADE_FINISHED');
    }
    const existing = this.refunds.get(request.outRequestNo);
    if (existing) return existing;
    const refund = {
      orderId: request.orderId,
      outRequestNo: request.outRequestNo,
      status: script.refundFails ? ('FAILED' as const) : ('PROCESSING' as const),
      refundNo: `RF-${request.outRequestNo}`,
      amount: request.amount,
      failureReason: script.refundFails ? 'scripted refusal' : null,
      queries: 0,
    };
    this.refunds.set(request.outRequestNo, refund);
    // The provider took the refund, but its answer cannot be read.
    if (script.refundSubmit === 'unreadable') {
      throw new ProviderReplyError('scripted answer: unknown refund status "REFUND_PENDING"');
    }
    return refund;
  }

  async queryRefund(_orderId: string, outRequestNo: string): Promise<RefundSnapshot> {
    const refund = this.refunds.get(outRequestNo);
    if (!refund)
      return { outRequestNo, status: 'NOT_FOUND', refundNo: null, amount: null, failureReason: null };
    refund.queries++;
    const script = this.trades.get(refund.orderId) ?? {};
    await script.duringRefundQuery?.();
    if (
      refund.status === 'PROCESSING' &&
      script.refundSucceedsAtQuery !== undefined &&
      refund.queries >= script.refundSucceedsAtQuery
    ) {
      refund.status = 'SUCCESS';
    }
    if (
      refund.status === 'PROCESSING' &&
      script.refundFailsAtQuery !== undefined &&
      refund.queries >= script.refundFailsAtQuery
    ) {
      refund.status = 'FAILED';
      refund.failureReason = 'scripted refusal';
    }
    return { ...refund };
  }

  queryCount(orderId: string): number {
    return this.queries.filter((id) => id === orderId).length;
  }

  private snapshot(orderId: string, script: TradeScript, status: TradeLookupStatus): TradeSnapshot {
    const paid = status === 'TRADE_SUCCESS';
    return {
      orderId,
      status,
      tradeNo: status === 'NOT_FOUND' ? null : `SIM-${orderId}`,
      amount: paid ? (script.paidAmount ?? script.amount ?? null) : null,
      currency: paid ? (script.currency ?? 'CNY') : null,
      paidAt: paid ? '2026-01-01T00:00:00.000Z' : null,
    };
  }
}

export interface TradeScript {
  /** The order's amount, echoed back when paid. */
  amount?: number;
  /** A wrong amount the provider reports as paid. */
  paidAmount?: number;
  currency?: string;
  /** 1-based query number from which the trade is paid. */
  paidFromQuery?: number;
  /** The first n queries fail as if the provider were down. */
  downForCalls?: number;
  /** Closing reveals the buyer paid at that moment. */
  paidAtClose?: boolean;
  /** Every query gets an answer payrecon cannot read (an unknown trade status). */
  unreadable?: boolean;
  /** Every close gets an answer payrecon cannot read. */
  closeUnreadable?: boolean;
  /** A refund request stays PROCESSING until this refund query (1-based), then SUCCESS; never without it. */
  refundSucceedsAtQuery?: number;
  /** The provider refuses every refund of this trade. */
  refundFails?: boolean;
  /** A refund request stays PROCESSING until this refund query (1-based), then FAILED. */
  refundFailsAtQuery?: number;
  /**
   * How the provider answers a refund request: `refused` with a refusal code it documents (nothing
   * taken), or `unreadable`: it takes the refund but its answer cannot be read.
   */
  refundSubmit?: 'refused' | 'unreadable';
  /** Runs while the close is in flight, before the provider answers (a notice racing the close). */
  duringClose?: () => Promise<void>;
  /** Runs while a refund query is in flight, before the provider answers (a notice racing the query). */
  duringRefundQuery?: () => Promise<void>;
  unpaidStatus?: TradeLookupStatus;
}
