import { log } from '@temporalio/workflow';
import {
  type DiscrepancyKind,
  discrepancyForPaidFact,
  judgePaidFact,
  noticeChecks,
  noticeContradictions,
  type OrderStatus,
  type PaymentNotice,
  type SettledBy,
  type TradeSnapshot,
  type TransitionResult,
  wasPaid,
} from '../src/domain';
import { db, ladderCheck } from './order-activities';
import type { OrderRun } from './order-run';

/**
 * How a fact about the payment settles an order (workflows/order.ts runs these steps): a notice is
 * checked with the provider when it differs from what the order knows, a paid fact pays the order or
 * holds it for review, and one the order can no longer take is flagged. The rules themselves are pure
 * functions in src/domain, shared with the consumer's path for ended workflows.
 */

/**
 * A signature proves who sent a notice, not that the buyer paid. Only an MQ notice that names what the
 * order knows (the trade payrecon opened, the money due) pays at once, unless `verifyNotices: always`;
 * any other (an operator's, a statement row's, or one that differs) is checked with the provider first
 * (`noticeChecks`, src/domain): the provider's answer is the fact applied, and a contradiction is
 * flagged. If the provider cannot be asked now, the notice waits for the ladder's next check.
 */
export async function applyPaidNotice(run: OrderRun, notice: PaymentNotice): Promise<OrderStatus> {
  const checks = noticeChecks(run.input, notice);
  if (checks.length === 0) {
    // The usual case: the notice is recorded and pays the order in one transaction (one local activity).
    const paid = await db.markOrderPaidByNotice.executeWithOptions(
      { summary: `record ${notice.source} notice ${notice.messageId}, mark order paid` },
      [{ notice, settledBy: notice.source }],
    );
    return takePaidResult(run, paid, notice, notice.source);
  }
  await recordNotice(notice);
  const provider = await askProvider(run, `verify ${notice.source} notice (${checks.join(', ')})`);
  if (!provider) return 'UNPAID';
  const contradicted = noticeContradictions(provider, notice);
  if (contradicted.length > 0) {
    const { messageId, tradeNo, amount, currency, source } = notice;
    await flag(run, 'NOTICE_CONTRADICTS_PROVIDER', {
      fields: contradicted,
      notice: { messageId, tradeNo, amount, currency, source },
      provider: {
        status: provider.status,
        tradeNo: provider.tradeNo,
        amount: provider.amount,
        currency: provider.currency,
      },
    });
  }
  return wasPaid(provider) ? applyPaidFact(run, provider, notice.source) : 'UNPAID';
}

/** Appends a notice to payment_events, so the fact survives even if it changes nothing. */
export async function recordNotice(notice: PaymentNotice): Promise<void> {
  // Its isNew is not a guard: a re-run local activity sees its own insert, and a running workflow has
  // not settled on this notice.
  await db.recordPaymentNotice.executeWithOptions(
    { summary: `record ${notice.source} notice ${notice.messageId}` },
    [notice],
  );
}

/** The trade's status, recorded; null when the provider cannot answer now (the ladder asks again). */
export async function askProvider(run: OrderRun, summary: string): Promise<TradeSnapshot | null> {
  try {
    const snapshot = await ladderCheck.queryTrade.executeWithOptions({ summary }, [run.orderId]);
    await recordProviderAnswer(run, snapshot);
    return snapshot;
  } catch (error) {
    run.notePoll(null, error);
    log.warn('trade status query failed; the next ladder step retries', { error: String(error) });
    return null;
  }
}

export async function recordProviderAnswer(run: OrderRun, snapshot: TradeSnapshot): Promise<void> {
  await db.recordTradeSnapshot.executeWithOptions({ summary: `record provider answer ${snapshot.status}` }, [
    snapshot,
  ]);
  run.notePoll(snapshot);
}

/**
 * The decision both paths share (src/domain): a paid fact pays the order if the money matches and holds
 * it for review if not; one the conditional update refuses is recorded as the discrepancy it is.
 */
export async function applyPaidFact(
  run: OrderRun,
  fact: Pick<TradeSnapshot, 'tradeNo' | 'amount' | 'currency' | 'paidAt'>,
  settledBy: SettledBy,
): Promise<OrderStatus> {
  if (judgePaidFact(run.input, fact) === 'AMOUNT_MISMATCH') {
    return holdForReview(run, fact.tradeNo, settledBy, 'AMOUNT_MISMATCH', {
      expected: { amount: run.input.amount, currency: run.input.currency },
      reported: { amount: fact.amount, currency: fact.currency },
      tradeNo: fact.tradeNo,
      source: settledBy,
    });
  }
  const paid = await db.markOrderPaid.executeWithOptions({ summary: `mark order paid (${settledBy})` }, [
    {
      orderId: run.orderId,
      tradeNo: fact.tradeNo ?? 'UNKNOWN',
      paidAt: fact.paidAt ?? new Date(Date.now()).toISOString(),
      settledBy,
    },
  ]);
  return takePaidResult(run, paid, fact, settledBy);
}

/** What the conditional update to PAID found: the order paid, or the fact it refused flagged. */
async function takePaidResult(
  run: OrderRun,
  paid: TransitionResult,
  fact: Pick<TradeSnapshot, 'tradeNo' | 'amount'> & { messageId?: string },
  settledBy: SettledBy,
): Promise<OrderStatus> {
  if (paid.status === 'PAID') run.state.settledBy = paid.settledBy;
  run.merchantEvent = paid.event;
  run.orderTradeNo = paid.tradeNo;
  if (!paid.changed) await recordContradiction(run, paid.status, { ...fact, source: settledBy });
  return paid.status ?? 'UNPAID';
}

export async function holdForReview(
  run: OrderRun,
  tradeNo: string | null,
  settledBy: SettledBy,
  kind: DiscrepancyKind,
  details: Record<string, unknown>,
): Promise<OrderStatus> {
  const held = await db.holdOrderForReview.executeWithOptions(
    { summary: `${kind.toLowerCase().replaceAll('_', ' ')}: hold order for review` },
    [{ orderId: run.orderId, tradeNo, settledBy, kind, details }],
  );
  if (held.status === 'NEEDS_REVIEW') run.noteDiscrepancy(kind);
  run.orderTradeNo = held.tradeNo;
  run.merchantEvent = held.event;
  return held.status ?? 'NEEDS_REVIEW';
}

/** A paid fact the order can no longer take (closed, paid by another trade, in review) is flagged. */
export async function recordContradiction(
  run: OrderRun,
  status: OrderStatus | null,
  fact: { tradeNo: string | null; amount: number | null; source: SettledBy; messageId?: string },
): Promise<void> {
  const kind = discrepancyForPaidFact({ status, tradeNo: run.orderTradeNo }, fact);
  const { tradeNo, amount, source, messageId } = fact;
  if (kind) await flag(run, kind, { tradeNo, amount, source, messageId, orderTradeNo: run.orderTradeNo });
}

export async function flag(
  run: OrderRun,
  kind: DiscrepancyKind,
  details: Record<string, unknown>,
): Promise<void> {
  await db.recordDiscrepancy({ orderId: run.orderId, kind, details });
  run.noteDiscrepancy(kind);
}
