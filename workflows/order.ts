import {
  ActivityFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  type DiscrepancyKind,
  isPaidTradeStatus,
  type OrderStatus,
  type PaymentEventSource,
  type SettledBy,
  type TradeLookupStatus,
  type TransitionResult,
} from '../src/domain/index';
import type { TradeSnapshot } from '../src/provider/gateway';
import { formatDuration, ladderDelay, type PollLadder } from './ladder';
import { OrderIdKey, PaymentStatusKey, SettledByKey } from './search-attributes';

/** A "trade paid" notification, forwarded by workers/consumer (source mq) or an operator (manual). */
export interface PaymentNotice {
  messageId: string;
  orderId: string;
  source: Exclude<PaymentEventSource, 'poll'>;
  tradeNo: string;
  status: TradeLookupStatus;
  amount: number;
  currency: string;
  paidAt: string;
}

export const paymentNoticeSignal = defineSignal<[PaymentNotice]>('paymentNotice');
/** The buyer was sent to the pay page: a payment is likely soon, so check early again. */
export const paymentInitiatedSignal = defineSignal('paymentInitiated');
export const cancelOrderSignal = defineSignal<[{ reason?: string }?]>('cancelOrder');
export const orderStateQuery = defineQuery<OrderWorkflowState>('orderState');

export type OrderPhase = 'AWAITING_PAYMENT' | 'CLOSING' | 'PAID' | 'CLOSED' | 'NEEDS_REVIEW';

export interface PollRecord {
  at: string;
  status: TradeLookupStatus | 'ERROR';
  error?: string;
}

export interface OrderWorkflowState {
  orderId: string;
  amount: number;
  currency: string;
  payDeadline: string;
  phase: OrderPhase;
  settledBy: SettledBy | null;
  /** Index into the polling ladder of the next check. */
  ladderStep: number;
  pollAttempts: number;
  lastPoll: PollRecord | null;
  nextCheckAt: string | null;
  noticesReceived: number;
  duplicateNotices: number;
  discrepancies: DiscrepancyKind[];
  /** How many times this order's workflow has continued as new to keep its history short. */
  generation: number;
}

export interface OrderWorkflowInput {
  orderId: string;
  /** Minor units. */
  amount: number;
  currency: string;
  /** ISO instant after which an unpaid order is closed. */
  payDeadline: string;
  pollLadder: PollLadder;
  /** Continue as new past this many history events (default 2,000). */
  historyLimit?: number;
  /** Set only by continue-as-new. */
  carried?: CarriedState;
}

interface CarriedState {
  state: OrderWorkflowState;
  /** The most recent notice ids; older duplicates are still refused by payment_events' unique key. */
  seenMessageIds: string[];
  pendingNotices: PaymentNotice[];
  cancelReason: string | null;
}

export interface OrderWorkflowResult {
  orderId: string;
  status: Exclude<OrderStatus, 'UNPAID'>;
  settledBy: SettledBy | null;
  pollAttempts: number;
  discrepancies: DiscrepancyKind[];
}

const DEFAULT_HISTORY_LIMIT = 2_000;
const SEEN_IDS_CARRIED = 200;

// executeWithOptions deep-merges its options over these, so call sites add only a summary.
// Database writes: conditional and idempotent, and a settled payment must never be dropped,
// so they retry until Postgres is back.
const dbOptions = {
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
} as const;
// They run as local activities: in the worker, inside the workflow task that needs them, with no activity
// task and no extra workflow task of their own (tools/bench/README.md: +45% orders/s, half the p50 on the dev
// server). A local activity re-run after a failed workflow task changes nothing in the database, but it
// sees its own earlier write; the workflow reads results so that this is harmless (settledByOf, handleNotice).
const dbLocal = proxyLocalActivities<Activities>(dbOptions);
// Workflows started before that change keep regular activities, so their histories still replay.
const dbRemote = proxyActivities<Activities>(dbOptions);
const DB_LOCAL_ACTIVITIES_PATCH = 'db-writes-as-local-activities';

// A ladder check gives up fast: the next rung of the ladder is its retry.
const ladderCheck = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 },
});

// The final check and the close must get an answer before the order is closed, so they keep trying.
const finalCheck = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m' },
});

