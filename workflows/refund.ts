import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  type RefundNotice,
  type RefundSnapshot,
  refundNoticeContradictions,
  refundNoticeMismatches,
  type SettledBy,
} from '../src/domain';
import { formatDuration, ladderDelay, type PollLadder } from './ladder';
import { notifyMerchant } from './notify-merchant';
import { db, finalCheck, ladderCheck } from './order-activities';
import { RefundStatusKey } from './search-attributes';

export interface RefundWorkflowInput {
  refundId: string;
  orderId: string;
  /** The idempotency key every request to the provider reuses, with the same amount. */
  outRequestNo: string;
  amount: number;
  reason: string | null;
  /** Refund queries when no notice comes: 10s, 1m ×5, 5m, 10m, 20m, 30m, then every 30m. */
  ladder: PollLadder;
  /** ISO instant after which an unanswered refund is UNKNOWN (default 24 h after the request). */
  deadline: string;
  /** Set by continue-as-new while an UNKNOWN refund waits for its answer. */
  carried?: CarriedRefund;
  /** History events before an UNKNOWN refund's wait continues as new (default 2,000). */
  historyLimit?: number;
}

/** What an UNKNOWN refund's wait hands to its next run. */
export interface CarriedRefund {
  refundNo: string | null;
  pendingNotices: RefundNotice[];
  seenMessageIds: string[];
  checksPending: number;
}

export type RefundPhase = 'SUBMITTING' | 'PROCESSING' | 'SUCCEEDED' | 'FAILED' | 'UNKNOWN';

export interface RefundState {
  refundId: string;
  phase: RefundPhase;
  queries: number;
  noticesReceived: number;
  /** Operators' checks (`payrecon refund check`) asked for, and answered so far. */
  checksRequested: number;
  checksDone: number;
  nextCheckAt: string | null;
  settledBy: SettledBy | null;
}

export const refundNoticeSignal = defineSignal<[RefundNotice]>('refundNotice');
/** An operator asks the provider now (`payrecon refund check`): before the deadline or once UNKNOWN. */
export const refundCheckSignal = defineSignal('refundCheck');
export const refundStateQuery = defineQuery<RefundState>('refundState');

const DEFAULT_HISTORY_LIMIT = 2_000;
const SEEN_IDS_CARRIED = 500;

/** The provider's answer, from a notice or a query: null while it is still processing. */
type Answer = {
  outcome: 'SUCCESS' | 'FAILED';
  refundNo: string | null;
  reason: string | null;
  by: SettledBy;
};

/**
 * One refund, on the same two paths as a payment: submit it (idempotent by out_request_no), then the
 * provider's refund notice settles it at once, or refund queries on a ladder do. Only the provider's
 * explicit refusal ends it FAILED; an answer that cannot be read leaves it PROCESSING for the queries.
 * Past the deadline it is UNKNOWN with a REFUND_UNCONFIRMED discrepancy, never a silent success, and
 * the workflow waits on: a late notice or an operator's check settles it through the same steps. A
 * notice that differs from the refund is checked with the provider first. A success is one conditional
 * update of the refund and the order together; a failure leaves the order as it was.
 */
