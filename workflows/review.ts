import { ActivityFailure } from '@temporalio/workflow';
import { type OrderStatus, type TradeLookupStatus, type TradeSnapshot, wasPaid } from '../src/domain';
import { notifyMerchant } from './notify-merchant';
import { db, finalCheck, ladderCheck } from './order-activities';

/** What an operator decided about an order held for review (`payrecon review resolve`). */
export interface ReviewInput {
  orderId: string;
  outcome: 'PAID' | 'CLOSED';
  /** What the operator did and why; stored with the order and on its discrepancies. */
  note: string;
  /** For PAID: the trade that paid, when it is not the one the order was held with. */
  tradeNo?: string;
}

export interface ReviewResult {
  orderId: string;
  changed: boolean;
  /** The order's status after the decision (unchanged when it was not in review). */
  status: OrderStatus | null;
  /** PAID only: why the provider's answer refused it (not paid, another trade, no answer); nothing changed. */
  refused?: string;
  /**
   * CLOSED only, once the order is closed: what the provider answered the trade's close (TRADE_CLOSED;
   * NOT_FOUND: it never opened one, nothing to close; TRADE_SUCCESS: paid meanwhile, a refund is due),
   * or why the close failed. The order is CLOSED either way.
   */
  tradeClose?: { status: TradeLookupStatus } | { error: string };
}

/**
 * An order held for review (NEEDS_REVIEW) ends its payment workflow; an operator settles it here, through
 * the same kind of conditional update (`WHERE status = 'NEEDS_REVIEW'`), never by hand in SQL.
 *
 * PAID moves money on an operator's word, so the trade is checked with the provider first: only a trade
 * it reports paid (the one under review, or the one the operator names) pays the order, at the paid time
 * the provider gives.
 *
 * Its trade is kept open while it waits, on purpose: a wrong amount was paid (the trade is paid and only
 * a refund undoes it), or the provider's answer could not be read (closing a trade the buyer may have
 * paid would need a refund too). Closing it is part of the CLOSED decision, once the order is closed.
 */
export async function orderReviewWorkflow(input: ReviewInput): Promise<ReviewResult> {
  if (input.outcome === 'PAID') return resolvePaid(input);
  const result = await db.resolveReview.executeWithOptions(
    { summary: `operator resolves review: ${input.outcome}` },
    [input],
  );
  if (result.event) await notifyMerchant(input.orderId, result.event);
  const decided = { orderId: input.orderId, changed: result.changed, status: result.status };
  if (!result.changed) return decided;
  // The order is CLOSED now: a close the provider cannot answer is reported with it, not as a failure of
  // the decision. A trade paid in the meantime stays paid at the provider: the answer is recorded.
  try {
    const closed = await finalCheck.closeTrade.executeWithOptions(
      { summary: 'close the trade at the provider' },
      [input.orderId],
    );
    await db.recordTradeSnapshot.executeWithOptions({ summary: `record provider answer ${closed.status}` }, [
      closed,
    ]);
    return { ...decided, tradeClose: { status: closed.status } };
  } catch (error) {
    return { ...decided, tradeClose: { error: failureMessage(error) } };
  }
}

async function resolvePaid(input: ReviewInput): Promise<ReviewResult> {
  const refuse = (refused: string): ReviewResult => ({
    orderId: input.orderId,
    changed: false,
    status: 'NEEDS_REVIEW',
    refused,
  });
  let trade: TradeSnapshot;
  try {
    // A few attempts: the operator waits for the answer, and can decide again once the provider is back.
    trade = await ladderCheck.queryTrade.executeWithOptions(
      { summary: 'check the trade with the provider before PAID' },
      [input.orderId],
    );
  } catch (error) {
    return refuse(`the provider could not confirm the payment: ${failureMessage(error)}`);
  }
  await db.recordTradeSnapshot.executeWithOptions({ summary: `record provider answer ${trade.status}` }, [
    trade,
  ]);
  if (!wasPaid(trade) || !trade.tradeNo) {
    return refuse(`the provider reports the trade ${trade.status}, not paid`);
  }
  if (input.tradeNo && input.tradeNo !== trade.tradeNo) {
    return refuse(`the provider reports trade ${trade.tradeNo} paid, not ${input.tradeNo}`);
  }
  const result = await db.resolveReview.executeWithOptions(
    { summary: `operator resolves review: ${input.outcome}` },
    [{ ...input, paidTrade: { tradeNo: trade.tradeNo, paidAt: trade.paidAt } }],
  );
  if (result.event) await notifyMerchant(input.orderId, result.event);
  const decided = { orderId: input.orderId, changed: result.changed, status: result.status };
  if (!result.changed && result.status === 'NEEDS_REVIEW') {
    return { ...decided, refused: `the provider reports trade ${trade.tradeNo} paid, not ${result.tradeNo}` };
  }
  return decided;
}

function failureMessage(error: unknown): string {
  return error instanceof ActivityFailure ? String(error.cause?.message) : String(error);
}
