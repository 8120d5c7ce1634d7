import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { RefundNotice, SettledBy } from '../src/domain';
import type { PollLadder } from './ladder';

/** What the refund workflow takes, answers and returns: its signals, its query, its input and state. */

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
