import {
  condition,
  defineQuery,
  defineSignal,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { RefundNotice, RefundSnapshot, SettledBy } from '../src/domain';
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
}

export type RefundPhase = 'SUBMITTING' | 'PROCESSING' | 'SUCCEEDED' | 'FAILED' | 'UNKNOWN';

export interface RefundState {
  refundId: string;
  phase: RefundPhase;
  queries: number;
  noticesReceived: number;
  nextCheckAt: string | null;
  settledBy: SettledBy | null;
}

export const refundNoticeSignal = defineSignal<[RefundNotice]>('refundNotice');
export const refundStateQuery = defineQuery<RefundState>('refundState');

/** The provider's answer, from a notice or a query: null while it is still processing. */
type Answer = {
  outcome: 'SUCCESS' | 'FAILED';
  refundNo: string | null;
  reason: string | null;
  by: SettledBy;
};

/**
 * One refund, on the same two paths as a payment: submit it (idempotent by out_request_no), then the
 * provider's refund notice settles it at once, or refund queries on a ladder do; past the deadline it is
 * UNKNOWN with a REFUND_UNCONFIRMED discrepancy, never a silent success. A success is one conditional
 * update of the refund and the order together; a failure leaves the order as it was.
 */
export async function refundWorkflow(input: RefundWorkflowInput): Promise<RefundState> {
  const state: RefundState = {
    refundId: input.refundId,
    phase: 'SUBMITTING',
    queries: 0,
    noticesReceived: 0,
    nextCheckAt: null,
    settledBy: null,
  };
  const inbox: RefundNotice[] = [];
  const seen = new Set<string>();
  setHandler(refundNoticeSignal, (notice) => {
    if (notice.outRequestNo !== input.outRequestNo || seen.has(notice.messageId)) return;
    seen.add(notice.messageId);
    state.noticesReceived++;
    inbox.push(notice);
  });
  setHandler(refundStateQuery, () => state);

  let answer = await submit(input);
  state.phase = 'PROCESSING';
  const deadline = Date.parse(input.deadline);
  for (let step = 0; !answer; ) {
    const notice = inbox.shift();
    if (notice) {
      await db.recordRefundNotice.executeWithOptions(
        { summary: `record refund notice ${notice.messageId}` },
        [notice],
      );
      answer = fromNotice(notice);
      continue;
    }
    const now = Date.now();
    if (now >= deadline) break;
    const delay = Math.min(ladderDelay(input.ladder, step), deadline - now);
    state.nextCheckAt = new Date(now + delay).toISOString();
    const woken = await condition(() => inbox.length > 0, delay, {
      summary: `waiting for refund notice, next refund query in ${formatDuration(delay)}`,
    });
    state.nextCheckAt = null;
    if (woken) continue;
    state.queries++;
    step++;
    answer = await queryOnLadder(input, state.queries);
  }
  const phase = answer ? await settle(input, state, answer) : await unconfirmed(input);
  // After the last await: a notice that came while a query, the settle or the merchant's notification
  // ran is still in the inbox. Recorded, and flagged when it says otherwise than the outcome.
  await recordLateNotices(input, inbox, phase);
  return end(state, phase);
}

/** Keeps trying until the provider answers; every try carries the same out_request_no and amount. */
async function submit(input: RefundWorkflowInput): Promise<Answer | null> {
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
    return fromSnapshot(snapshot, 'poll');
  } catch (error) {
    // Only a refusal that can never change gets here (e.g. TRADE_FINISHED: the refund window is over).
    return { outcome: 'FAILED', refundNo: null, reason: String((error as Error).message), by: 'poll' };
  }
}

async function queryOnLadder(input: RefundWorkflowInput, n: number): Promise<Answer | null> {
  try {
    const snapshot = await ladderCheck.queryRefund.executeWithOptions({ summary: `refund query #${n}` }, [
      { orderId: input.orderId, outRequestNo: input.outRequestNo },
    ]);
    return fromSnapshot(snapshot, 'poll');
  } catch {
    return null;
  }
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

async function unconfirmed(input: RefundWorkflowInput): Promise<RefundPhase> {
  await db.markRefundUnconfirmed.executeWithOptions(
    { summary: 'no answer by the refund deadline: UNKNOWN, for an operator' },
    [input.refundId],
  );
  return 'UNKNOWN';
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
        refundStatus: phase,
        notice: notice.status,
        messageId: notice.messageId,
      },
    });
  }
}

function end(state: RefundState, phase: RefundPhase): RefundState {
  state.phase = phase;
  upsertSearchAttributes([{ key: RefundStatusKey, value: phase }]);
  return state;
}
