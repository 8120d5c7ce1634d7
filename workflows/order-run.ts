import { ActivityFailure, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { DiscrepancyKind, MerchantEventRef, PaymentNotice, TradeSnapshot } from '../src/domain';
import {
  type CarriedState,
  initialOrderState,
  type OrderPhase,
  type OrderWorkflowInput,
  type OrderWorkflowResult,
  type OrderWorkflowState,
} from './order-contract';
import { PaymentStatusKey, SettledByKey } from './search-attributes';

const DEFAULT_HISTORY_LIMIT = 2_000;
/** The most recent notice ids carried over continue-as-new. */
const SEEN_IDS_CARRIED = 200;

/**
 * What one run of the order workflow holds (workflows/order.ts): the queryable state, the inbox of
 * notices and the signals' flags, and how they show in search attributes and across continue-as-new.
 */
export class OrderRun {
  readonly state: OrderWorkflowState;
  readonly deadline: number;
  readonly seenMessageIds: Set<string>;
  readonly inbox: PaymentNotice[];
  cancelReason: string | null;
  restartLadder: boolean;
  /** The trade the order settled on (paid, or held for review with): a later notice of another is flagged. */
  orderTradeNo: string | null = null;
  /** The merchant event of the order's final transition, delivered once the workflow settles. */
  merchantEvent: MerchantEventRef | null = null;
  /** When the first check is due if the start was delayed by the first step (ms); null once used. */
  firstCheckAt: number | null;

  constructor(readonly input: OrderWorkflowInput) {
    const { carried } = input;
    this.state = carried?.state ?? initialOrderState(input);
    this.deadline = Date.parse(input.payDeadline);
    this.seenMessageIds = new Set(carried?.seenMessageIds ?? []);
    this.inbox = [...(carried?.pendingNotices ?? [])];
    this.cancelReason = carried?.cancelReason ?? null;
    this.restartLadder = carried?.restartLadder ?? false;
    const firstCheckAt = carried ? carried.firstCheckAt : input.firstCheckAt;
    this.firstCheckAt = firstCheckAt ? Date.parse(firstCheckAt) : null;
  }

  get orderId(): string {
    return this.input.orderId;
  }

  receive(notice: PaymentNotice): void {
    if (this.seenMessageIds.has(notice.messageId)) {
      this.state.duplicateNotices++;
      return;
    }
    this.seenMessageIds.add(notice.messageId);
    this.state.noticesReceived++;
    this.inbox.push(notice);
  }

  historyTooLong(): boolean {
    const info = workflowInfo();
    return (
      info.historyLength > (this.input.historyLimit ?? DEFAULT_HISTORY_LIMIT) || info.continueAsNewSuggested
    );
  }

  setPhase(phase: OrderPhase): void {
    this.state.phase = phase;
    upsertSearchAttributes([
      { key: PaymentStatusKey, value: phase === 'AWAITING_PAYMENT' ? 'UNPAID' : phase },
    ]);
  }

  noteDiscrepancy(kind: DiscrepancyKind): void {
    if (!this.state.discrepancies.includes(kind)) this.state.discrepancies.push(kind);
  }

  /**
   * What continue-as-new hands to the next run: the state and everything the signals set that the run has
   * not acted on yet (the inbox, a cancel, a ladder restart, a delayed first check), so none is lost.
   */
  carry(): CarriedState {
    this.state.generation++;
    this.state.nextCheckAt = null;
    const seenMessageIds = [...this.seenMessageIds].slice(-SEEN_IDS_CARRIED);
    return {
      state: this.state,
      seenMessageIds,
      pendingNotices: this.inbox,
      cancelReason: this.cancelReason,
      restartLadder: this.restartLadder,
      firstCheckAt: this.firstCheckAt === null ? null : new Date(this.firstCheckAt).toISOString(),
    };
  }

  /** The final phase, searchable by status and by how it was settled, and the workflow's result. */
  end(status: OrderWorkflowResult['status']): OrderWorkflowResult {
    this.state.phase = status;
    // One upsert for both: each is a history event and a visibility write on the server.
    upsertSearchAttributes([
      { key: PaymentStatusKey, value: status },
      ...(this.state.settledBy ? [{ key: SettledByKey, value: this.state.settledBy }] : []),
    ]);
    this.state.nextCheckAt = null;
    const { settledBy, pollAttempts, discrepancies } = this.state;
    return { orderId: this.orderId, status, settledBy, pollAttempts, discrepancies };
  }

  notePoll(snapshot: TradeSnapshot | null, error?: unknown): void {
    this.state.lastPoll = {
      at: new Date(Date.now()).toISOString(),
      status: snapshot?.status ?? 'ERROR',
      ...(error
        ? { error: error instanceof ActivityFailure ? String(error.cause?.message) : String(error) }
        : {}),
    };
  }
}