export async function refundWorkflow(input: RefundWorkflowInput): Promise<RefundState> {
  const carried = input.carried;
  const state: RefundState = {
    refundId: input.refundId,
    phase: carried ? 'UNKNOWN' : 'SUBMITTING',
    queries: 0,
    noticesReceived: 0,
    checksRequested: carried?.checksPending ?? 0,
    checksDone: 0,
    nextCheckAt: null,
    settledBy: null,
  };
  const inbox: RefundNotice[] = [...(carried?.pendingNotices ?? [])];
  const seen = new Set<string>(carried?.seenMessageIds ?? []);
  let checksPending = carried?.checksPending ?? 0;
  setHandler(refundNoticeSignal, (notice) => {
    if (notice.outRequestNo !== input.outRequestNo || seen.has(notice.messageId)) return;
    seen.add(notice.messageId);
    state.noticesReceived++;
    inbox.push(notice);
  });
  setHandler(refundCheckSignal, () => {
    state.checksRequested++;
    checksPending++;
  });
  setHandler(refundStateQuery, () => state);

  const refund = { input, state, refundNo: carried?.refundNo ?? null };
  let answer: Answer | null = null;
  if (!carried) {
    const submitted = await submit(input);
    answer = submitted.answer;
    refund.refundNo = submitted.refundNo;
    state.phase = 'PROCESSING';
  }
  const deadline = Date.parse(input.deadline);
  for (let step = 0; !answer; ) {
    const notice = inbox.shift();
    if (notice) {
      answer = await takeNotice(refund, notice);
      continue;
    }
    if (checksPending > 0) {
      checksPending = 0;
      answer = await askProvider(refund, `operator's refund check #${state.checksRequested}`);
      state.checksDone = state.checksRequested;
      continue;
    }
    const wake = () => inbox.length > 0 || checksPending > 0;
    if (state.phase === 'UNKNOWN') {
      if (historyTooLong(input)) {
        await condition(allHandlersFinished);
        return continueAsNew<typeof refundWorkflow>({
          ...input,
          carried: {
            refundNo: refund.refundNo,
            pendingNotices: inbox,
            seenMessageIds: [...seen].slice(-SEEN_IDS_CARRIED),
            checksPending,
          },
        });
      }
      // Nothing more is asked on its own: a late notice or an operator's check wakes it.
      await condition(wake);
      continue;
    }
    const now = Date.now();
    if (now >= deadline) {
      await db.markRefundUnconfirmed.executeWithOptions(
        { summary: 'no answer by the refund deadline: UNKNOWN, for an operator' },
        [input.refundId],
      );
      setPhase(state, 'UNKNOWN');
      continue;
    }
    const delay = Math.min(ladderDelay(input.ladder, step), deadline - now);
    state.nextCheckAt = new Date(now + delay).toISOString();
    const woken = await condition(wake, delay, {
      summary: `waiting for refund notice, next refund query in ${formatDuration(delay)}`,
    });
    state.nextCheckAt = null;
    if (woken) continue;
    step++;
    answer = await askProvider(refund, `refund query #${state.queries + 1}`);
  }
  const phase = await settle(input, state, answer);
  // After the last await: a notice that came while a query, the settle or the merchant's notification
  // ran is still in the inbox. Recorded, and flagged when it says otherwise than the outcome.
  await recordLateNotices(input, inbox, phase);
  return end(state, phase);
}

interface RefundRun {
  input: RefundWorkflowInput;
  state: RefundState;
  /** The provider's refund number, from its answer to the request. */
  refundNo: string | null;
}

/**
 * Keeps trying until the provider answers; every try carries the same out_request_no and amount. Only an
 * explicit refusal (a refusal code the gateway knows) fails the refund here: an answer that cannot be
 * read (a 404, a body or a status payrecon does not know) may hide a refund the provider executed, so
 * it leaves the refund PROCESSING and the refund queries find out.
 */
async function submit(
  input: RefundWorkflowInput,
): Promise<{ answer: Answer | null; refundNo: string | null }> {
  try {
    const snapshot = await finalCheck.submitRefund.executeWithOptions(
      { summary: `submit refund ${input.outRequestNo} of ${input.amount}` },
      [
        {
          orderId: input.orderId,
          outRequestNo: input.outRequestNo,
          amount: input.amount,
          reason: input.reason,
        },
      ],
    );
    return { answer: fromSnapshot(snapshot, 'poll'), refundNo: snapshot.refundNo };
  } catch (error) {
    const cause = error instanceof ActivityFailure ? error.cause : undefined;
    if (cause instanceof ApplicationFailure && cause.type === 'ProviderRefusedError') {
      return {
        answer: { outcome: 'FAILED', refundNo: null, reason: cause.message, by: 'poll' },
        refundNo: null,
      };
    }
    log.warn('refund submission answered ambiguously; refund queries settle it', { error: String(error) });
    return { answer: null, refundNo: null };
  }
}

/** A refund query; null while the provider still processes it or cannot answer now. */
async function askProvider(refund: RefundRun, summary: string): Promise<Answer | null> {
  const snapshot = await queryRefund(refund, summary);
  return snapshot ? fromSnapshot(snapshot, 'poll') : null;
}

async function queryRefund(refund: RefundRun, summary: string): Promise<RefundSnapshot | null> {
  refund.state.queries++;
  try {
    const snapshot = await ladderCheck.queryRefund.executeWithOptions({ summary }, [
      { orderId: refund.input.orderId, outRequestNo: refund.input.outRequestNo },
    ]);
    if (snapshot.refundNo) refund.refundNo ??= snapshot.refundNo;
    return snapshot;
  } catch (error) {
    log.warn('refund query failed; the next check retries', { error: String(error) });
    return null;
  }
}

/**
 * A notice is recorded; one that matches the refund settles it. One that differs from the refund it
 * names (order, amount, refund number) is checked with the provider: the provider's answer is what
 * settles, a contradiction is flagged, and without an answer the notice settles nothing.
 */