export async function orderWorkflow(input: OrderWorkflowInput): Promise<OrderWorkflowResult> {
  const localDbWrites = patched(DB_LOCAL_ACTIVITIES_PATCH);
  const db = localDbWrites ? dbLocal : dbRemote;
  /**
   * Who settled the order. A local activity whose workflow task failed (e.g. a signal arrived while it
   * completed) runs again and finds its own earlier update: changed=false, but the row says who did it.
   * Histories from before the patch keep the old rule (their results carry no settledBy).
   */
  const settledByOf = (result: TransitionResult, by: SettledBy): SettledBy | null =>
    localDbWrites ? result.settledBy : result.changed ? by : null;
  const { orderId } = input;
  const deadline = Date.parse(input.payDeadline);
  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  const state: OrderWorkflowState = input.carried?.state ?? {
    orderId,
    amount: input.amount,
    currency: input.currency,
    payDeadline: input.payDeadline,
    phase: 'AWAITING_PAYMENT',
    settledBy: null,
    ladderStep: 0,
    pollAttempts: 0,
    lastPoll: null,
    nextCheckAt: null,
    noticesReceived: 0,
    duplicateNotices: 0,
    discrepancies: [],
    generation: 0,
  };
  const seenMessageIds = new Set(input.carried?.seenMessageIds ?? []);
  const inbox: PaymentNotice[] = [...(input.carried?.pendingNotices ?? [])];
  let cancelReason: string | null = input.carried?.cancelReason ?? null;
  let restartLadder = false;

  setHandler(paymentNoticeSignal, (notice) => {
    if (seenMessageIds.has(notice.messageId)) {
      state.duplicateNotices++;
      return;
    }
    seenMessageIds.add(notice.messageId);
    state.noticesReceived++;
    inbox.push(notice);
  });
  setHandler(paymentInitiatedSignal, () => {
    restartLadder = true;
  });
  setHandler(cancelOrderSignal, (request) => {
    cancelReason ??= request?.reason ?? 'CANCELLED_BY_BUYER';
  });
  setHandler(orderStateQuery, () => state);

  if (!input.carried) {
    upsertSearchAttributes([
      { key: OrderIdKey, value: orderId },
      { key: PaymentStatusKey, value: 'UNPAID' },
    ]);
  }

  const historyTooLong = () =>
    workflowInfo().historyLength > historyLimit || workflowInfo().continueAsNewSuggested;

  const setPhase = (phase: OrderPhase) => {
    state.phase = phase;
    upsertSearchAttributes([
      { key: PaymentStatusKey, value: phase === 'AWAITING_PAYMENT' ? 'UNPAID' : phase },
    ]);
  };

  const noteDiscrepancy = async (kind: DiscrepancyKind, details: Record<string, unknown>) => {
    await db.recordDiscrepancy({ orderId, kind, details });
    if (!state.discrepancies.includes(kind)) state.discrepancies.push(kind);
  };

  /**
   * The single decision both paths share: a paid fact pays the order if the money matches, holds it for
   * review if it does not, and is recorded as a discrepancy if the order is already closed.
   * Returns the order's final status, or null while it stays unpaid.
   */
  const applyPaidFact = async (
    fact: { tradeNo: string | null; amount: number | null; currency: string | null; paidAt: string | null },
    settledBy: SettledBy,
  ): Promise<OrderStatus> => {
    if (fact.amount !== input.amount || fact.currency !== input.currency) {
      const details = {
        expected: { amount: input.amount, currency: input.currency },
        reported: { amount: fact.amount, currency: fact.currency },
        tradeNo: fact.tradeNo,
        source: settledBy,
      };
      const held = await db.holdOrderForReview.executeWithOptions(
        { summary: 'amount mismatch: hold order for review' },
        [{ orderId, tradeNo: fact.tradeNo, settledBy, details }],
      );
      if (!state.discrepancies.includes('AMOUNT_MISMATCH')) state.discrepancies.push('AMOUNT_MISMATCH');
      return held.status ?? 'NEEDS_REVIEW';
    }
    const paid = await db.markOrderPaid.executeWithOptions({ summary: `mark order paid (${settledBy})` }, [
      {
        orderId,
        tradeNo: fact.tradeNo ?? 'UNKNOWN',
        paidAt: fact.paidAt ?? new Date(Date.now()).toISOString(),
        settledBy,
      },
    ]);
    if (paid.status === 'PAID') state.settledBy = settledByOf(paid, settledBy);
    if (!paid.changed && paid.status === 'CLOSED') {
      await noteDiscrepancy('PAID_AFTER_CLOSE', {
        tradeNo: fact.tradeNo,
        amount: fact.amount,
        source: settledBy,
      });
    }
    return paid.status ?? 'UNPAID';
  };

  const handleNotice = async (notice: PaymentNotice): Promise<OrderStatus | null> => {
    const isNew = await db.recordPaymentNotice.executeWithOptions(
      { summary: `record ${notice.source} notice ${notice.messageId}` },
      [notice],
    );
    // Seen before this run (continue-as-new forgets old ids): payment_events' unique key remembers.
    // With local activities isNew is also false when this very call ran before in a failed workflow
    // task, so a paid notice is applied anyway: the workflow is still running, so no earlier copy of
    // it settled the order, and applying a paid fact is idempotent (conditional UPDATE, one
    // discrepancy per kind).
    if ((!isNew && !localDbWrites) || !isPaidTradeStatus(notice.status)) return null;
    return applyPaidFact(notice, notice.source);
  };

  const recordPoll = (snapshot: TradeSnapshot | null, error?: unknown) => {
    state.lastPoll = {
      at: new Date(Date.now()).toISOString(),
      status: snapshot?.status ?? 'ERROR',
      ...(error
        ? { error: error instanceof ActivityFailure ? String(error.cause?.message) : String(error) }
        : {}),
    };
  };

  /** One rung of the ladder. A provider that is down only costs this check. */
  const pollProvider = async (): Promise<OrderStatus | null> => {
    state.pollAttempts++;
    let snapshot: TradeSnapshot;
    try {
      snapshot = await ladderCheck.queryTrade.executeWithOptions(
        { summary: `check #${state.pollAttempts}: query trade status` },
        [orderId],
      );
    } catch (error) {
      recordPoll(null, error);
      log.warn('trade status query failed; the next ladder step will retry', {
        orderId,
        error: String(error),
      });
      return null;
    }
    recordPoll(snapshot);
    return isPaidTradeStatus(snapshot.status) ? applyPaidFact(snapshot, 'poll') : null;
  };

  /** Deadline or cancel: ask once more, close the trade at the provider, then close the order. */
  /** `closedBy`: poll when the ladder ran out at the deadline, manual when the buyer cancelled. */
  const closeAfterFinalCheck = async (reason: string, closedBy: SettledBy): Promise<OrderStatus> => {
    setPhase('CLOSING');
    state.nextCheckAt = null;
    state.pollAttempts++;
    const last = await finalCheck.queryTrade.executeWithOptions(
      { summary: `final check before close (${reason})` },
      [orderId],
    );
    recordPoll(last);
    if (isPaidTradeStatus(last.status)) return applyPaidFact(last, 'poll');
    const closed = await finalCheck.closeTrade.executeWithOptions(
      { summary: 'close the trade at the provider' },
      [orderId],
    );
    // The buyer paid between the final check and the close: the provider's "paid" wins.
    if (isPaidTradeStatus(closed.status)) return applyPaidFact(closed, 'poll');
    const result = await db.closeOrder.executeWithOptions({ summary: `close order (${reason})` }, [
      { orderId, reason, settledBy: closedBy },
    ]);
    if (result.status === 'CLOSED') state.settledBy = settledByOf(result, closedBy);
    return result.status ?? 'CLOSED';
  };

  /** Notices that arrive after the order settled still get recorded, and contradictions flagged. */
  const drainLateNotices = async (status: OrderStatus) => {
    while (inbox.length > 0) {
      const notice = inbox.shift() as PaymentNotice;
      const isNew = await db.recordPaymentNotice(notice);
      if ((isNew || localDbWrites) && isPaidTradeStatus(notice.status) && status === 'CLOSED') {
        await noteDiscrepancy('PAID_AFTER_CLOSE', {
          tradeNo: notice.tradeNo,
          amount: notice.amount,
          source: notice.source,
        });
      }
    }
  };

  const finish = async (status: OrderStatus): Promise<OrderWorkflowResult> => {
    await drainLateNotices(status);
    await condition(allHandlersFinished);
    const final = status === 'UNPAID' ? 'NEEDS_REVIEW' : status;
    setPhase(final);
    if (state.settledBy) upsertSearchAttributes([{ key: SettledByKey, value: state.settledBy }]);
    state.nextCheckAt = null;
    return {
      orderId,
      status: final,
      settledBy: state.settledBy,
      pollAttempts: state.pollAttempts,
      discrepancies: state.discrepancies,
    };
  };

  const isSettled = (status: OrderStatus | null): status is OrderStatus =>
    status !== null && status !== 'UNPAID';

  for (;;) {
    // A notice at any moment wins at once.
    while (inbox.length > 0) {
      const outcome = await handleNotice(inbox.shift() as PaymentNotice);
      if (isSettled(outcome)) return finish(outcome);
    }
    if (cancelReason) return finish(await closeAfterFinalCheck(cancelReason, 'manual'));
    if (restartLadder) {
      restartLadder = false;
      state.ladderStep = 0;
    }
    const now = Date.now();
    if (now >= deadline) return finish(await closeAfterFinalCheck('PAY_DEADLINE_PASSED', 'poll'));

    if (historyTooLong()) {
      state.generation++;
      state.nextCheckAt = null;
      await condition(allHandlersFinished);
      return continueAsNew<typeof orderWorkflow>({
        ...input,
        carried: {
          state,
          seenMessageIds: [...seenMessageIds].slice(-SEEN_IDS_CARRIED),
          pendingNotices: inbox,
          cancelReason,
        },
      });
    }

    const untilDeadline = deadline - now;
    const delay = Math.min(ladderDelay(input.pollLadder, state.ladderStep), untilDeadline);
    const deadlineFirst = delay >= untilDeadline;
    state.nextCheckAt = new Date(now + delay).toISOString();
    const woken = await condition(
      () => inbox.length > 0 || cancelReason !== null || restartLadder || historyTooLong(),
      delay,
      {
        summary: deadlineFirst
          ? `waiting for payment notice; pay deadline in ${formatDuration(delay)}`
          : `waiting for payment notice, next check in ${formatDuration(delay)}`,
      },
    );
    if (woken || deadlineFirst) continue;

    const outcome = await pollProvider();
    state.ladderStep++;
    if (isSettled(outcome)) return finish(outcome);
  }
}
