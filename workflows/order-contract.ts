import { defineQuery, defineSignal } from '@temporalio/workflow';
import type {
  DiscrepancyKind,
  OrderStatus,
  PaymentNotice,
  SettledBy,
  TradeLookupStatus,
} from '../src/domain';
import type { PollLadder } from './ladder';

/** What the order workflow takes, answers and returns: its signals, its query, its input and result. */

/** A "trade paid" notice, forwarded by workers/consumer (source mq) or an operator (manual). */
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
  /** The trade payrecon opened at the provider; a paid notice that names another is checked first. */
  tradeNo?: string;
  /** always: every paid notice is checked with a trade query; default: only one that differs. */
  verifyNotices?: 'always' | 'on-mismatch';
  /** Continue as new past this many history events (default 2,000). */
  historyLimit?: number;
  /**
   * Set when the order's workflow was started with a start delay of the ladder's first step: the first
   * check is due at this instant (ISO), whenever the first workflow task runs. A notice during the delay
   * comes by signal-with-start, which starts the workflow at once, so it settles in one workflow task.
   */
  firstCheckAt?: string;
  /** Set only by continue-as-new. */
  carried?: CarriedState;
}

export interface CarriedState {
  state: OrderWorkflowState;
  /** The most recent notice ids; older duplicates are still refused by payment_events' unique key. */
  seenMessageIds: string[];
  pendingNotices: PaymentNotice[];
  cancelReason: string | null;
  /** A "payment initiated" not yet acted on: the next run restarts the ladder. Absent in older runs. */
  restartLadder?: boolean;
  /** A delayed start's first check not yet made (ISO): the next run keeps its time. */
  firstCheckAt?: string | null;
}

export interface OrderWorkflowResult {
  orderId: string;
  /** How the payment ended; refunds come later, in their own workflows. */
  status: Extract<OrderStatus, 'PAID' | 'CLOSED' | 'NEEDS_REVIEW'>;
  settledBy: SettledBy | null;
  pollAttempts: number;
  discrepancies: DiscrepancyKind[];
}

/**
 * The state an order's workflow starts with. Also what `payrecon query` and `order show` report while a
 * workflow started with a delay (ORDER_START_DELAY=first-step) has run no task and so answers no query.
 */
export function initialOrderState(input: OrderWorkflowInput): OrderWorkflowState {
  return {
    orderId: input.orderId,
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
}