async function takeNotice(refund: RefundRun, notice: RefundNotice): Promise<Answer | null> {
  const { input } = refund;
  await db.recordRefundNotice.executeWithOptions({ summary: `record refund notice ${notice.messageId}` }, [
    notice,
  ]);
  const mismatches = refundNoticeMismatches(
    { orderId: input.orderId, amount: input.amount, refundNo: refund.refundNo },
    notice,
  );
  if (mismatches.length === 0) return fromNotice(notice);
  const provider = await queryRefund(refund, `verify refund notice (${mismatches.join(', ')})`);
  if (!provider) return null;
  const contradicted = refundNoticeContradictions(provider, notice);
  if (contradicted.length > 0) {
    const { messageId, orderId, refundNo, status, amount, currency, source } = notice;
    await db.recordDiscrepancy({
      orderId: input.orderId,
      kind: 'REFUND_NOTICE_CONTRADICTS_PROVIDER',
      details: {
        refundId: input.refundId,
        outRequestNo: input.outRequestNo,
        messageId,
        fields: contradicted,
        notice: { orderId, refundNo, status, amount, currency, source },
        provider: { status: provider.status, refundNo: provider.refundNo, amount: provider.amount },
      },
    });
  }
  return fromSnapshot(provider, 'poll');
}

function fromSnapshot(snapshot: RefundSnapshot, by: Answer['by']): Answer | null {
  if (snapshot.status === 'SUCCESS')
    return { outcome: 'SUCCESS', refundNo: snapshot.refundNo, reason: null, by };
  if (snapshot.status === 'FAILED') {
    return {
      outcome: 'FAILED',
      refundNo: snapshot.refundNo,
      reason: snapshot.failureReason ?? 'refused',
      by,
    };
  }
  return null;
}

function fromNotice(notice: RefundNotice): Answer {
  return notice.status === 'REFUND_SUCCESS'
    ? { outcome: 'SUCCESS', refundNo: notice.refundNo, reason: null, by: notice.source }
    : {
        outcome: 'FAILED',
        refundNo: notice.refundNo,
        reason: 'the provider reported the refund failed',
        by: notice.source,
      };
}

async function settle(input: RefundWorkflowInput, state: RefundState, answer: Answer): Promise<RefundPhase> {
  state.settledBy = answer.by;
  if (answer.outcome === 'FAILED') {
    await db.failRefund.executeWithOptions({ summary: 'refund failed: the order stays as it was' }, [
      { refundId: input.refundId, reason: answer.reason ?? 'refused' },
    ]);
    return 'FAILED';
  }
  const result = await db.applyRefund.executeWithOptions({ summary: `apply refund (${answer.by})` }, [
    { refundId: input.refundId, settledBy: answer.by, providerRefundNo: answer.refundNo },
  ]);
  if (result.event) await notifyMerchant(input.orderId, result.event);
  return 'SUCCEEDED';
}

function historyTooLong(input: RefundWorkflowInput): boolean {
  const info = workflowInfo();
  return info.historyLength > (input.historyLimit ?? DEFAULT_HISTORY_LIMIT) || info.continueAsNewSuggested;
}

/** Notices left once the refund is decided: each recorded; one that contradicts the outcome is flagged. */
async function recordLateNotices(
  input: RefundWorkflowInput,
  inbox: RefundNotice[],
  phase: RefundPhase,
): Promise<void> {
  while (inbox.length > 0) {
    const notice = inbox.shift() as RefundNotice;
    await db.recordRefundNotice.executeWithOptions(
      { summary: `record refund notice ${notice.messageId} (after the outcome)` },
      [notice],
    );
    const agrees = notice.status === 'REFUND_SUCCESS' ? phase === 'SUCCEEDED' : phase === 'FAILED';
    if (agrees) continue;
    // The same details as a notice for an ended refund workflow (src/order/deliver-refund-notice.ts).
    await db.recordDiscrepancy({
      orderId: input.orderId,
      kind: 'REFUND_CONTRADICTS_RECORD',
      details: {
        refundId: input.refundId,
        outRequestNo: input.outRequestNo,
        refundStatus: phase,
        notice: notice.status,
        messageId: notice.messageId,
      },
    });
  }
}

function setPhase(state: RefundState, phase: RefundPhase): void {
  state.phase = phase;
  upsertSearchAttributes([{ key: RefundStatusKey, value: phase }]);
}

function end(state: RefundState, phase: RefundPhase): RefundState {
  setPhase(state, phase);
  return state;
}
