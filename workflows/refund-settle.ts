import { log } from '@temporalio/workflow';
import {
  type RefundNotice,
  type RefundSnapshot,
  refundNoticeContradictions,
  refundNoticeMismatches,
  type SettledBy,
} from '../src/domain';
import { db, ladderCheck } from './order-activities';
import type { RefundPhase, RefundState, RefundWorkflowInput } from './refund-contract';

/** How the provider's word reaches a refund: its answer to a query, a notice, and what each settles. */

/** The provider's answer, from a notice or a query: null while it is still processing. */
export type Answer = {
  outcome: 'SUCCESS' | 'FAILED';
  refundNo: string | null;
  reason: string | null;
  by: SettledBy;
};

export interface RefundRun {
  input: RefundWorkflowInput;
  state: RefundState;
  /** The provider's refund number, from its answer to the request. */
  refundNo: string | null;
}

/** A refund query; null while the provider still processes it or cannot answer now. */
export async function askProvider(refund: RefundRun, summary: string): Promise<Answer | null> {
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
export async function takeNotice(refund: RefundRun, notice: RefundNotice): Promise<Answer | null> {
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

export function fromSnapshot(snapshot: RefundSnapshot, by: Answer['by']): Answer | null {
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

/** Notices left once the refund is decided: each recorded; one that contradicts the outcome is flagged. */
export async function recordLateNotices(
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
