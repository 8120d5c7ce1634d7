import { allHandlersFinished, condition, continueAsNew, setHandler } from '@temporalio/workflow';
import {
  isPaidTradeStatus,
  type OrderStatus,
  type PaymentNotice,
  type SettledBy,
  wasPaid,
} from '../src/domain';
import { formatDuration, ladderDelay } from './ladder';
import { notifyMerchant } from './notify-merchant';
import { db, finalCheck } from './order-activities';
import {
  cancelOrderSignal,
  type OrderWorkflowInput,
  type OrderWorkflowResult,
  orderStateQuery,
  paymentInitiatedSignal,
  paymentNoticeSignal,
} from './order-contract';
import { OrderRun } from './order-run';
import {
  applyPaidFact,
  applyPaidNotice,
  askProvider,
  holdForReview,
  recordContradiction,
  recordNotice,
  recordProviderAnswer,
} from './order-settle';

export * from './order-contract';

/**
 * One order's payment, from UNPAID to PAID, CLOSED or NEEDS_REVIEW. A notice (MQ or operator) settles it
 * at once; without one, ladder checks ask the provider; at the deadline (or on cancel) a final check,
 * the trade's close and the order's close. Every status change is a conditional update in an activity.
 */
export async function orderWorkflow(input: OrderWorkflowInput): Promise<OrderWorkflowResult> {
  const run = new OrderRun(input);
  setHandler(paymentNoticeSignal, (notice) => run.receive(notice));
  setHandler(paymentInitiatedSignal, () => {
    run.restartLadder = true;
  });
  setHandler(cancelOrderSignal, (request) => {
    run.cancelReason ??= request?.reason ?? 'CANCELLED_BY_BUYER';
  });
  setHandler(orderStateQuery, () => run.state);

  for (;;) {
    // A notice at any moment wins at once.
    const settled = await applyNotices(run);
    if (settled) return finish(run, settled);
    if (run.cancelReason) return finish(run, await closeAfterFinalCheck(run, run.cancelReason, 'manual'));
    if (run.restartLadder) {
      run.restartLadder = false;
      run.state.ladderStep = 0;
      run.firstCheckAt = null;
    }
    if (Date.now() >= run.deadline) {
      return finish(run, await closeAfterFinalCheck(run, 'PAY_DEADLINE_PASSED', 'poll'));
    }
    if (run.historyTooLong()) {
      // A flood of signals must not grow one history without bound: start afresh, carrying what matters.
      await condition(allHandlersFinished);
      return continueAsNew<typeof orderWorkflow>({ ...input, carried: run.carry() });
    }
    if (await waitForNoticeOrNextCheck(run)) continue;
    const outcome = await checkOnLadder(run);
    run.state.ladderStep++;
    if (outcome) return finish(run, outcome);
  }
}

/** Records every notice in the inbox; the first paid one settles the order. */
async function applyNotices(run: OrderRun): Promise<OrderStatus | null> {
  while (run.inbox.length > 0) {
    const notice = run.inbox.shift() as PaymentNotice;
    if (!isPaidTradeStatus(notice.status)) {
      await recordNotice(notice);
      continue;
    }
    // Recorded too, with the update or before the provider is asked.
    const outcome = await applyPaidNotice(run, notice);
    if (outcome !== 'UNPAID') return outcome;
  }
  return null;
}

/** Waits for a notice, a signal or the next ladder check. True when something other than the check came. */
async function waitForNoticeOrNextCheck(run: OrderRun): Promise<boolean> {
  const now = Date.now();
  const untilDeadline = run.deadline - now;
  // A start delayed by the first step has waited it already: the first check is due at firstCheckAt.
  const step = run.firstCheckAt ?? now + ladderDelay(run.input.pollLadder, run.state.ladderStep);
  const delay = Math.min(step - now, untilDeadline);
  if (delay <= 0 && untilDeadline > 0) return false;
  const deadlineFirst = delay >= untilDeadline;
  run.state.nextCheckAt = new Date(now + delay).toISOString();
  const woken = await condition(
    () => run.inbox.length > 0 || run.cancelReason !== null || run.restartLadder || run.historyTooLong(),
    delay,
    {
      summary: deadlineFirst
        ? `waiting for payment notice; pay deadline in ${formatDuration(delay)}`
        : `waiting for payment notice, next check in ${formatDuration(delay)}`,
    },
  );
  return woken || deadlineFirst;
}

