import type { OrderStatus } from '../src/domain';
import { notifyMerchant } from './notify-merchant';
import { db, finalCheck } from './order-activities';

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
}

/**
 * An order held for review (NEEDS_REVIEW) ends its payment workflow; an operator settles it here, through
 * the same kind of conditional update (`WHERE status = 'NEEDS_REVIEW'`), never by hand in SQL.
 *
 * Its trade is kept open while it waits, on purpose: a wrong amount was paid (the trade is paid and only
 * a refund undoes it), or the provider's answer could not be read (closing a trade the buyer may have
 * paid would need a refund too). Closing it is part of the CLOSED decision, once the order is closed.
 */
export async function orderReviewWorkflow(input: ReviewInput): Promise<ReviewResult> {
  const result = await db.resolveReview.executeWithOptions(
    { summary: `operator resolves review: ${input.outcome}` },
    [input],
  );
  if (result.event) await notifyMerchant(input.orderId, result.event);
  if (result.changed && input.outcome === 'CLOSED') {
    // A trade paid in the meantime stays paid at the provider: the answer is recorded for the operator.
    const closed = await finalCheck.closeTrade.executeWithOptions(
      { summary: 'close the trade at the provider' },
      [input.orderId],
    );
    await db.recordTradeSnapshot.executeWithOptions({ summary: `record provider answer ${closed.status}` }, [
      closed,
    ]);
  }
  return { orderId: input.orderId, changed: result.changed, status: result.status };
}