/** One rung of the ladder. A provider that is down only costs this check. */
async function checkOnLadder(run: OrderRun): Promise<OrderStatus | null> {
  run.firstCheckAt = null;
  run.state.pollAttempts++;
  const snapshot = await askProvider(run, `check #${run.state.pollAttempts}: query trade status`);
  // wasPaid: a trade refunded in full reports TRADE_CLOSED too, but it was paid (src/domain/trade.ts).
  if (!snapshot || !wasPaid(snapshot)) return null;
  const outcome = await applyPaidFact(run, snapshot, 'poll');
  return outcome === 'UNPAID' ? null : outcome;
}

/** Deadline (`closedBy` poll) or cancel (manual): ask once more, close the trade, then close the order. */
async function closeAfterFinalCheck(
  run: OrderRun,
  reason: string,
  closedBy: SettledBy,
): Promise<OrderStatus> {
  run.setPhase('CLOSING');
  run.state.nextCheckAt = null;
  run.state.pollAttempts++;
  try {
    const last = await finalCheck.queryTrade.executeWithOptions(
      { summary: `final check before close (${reason})` },
      [run.orderId],
    );
    await recordProviderAnswer(run, last);
    if (wasPaid(last)) return applyPaidFact(run, last, 'poll');
    const closed = await finalCheck.closeTrade.executeWithOptions(
      { summary: 'close the trade at the provider' },
      [run.orderId],
    );
    await recordProviderAnswer(run, closed);
    // The buyer paid between the final check and the close: the provider's "paid" wins.
    if (wasPaid(closed)) return applyPaidFact(run, closed, 'poll');
  } catch (error) {
    // Only a non-retryable failure gets here: an answer that cannot be read must not close the order.
    run.notePoll(null, error);
    return holdForReview(run, null, 'poll', 'PROVIDER_REPLY_INVALID', {
      reason,
      error: run.state.lastPoll?.error,
    });
  }
  const result = await db.closeOrder.executeWithOptions({ summary: `close order (${reason})` }, [
    { orderId: run.orderId, reason, settledBy: closedBy },
  ]);
  if (result.status === 'CLOSED') run.state.settledBy = result.settledBy;
  run.merchantEvent = result.event;
  return result.status ?? 'CLOSED';
}

/**
 * The end: the merchant is told, then notices that came while settling (or while the notification
 * started: a child start is one more workflow task) are recorded and contradictions flagged. Nothing is
 * awaited after the last look at the inbox, so no notice can land unseen.
 */
async function finish(run: OrderRun, status: OrderStatus): Promise<OrderWorkflowResult> {
  if (run.merchantEvent) await notifyMerchant(run.orderId, run.merchantEvent);
  await condition(allHandlersFinished);
  while (run.inbox.length > 0) {
    const notice = run.inbox.shift() as PaymentNotice;
    await recordNotice(notice);
    if (isPaidTradeStatus(notice.status)) await recordContradiction(run, status, notice);
  }
  return run.end(paymentOutcome(status));
}

/** The payment's outcome from the row's status: an order already refunded was paid (a re-run's view). */
function paymentOutcome(status: OrderStatus): OrderWorkflowResult['status'] {
  if (status === 'PARTIALLY_REFUNDED' || status === 'REFUNDED') return 'PAID';
  return status === 'UNPAID' ? 'NEEDS_REVIEW' : status;
}
