import type { DiscrepancyKind, OrderStatus } from '../../src/domain';
import type { ParkedMessage as Parked } from '../../src/mq/parking';
import { checkDeliveries, type DeliveryView } from '../merchant/client';
import { type MessageFate, SCENARIOS, type ScenarioName } from '../scenarios';
import {
  expectedStatus,
  expectedTrade,
  type OrderPlan,
  REFUND_SCENARIOS,
  type RefundKind,
  SHOPS,
  type ShopName,
} from './plan';

/**
 * The chaos run's invariants, as pure functions over rows read at the end of the run: the orders and
 * discrepancies (payrecon's tables), the provider's trades (the simulator's table), payment_events, the
 * messages the simulator says it published, the parking queue and each workflow's history.
 */

export interface OrderRowLite {
  id: string;
  amount: number;
  status: OrderStatus;
  settledBy: string | null;
  tradeNo: string | null;
  paidAt: Date | null;
  closedAt: Date | null;
  /** Minor units refunded so far. */
  refundedAmount: number;
}

export interface TradeRowLite {
  orderId: string;
  tradeNo: string;
  status: string;
  amount: number;
  paidAmount: number | null;
  paidAt: Date | null;
  closedAt: Date | null;
  /** What the provider's succeeded refunds gave back. */
  refundedAmount: number;
}

export interface EventRowLite {
  orderId: string;
  source: string;
  messageId: string | null;
}

/** payrecon's refunds row. */
export interface RefundRowLite {
  id: string;
  orderId: string;
  outRequestNo: string;
  amount: number;
  status: string;
  settledBy: string | null;
}

/** The simulator's refund (provider.refunds): the provider's truth. */
export interface ProviderRefundLite {
  orderId: string;
  outRequestNo: string;
  amount: number;
  status: string;
  /** How many times the money went back: 0 or 1, never more. */
  executions: number;
}

/** payrecon's merchant_events row. */
export interface MerchantEventLite {
  id: string;
  orderId: string;
  sequence: number;
  type: string;
  status: string;
  endpointId: string | null;
}

/** payrecon's notification_attempts row. */
export interface AttemptRowLite {
  eventId: string;
  attempt: number;
  startedAt: Date;
  durationMs: number;
  httpStatus: number | null;
  errorKind: string | null;
}

/** What a refund's workflow history says. */
export interface RefundEvidence {
  refundId: string;
  orderId: string;
  execution: string;
  /** RefundState.phase of the result: SUCCEEDED, FAILED, UNKNOWN. */
  phase: string | null;
  /** Refund queries the workflow made. */
  queries: number;
  /** What the provider answered the submit (SUCCESS, FAILED, PROCESSING); null when not in the history. */
  submitted: string | null;
  /** Each applyRefund result in the history. */
  applied: {
    changed: boolean;
    orderStatus: string | null;
    refundedAmount: number | null;
    eventId: string | null;
  }[];
}

/** What the driver did for one order's refunds (tools/chaos/lifecycle.ts `runRefunds`). */
export interface RefundRecord {
  orderId: string;
  kind: RefundKind;
  /** refunds.id of the accepted requests. */
  refundIds: string[];
  /** Requests requestRefund refused (RefundRefused): expected only for the racing pair. */
  refused: string[];
  /** The paid notice published again after the refund settled (message ids, copies each). */
  republished: { messageId: string; copies: number; original: boolean }[];
  errors: string[];
}

export interface DiscrepancyRowLite {
  orderId: string;
  kind: string;
}

/** A message the simulator published (its pay response): `copies` sends of one message id. */
export interface PublishedMessage {
  orderId: string;
  messageId: string;
  copies: number;
}

/** A message found in the parking queue (src/mq/parking.ts); `reason` null when it carries none. */
export type ParkedMessage = Pick<Parked, 'messageId' | 'reason'>;

/**
 * One transition activity (markOrderPaid, markOrderPaidByNotice, closeOrder, holdOrderForReview) as the
 * history has it.
 */
export interface TransitionEvidence {
  activity: string;
  changed: boolean;
  status: string | null;
}

/** What an order's workflow history says. */
export interface WorkflowEvidence {
  orderId: string;
  /** COMPLETED, FAILED, TERMINATED, RUNNING, ...; from the last event of the latest run. */
  execution: string;
  /** The workflow's result (OrderWorkflowResult.status), when it completed. */
  resultStatus: string | null;
  transitions: TransitionEvidence[];
}

export interface QueueDepths {
  /** Ready messages in the work queue. */
  work: number;
  /** Messages waiting in the retry queue. */
  retry: number;
}

export interface CheckResult {
  name: string;
  /** How many items (orders, messages) the check looked at. */
  checked: number;
  violations: string[];
  /** Extra numbers worth printing. */
  notes?: Record<string, number>;
}

/**
 * What the provider's trade says the order must be: never paid (closed) → CLOSED; paid after it was
 * closed → CLOSED (plus PAID_AFTER_CLOSE); paid a different amount → NEEDS_REVIEW; paid → PAID. A trade
 * still waiting for payment after the deadline is itself a violation (the workflow closes it).
 */
export function providerTruth(
  trade: TradeRowLite,
  orderAmount: number,
): { status: Exclude<OrderStatus, 'UNPAID'>; discrepancies: DiscrepancyKind[] } | { error: string } {
  // A trade refunded in full is TRADE_CLOSED too (as at Alipay): its refunded amount tells them apart.
  if (trade.status === 'TRADE_CLOSED' && trade.refundedAmount > 0) {
    if (trade.refundedAmount !== trade.paidAmount)
      return {
        error: `trade ${trade.tradeNo} is closed with ${trade.refundedAmount} of ${trade.paidAmount} refunded`,
      };
    return { status: 'REFUNDED', discrepancies: [] };
  }
  if (trade.status === 'TRADE_CLOSED') return { status: 'CLOSED', discrepancies: [] };
  if (trade.status === 'TRADE_SUCCESS' || trade.status === 'TRADE_FINISHED') {
    if (trade.closedAt && trade.paidAt && trade.closedAt.getTime() <= trade.paidAt.getTime()) {
      return { status: 'CLOSED', discrepancies: ['PAID_AFTER_CLOSE'] };
    }
    if (trade.paidAmount !== orderAmount)
      return { status: 'NEEDS_REVIEW', discrepancies: ['AMOUNT_MISMATCH'] };
    if (trade.refundedAmount > 0) return { status: 'PARTIALLY_REFUNDED', discrepancies: [] };
    return { status: 'PAID', discrepancies: [] };
  }
  return { error: `trade ${trade.tradeNo} is still ${trade.status} after the deadline` };
}

/** Builds a result; every violation is kept (the report prints the first few). */
function result(
  name: string,
  checked: number,
  violations: string[],
  notes?: Record<string, number>,
): CheckResult {
  return { name, checked, violations, ...(notes ? { notes } : {}) };
}

export interface PlannedOrder extends OrderPlan {
  orderId: string;
}

/** An order as violations name it: id, payment fault, refund kind. */
function describe(plan: PlannedOrder): string {
  return `${plan.orderId} (${plan.kind}${plan.refund ? `, refund ${plan.refund}` : ''})`;
}

/** The payment's part of a status: a refunded order was PAID first. */
function paymentPhase(status: string | null): string | null {
  return status === 'PARTIALLY_REFUNDED' || status === 'REFUNDED' ? 'PAID' : status;
}

/** Every order's final state is what the provider knows (and no order is left UNPAID). */
export function checkFinalStates(
  planned: PlannedOrder[],
  orders: Map<string, OrderRowLite>,
  trades: Map<string, TradeRowLite>,
): CheckResult {
  const violations: string[] = [];
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    const trade = trades.get(plan.orderId);
    if (!order || !trade) {
      violations.push(`${plan.orderId} (${plan.kind}): ${order ? 'no trade' : 'no order row'}`);
      continue;
    }
    const truth = providerTruth(trade, order.amount);
    if ('error' in truth) {
      violations.push(`${plan.orderId} (${plan.kind}): ${truth.error}; order is ${order.status}`);
      continue;
    }
    if (order.status !== truth.status) {
      violations.push(
        `${plan.orderId} (${plan.kind}): order is ${order.status}, provider says ${truth.status} (trade ${trade.status})`,
      );
    } else if (order.status === 'PAID' && order.tradeNo !== trade.tradeNo) {
      violations.push(
        `${plan.orderId} (${plan.kind}): paid with trade ${order.tradeNo}, provider has ${trade.tradeNo}`,
      );
    }
  }
  return result('final state matches the provider', planned.length, violations);
}

/**
 * The run did what the plan says (so the other checks test the faults they claim to): each trade ends
 * as its scenario says (tools/scenarios.ts), every planned payment was made.
 */
export function checkPlanCarriedOut(
  planned: PlannedOrder[],
  trades: Map<string, TradeRowLite>,
  orders: Map<string, OrderRowLite>,
  driverErrors: string[],
): CheckResult {
  const violations = [...driverErrors];
  for (const plan of planned) {
    const trade = trades.get(plan.orderId);
    const order = orders.get(plan.orderId);
    if (!trade || !order) continue; // reported by checkFinalStates
    const truth = providerTruth(trade, order.amount);
    const [tradeStatus, status] = [expectedTrade(plan), expectedStatus(plan)];
    if (trade.status !== tradeStatus || ('status' in truth && truth.status !== status)) {
      violations.push(
        `${describe(plan)}: trade is ${trade.status}${'status' in truth ? ` (means ${truth.status})` : ''}, the plan expects ${tradeStatus} (${status})`,
      );
    }
  }
  return result('faults applied as planned', planned.length, violations);
}

/** A forged, corrupt or dropped notification never settles an order: only a poll can. */
export function checkSettledBy(planned: PlannedOrder[], orders: Map<string, OrderRowLite>): CheckResult {
  const violations: string[] = [];
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    if (!order || order.status === 'UNPAID') continue;
    const allowed: string[] = SCENARIOS[plan.kind].settledBy;
    if (!allowed.includes(order.settledBy ?? '-')) {
      violations.push(
        `${plan.orderId} (${plan.kind}): settled by ${order.settledBy}, allowed ${allowed.join('|')}`,
      );
    }
  }
  return result('settled only by a path that may settle it', planned.length, violations);
}

/**
 * No order changed status twice. The schema keeps no status history, so two sources of evidence:
 *
 * 1. The row (every order): each transition sets its own column and none clears another's (PAID sets
 *    paid_at, CLOSED closed_at, NEEDS_REVIEW neither), so PAID→CLOSED or CLOSED→PAID leaves both set.
 * 2. The workflow history (every order given): the workflow completed with the row's status, and every
 *    transition activity in it (markOrderPaid or markOrderPaidByNotice, closeOrder, holdOrderForReview)
 *    reported that same status, at most one of them with `changed: true`. A result naming another
 *    status means the row was in another state at that moment. Zero `changed: true` happens
 *    legitimately when the worker was killed after the UPDATE but before reporting it: the retry then
 *    finds the row already moved.
 */
export function checkSingleTransition(
  planned: PlannedOrder[],
  orders: Map<string, OrderRowLite>,
  workflows: Map<string, WorkflowEvidence>,
  refunds: RefundEvidence[] = [],
): CheckResult {
  const violations: string[] = [];
  let historiesChecked = 0;
  let confirmedByRetry = 0;
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    if (!order) continue;
    const id = describe(plan);
    const paidFamily = order.status === 'PAID' || paymentPhase(order.status) === 'PAID';
    if (paidFamily && (!order.paidAt || order.closedAt)) {
      violations.push(
        `${id}: PAID with paid_at ${order.paidAt?.toISOString()} and closed_at ${order.closedAt?.toISOString()}`,
      );
    } else if (order.status === 'CLOSED' && (!order.closedAt || order.paidAt)) {
      violations.push(
        `${id}: CLOSED with closed_at ${order.closedAt?.toISOString()} and paid_at ${order.paidAt?.toISOString()}`,
      );
    } else if (order.status === 'NEEDS_REVIEW' && (order.paidAt || order.closedAt)) {
      violations.push(`${id}: NEEDS_REVIEW with paid_at or closed_at set`);
    }
    const workflow = workflows.get(plan.orderId);
    if (!workflow) continue;
    historiesChecked++;
    if (workflow.execution !== 'COMPLETED') {
      violations.push(`${id}: workflow is ${workflow.execution}, not COMPLETED`);
      continue;
    }
    // A refund comes after the order's workflow ended PAID (or its retried write saw the refund already).
    if (paymentPhase(workflow.resultStatus) !== paymentPhase(order.status)) {
      violations.push(`${id}: workflow ended ${workflow.resultStatus}, the order row is ${order.status}`);
    }
    const changed = workflow.transitions.filter((t) => t.changed);
    if (changed.length > 1) {
      violations.push(
        `${id}: ${changed.length} transitions changed the row: ${changed.map((t) => `${t.activity}→${t.status}`).join(', ')}`,
      );
    }
    if (workflow.transitions.length === 0) violations.push(`${id}: no transition activity in the history`);
    else if (changed.length === 0) confirmedByRetry++;
    for (const t of workflow.transitions) {
      if (paymentPhase(t.status) !== paymentPhase(order.status)) {
        violations.push(
          `${id}: ${t.activity} saw the order ${t.status}${t.changed ? ' (changed it)' : ''}, it ended ${order.status}`,
        );
      }
    }
  }
  // Refunds: each refund's workflow applied it at most once, and the order's refunded amount only grew,
  // PARTIALLY_REFUNDED until the last fen, then REFUNDED.
  const byOrder = new Map<string, RefundEvidence[]>();
  for (const r of refunds) byOrder.set(r.orderId, [...(byOrder.get(r.orderId) ?? []), r]);
  let refundRetries = 0;
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    const mine = byOrder.get(plan.orderId) ?? [];
    if (!order || mine.length === 0) continue;
    const id = describe(plan);
    const changes: { status: string | null; amount: number | null }[] = [];
    for (const r of mine) {
      if (r.execution !== 'COMPLETED')
        violations.push(`${id}: refund workflow ${r.refundId} is ${r.execution}`);
      const changed = r.applied.filter((a) => a.changed);
      if (changed.length > 1) violations.push(`${id}: refund ${r.refundId} applied ${changed.length} times`);
      if (r.applied.length > 0 && changed.length === 0) refundRetries++;
      for (const a of changed) changes.push({ status: a.orderStatus, amount: a.refundedAmount });
    }
    changes.sort((a, b) => (a.amount ?? 0) - (b.amount ?? 0));
    for (const c of changes) {
      const should = c.amount === order.amount ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
      if (c.status !== should || (c.amount ?? 0) > order.amount)
        violations.push(
          `${id}: a refund left the order ${c.status} with ${c.amount} of ${order.amount} refunded`,
        );
    }
    const last = changes[changes.length - 1];
    if (last && last.amount !== order.refundedAmount)
      violations.push(`${id}: refunds reached ${last.amount}, the row says ${order.refundedAmount}`);
  }
  return result('every order only moved forward (one change per transition)', planned.length, violations, {
    'order workflow histories checked': historiesChecked,
    'transition confirmed only by a retry': confirmedByRetry,
    'refund workflow histories checked': refunds.length,
    'refund confirmed only by a retry': refundRetries,
  });
}

/**
 * Every discrepancy the provider's truth implies is recorded exactly once (PAID_AFTER_CLOSE for a trade
 * paid after it was closed, AMOUNT_MISMATCH for a wrong amount), and no other discrepancy exists.
 */
export function checkDiscrepancies(
  planned: PlannedOrder[],
  orders: Map<string, OrderRowLite>,
  trades: Map<string, TradeRowLite>,
  discrepancies: DiscrepancyRowLite[],
): CheckResult {
  const counts = new Map<string, number>();
  for (const d of discrepancies)
    counts.set(`${d.orderId} ${d.kind}`, (counts.get(`${d.orderId} ${d.kind}`) ?? 0) + 1);
  const violations: string[] = [];
  let expectedTotal = 0;
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    const trade = trades.get(plan.orderId);
    if (!order || !trade) continue;
    const truth = providerTruth(trade, order.amount);
    const expected: string[] = 'error' in truth ? [] : truth.discrepancies;
    expectedTotal += expected.length;
    for (const kind of expected) {
      const n = counts.get(`${plan.orderId} ${kind}`) ?? 0;
      if (n !== 1)
        violations.push(`${plan.orderId} (${plan.kind}): ${kind} recorded ${n} times, expected once`);
    }
  }
  const ids = new Map(planned.map((p) => [p.orderId, p]));
  for (const [key, n] of counts) {
    const [orderId = '', kind = ''] = key.split(' ');
    const plan = ids.get(orderId);
    const order = orders.get(orderId);
    const trade = trades.get(orderId);
    const truth = order && trade ? providerTruth(trade, order.amount) : null;
    const expected: string[] = truth && !('error' in truth) ? truth.discrepancies : [];
    if (!expected.includes(kind)) {
      violations.push(`${orderId} (${plan?.kind ?? 'not in the plan'}): unexpected ${kind} (${n}×)`);
    }
  }
  return result('every discrepancy recorded exactly once', planned.length, violations, {
    'discrepancies expected': expectedTotal,
    'discrepancies recorded': discrepancies.length,
  });
}

export interface MessageAccounting {
  published: number;
  copies: number;
  recorded: number;
  parked: number;
  parkedByReason: Record<string, number>;
  lost: number;
  workQueue: number;
  retryQueue: number;
  /** Parked messages whose id the simulator never reported (e.g. a pay call that failed mid-publish). */
  parkedUnknown: number;
  /** mq events of this run's orders whose id the simulator never reported. */
  recordedUnknown: number;
  /** Payments whose notification the broker did not confirm (the simulator answered HTTP 502). */
  unconfirmed?: number;
}

/**
 * Every message the simulator published (a message id; duplicates share it) was either settled into a
 * workflow, i.e. recorded in payment_events with source mq (by the workflow, or by the consumer for a
 * workflow that had ended), or is in the parking queue with a reason; nothing is left in the work or
 * retry queue once the run has drained. Dropped notifications were never published and are not counted.
 */
export function checkMessages(
  published: PublishedMessage[],
  events: EventRowLite[],
  parked: ParkedMessage[],
  queues: QueueDepths,
): { check: CheckResult; accounting: MessageAccounting } {
  const recorded = new Set(events.filter((e) => e.source === 'mq' && e.messageId).map((e) => e.messageId));
  const parkedReasons = new Map<string, Set<string | null>>();
  for (const p of parked) {
    if (!p.messageId) continue;
    const reasons = parkedReasons.get(p.messageId) ?? new Set();
    reasons.add(p.reason);
    parkedReasons.set(p.messageId, reasons);
  }
  const violations: string[] = [];
  const publishedIds = new Set<string>();
  const accounting: MessageAccounting = {
    published: 0,
    copies: 0,
    recorded: 0,
    parked: 0,
    parkedByReason: {},
    lost: 0,
    workQueue: queues.work,
    retryQueue: queues.retry,
    parkedUnknown: 0,
    recordedUnknown: 0,
  };
  for (const message of published) {
    if (publishedIds.has(message.messageId)) continue;
    publishedIds.add(message.messageId);
    accounting.published++;
    accounting.copies += message.copies;
    const reasons = [...(parkedReasons.get(message.messageId) ?? [])];
    if (recorded.has(message.messageId)) accounting.recorded++;
    if (reasons.length > 0) accounting.parked++;
    for (const reason of reasons) {
      const key = reason ?? '(no reason)';
      accounting.parkedByReason[key] = (accounting.parkedByReason[key] ?? 0) + 1;
      if (reason === null)
        violations.push(`${message.orderId}: message ${message.messageId} parked without a reason`);
    }
    if (!recorded.has(message.messageId) && reasons.length === 0) {
      accounting.lost++;
      violations.push(`${message.orderId}: message ${message.messageId} neither recorded nor parked`);
    }
  }
  for (const id of parkedReasons.keys()) if (!publishedIds.has(id)) accounting.parkedUnknown++;
  for (const id of recorded) if (id && !publishedIds.has(id)) accounting.recordedUnknown++;
  if (queues.work > 0) violations.push(`${queues.work} messages still in the work queue after the drain`);
  if (queues.retry > 0) violations.push(`${queues.retry} messages still in the retry queue after the drain`);
  return {
    check: result(
      'every published message settled or parked with a reason',
      accounting.published,
      violations,
    ),
    accounting,
  };
}

/**
 * Each message went where its kind says: a valid notification is recorded (not only parked), a corrupt
 * or forged one is parked for the right reason and never recorded, and an order whose notification was
 * dropped (or whose buyer never paid) has no mq event and nothing parked. Orders in `unconfirmed` (the
 * simulator could not get its notification confirmed) are skipped: where that message went is unknown.
 */
export function checkMessageRouting(
  planned: PlannedOrder[],
  published: PublishedMessage[],
  events: EventRowLite[],
  parked: ParkedMessage[],
  unconfirmed: ReadonlySet<string> = new Set(),
): CheckResult {
  const byOrder = new Map<string, PublishedMessage[]>();
  for (const m of published) byOrder.set(m.orderId, [...(byOrder.get(m.orderId) ?? []), m]);
  const mqEventsByOrder = new Map<string, string[]>();
  for (const e of events) {
    if (e.source !== 'mq' || !e.messageId) continue;
    mqEventsByOrder.set(e.orderId, [...(mqEventsByOrder.get(e.orderId) ?? []), e.messageId]);
  }
  const parkedById = new Map<string, (string | null)[]>();
  for (const p of parked)
    if (p.messageId) parkedById.set(p.messageId, [...(parkedById.get(p.messageId) ?? []), p.reason]);

  const violations: string[] = [];
  for (const plan of planned) {
    if (unconfirmed.has(plan.orderId)) continue;
    const fate = SCENARIOS[plan.kind].message;
    const mine = byOrder.get(plan.orderId) ?? [];
    const recorded = new Set(mqEventsByOrder.get(plan.orderId) ?? []);
    const id = `${plan.orderId} (${plan.kind})`;
    if (fate === 'none') {
      if (mine.length > 0) violations.push(`${id}: the simulator published ${mine.length} messages`);
      if (recorded.size > 0) violations.push(`${id}: ${recorded.size} mq events recorded`);
      continue;
    }
    if (mine.length === 0) {
      violations.push(`${id}: the simulator published no message`);
      continue;
    }
    for (const message of mine) {
      const reasons = parkedById.get(message.messageId) ?? [];
      if (fate === 'recorded') {
        if (!recorded.has(message.messageId)) {
          violations.push(
            `${id}: valid message ${message.messageId} not recorded (parked: ${reasons.join(',') || 'no'})`,
          );
        }
        if (reasons.length > 0)
          violations.push(`${id}: valid message ${message.messageId} also parked (${reasons.join(',')})`);
      } else {
        if (recorded.has(message.messageId))
          violations.push(`${id}: message ${message.messageId} was recorded`);
        const wrong = reasons.filter((r) => !fate.parked.includes(r ?? ''));
        if (reasons.length === 0 || wrong.length > 0) {
          violations.push(
            `${id}: message ${message.messageId} parked for ${reasons.join(',') || 'nothing'}, expected ${fate.parked.join('|')}`,
          );
        }
      }
    }
  }
  return result('each message went where its fault says', planned.length, violations, {
    'orders skipped: notification not confirmed (HTTP 502)': unconfirmed.size,
  });
}

/** The fault mix and how many orders of each kind ended as their scenario says. */
export function faultMixSummary(planned: PlannedOrder[], orders: Map<string, OrderRowLite>) {
  const rows = new Map<ScenarioName, { orders: number; asExpected: number }>();
  for (const plan of planned) {
    const row = rows.get(plan.kind) ?? { orders: 0, asExpected: 0 };
    row.orders++;
    if (orders.get(plan.orderId)?.status === expectedStatus(plan)) row.asExpected++;
    rows.set(plan.kind, row);
  }
  return [...rows].map(([kind, row]) => ({ kind, ...row, expectation: SCENARIOS[kind] }));
}

// --- refunds ---------------------------------------------------------------------------------------------

/**
 * Money: per order, refunded ≤ paid, and the same on every side: the provider's trade, its succeeded
 * refunds, payrecon's order row and payrecon's succeeded refunds. Per refund: the provider executed it
 * at most once (executions 0 or 1, 1 exactly when it succeeded), payrecon's row says what the
 * provider's says, and nothing was refunded that payrecon has no row for.
 */
export function checkRefundMoney(
  planned: PlannedOrder[],
  orders: Map<string, OrderRowLite>,
  trades: Map<string, TradeRowLite>,
  refunds: RefundRowLite[],
  providerRefunds: ProviderRefundLite[],
): CheckResult {
  const violations: string[] = [];
  const ours = new Map(refunds.map((r) => [r.outRequestNo, r]));
  const theirs = new Map(providerRefunds.map((r) => [r.outRequestNo, r]));
  const sum = (rows: { amount: number }[]) => rows.reduce((total, r) => total + r.amount, 0);
  for (const p of providerRefunds) {
    if (p.executions > 1)
      violations.push(`${p.orderId}: refund ${p.outRequestNo} executed ${p.executions} times`);
    if (p.executions !== (p.status === 'SUCCESS' ? 1 : 0))
      violations.push(
        `${p.orderId}: refund ${p.outRequestNo} is ${p.status} with ${p.executions} executions`,
      );
    if (!ours.has(p.outRequestNo))
      violations.push(`${p.orderId}: the provider has refund ${p.outRequestNo}, payrecon none`);
  }
  const agree: Record<string, string> = { SUCCEEDED: 'SUCCESS', FAILED: 'FAILED' };
  for (const r of refunds) {
    const p = theirs.get(r.outRequestNo);
    if (!p) {
      violations.push(`${r.orderId}: refund ${r.outRequestNo} (${r.status}) never reached the provider`);
    } else if (agree[r.status] !== p.status || p.amount !== r.amount) {
      violations.push(
        `${r.orderId}: refund ${r.outRequestNo} is ${r.status} ${r.amount} here, ${p.status} ${p.amount} at the provider`,
      );
    }
  }
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    const trade = trades.get(plan.orderId);
    if (!order || !trade) continue;
    const paid = trade.paidAmount ?? 0;
    const ourSum = sum(refunds.filter((r) => r.orderId === plan.orderId && r.status === 'SUCCEEDED'));
    const theirSum = sum(providerRefunds.filter((r) => r.orderId === plan.orderId && r.status === 'SUCCESS'));
    if (order.refundedAmount > order.amount || order.refundedAmount > paid)
      violations.push(
        `${describe(plan)}: refunded ${order.refundedAmount} of ${order.amount} (paid ${paid})`,
      );
    if (new Set([order.refundedAmount, trade.refundedAmount, ourSum, theirSum]).size > 1) {
      violations.push(
        `${describe(plan)}: refunded ${order.refundedAmount} (order row), ${ourSum} (payrecon's refunds), ${trade.refundedAmount} (provider's trade), ${theirSum} (provider's refunds)`,
      );
    }
  }
  return result('refunded ≤ paid, no refund executed twice', planned.length, violations, {
    'refunds at the provider': providerRefunds.length,
    '  succeeded (executed once)': providerRefunds.filter((r) => r.status === 'SUCCESS').length,
    '  failed': providerRefunds.filter((r) => r.status === 'FAILED').length,
  });
}

/**
 * Each order's refunds ended as their kind says (tools/chaos/plan.ts REFUND_SCENARIOS): how many
 * succeeded and failed, settled only by a path that may settle them, the racing pair with exactly one
 * refused, a refund the provider kept PROCESSING past a ladder step found by a query.
 */
export function checkRefundPlans(
  planned: PlannedOrder[],
  refunds: RefundRowLite[],
  records: RefundRecord[],
  evidence: RefundEvidence[],
): CheckResult {
  const violations: string[] = [];
  const recordOf = new Map(records.map((r) => [r.orderId, r]));
  let refused = 0;
  let queriedWhileProcessing = 0;
  for (const plan of planned) {
    const mine = refunds.filter((r) => r.orderId === plan.orderId);
    if (!plan.refund) {
      if (mine.length > 0) violations.push(`${describe(plan)}: ${mine.length} refunds, none planned`);
      continue;
    }
    const scenario = REFUND_SCENARIOS[plan.refund];
    const record = recordOf.get(plan.orderId);
    const id = describe(plan);
    if (!record) {
      violations.push(`${id}: the refunds were never asked for`);
      continue;
    }
    for (const error of record.errors) violations.push(`${id}: ${error}`);
    const succeeded = mine.filter((r) => r.status === 'SUCCEEDED').length;
    const failed = mine.filter((r) => r.status === 'FAILED').length;
    if (
      succeeded !== scenario.succeeded ||
      failed !== scenario.failed ||
      mine.length !== succeeded + failed
    ) {
      violations.push(
        `${id}: refunds ${mine.map((r) => r.status).join(', ') || 'none'}, expected ${scenario.succeeded} SUCCEEDED and ${scenario.failed} FAILED`,
      );
    }
    for (const r of mine) {
      if (r.settledBy && !scenario.settledBy.includes(r.settledBy as never))
        violations.push(
          `${id}: refund ${r.outRequestNo} settled by ${r.settledBy}, allowed ${scenario.settledBy.join('|')}`,
        );
    }
    const expectRefused = scenario.requests.mode === 'racing' ? scenario.requests.shares.length - 1 : 0;
    refused += record.refused.length;
    if (record.refused.length !== expectRefused)
      violations.push(`${id}: ${record.refused.length} requests refused, expected ${expectRefused}`);
    const histories = evidence.filter((e) => e.orderId === plan.orderId);
    if (scenario.queried && histories.length > 0 && !histories.some((e) => e.queries > 0))
      violations.push(`${id}: no refund query in the history, though no valid refund notice came`);
    if (
      scenario.staysProcessing &&
      histories.length > 0 &&
      !histories.some((e) => e.submitted === 'PROCESSING')
    )
      violations.push(`${id}: the provider did not answer the submit PROCESSING`);
    if (scenario.staysProcessing && histories.some((e) => e.queries > 0)) queriedWhileProcessing++;
  }
  return result('each refund ended as its kind says', planned.filter((p) => p.refund).length, violations, {
    'refund requests refused (the racing second one)': refused,
    'refunds kept PROCESSING and queried on the ladder': queriedWhileProcessing,
  });
}

/**
 * The refund notices and the paid notices published again after a refund went where their fault says:
 * valid ones recorded once (payment_events, source mq) and not parked; forged or corrupt ones parked
 * for the right reason and never recorded; dropped ones never published. Each order's ended refunds
 * (succeeded or failed) have one notice each.
 */
export function checkLifecycleRouting(
  planned: PlannedOrder[],
  refunds: RefundRowLite[],
  refundNotices: PublishedMessage[],
  droppedNotices: { orderId: string; messageId: string }[],
  records: RefundRecord[],
  events: EventRowLite[],
  parked: ParkedMessage[],
): CheckResult {
  const recordedCount = new Map<string, number>();
  for (const e of events) {
    if (e.source === 'mq' && e.messageId)
      recordedCount.set(e.messageId, (recordedCount.get(e.messageId) ?? 0) + 1);
  }
  const parkedById = new Map<string, (string | null)[]>();
  for (const p of parked)
    if (p.messageId) parkedById.set(p.messageId, [...(parkedById.get(p.messageId) ?? []), p.reason]);
  const violations: string[] = [];
  const expectFate = (id: string, messageId: string, fate: MessageFate) => {
    const reasons = parkedById.get(messageId) ?? [];
    const n = recordedCount.get(messageId) ?? 0;
    if (fate === 'recorded') {
      if (n !== 1) violations.push(`${id}: valid message ${messageId} recorded ${n} times`);
      if (reasons.length > 0)
        violations.push(`${id}: valid message ${messageId} parked (${reasons.join(',')})`);
    } else if (fate !== 'none') {
      if (n > 0) violations.push(`${id}: message ${messageId} was recorded`);
      const wrong = reasons.filter((r) => !fate.parked.includes(r ?? ''));
      if (reasons.length === 0 || wrong.length > 0)
        violations.push(
          `${id}: message ${messageId} parked for ${reasons.join(',') || 'nothing'}, expected ${fate.parked.join('|')}`,
        );
    }
  };
  const noticesOf = new Map<string, PublishedMessage[]>();
  for (const m of refundNotices) noticesOf.set(m.orderId, [...(noticesOf.get(m.orderId) ?? []), m]);
  const droppedOf = new Map<string, number>();
  for (const d of droppedNotices) droppedOf.set(d.orderId, (droppedOf.get(d.orderId) ?? 0) + 1);
  let checked = 0;
  for (const plan of planned) {
    if (!plan.refund) continue;
    const id = describe(plan);
    const scenario = REFUND_SCENARIOS[plan.refund];
    const ended = refunds.filter((r) => r.orderId === plan.orderId && r.status !== 'PROCESSING').length;
    const mine = noticesOf.get(plan.orderId) ?? [];
    const dropped = droppedOf.get(plan.orderId) ?? 0;
    checked += mine.length;
    if (scenario.notice === 'none') {
      if (mine.length > 0)
        violations.push(`${id}: ${mine.length} refund notices published, all should be dropped`);
      if (dropped !== ended) violations.push(`${id}: ${dropped} refund notices dropped for ${ended} refunds`);
    } else if (mine.length !== ended) {
      violations.push(`${id}: ${mine.length} refund notices published for ${ended} ended refunds`);
    }
    for (const m of mine) expectFate(id, m.messageId, scenario.notice);
  }
  for (const record of records) {
    for (const m of record.republished) {
      checked++;
      expectFate(`${record.orderId} (refund ${record.kind}, paid notice again)`, m.messageId, 'recorded');
    }
  }
  return result('each refund notice and late paid notice went where its fault says', checked, violations, {
    'refund notices published': refundNotices.length,
    'refund notices dropped': droppedNotices.length,
    'paid notices published again after a refund': records.reduce((n, r) => n + r.republished.length, 0),
  });
}

// --- merchant notifications -----------------------------------------------------------------------------

/** The merchant event type of each final status. */
const eventType = (status: string) => `order.${status.toLowerCase()}`;

/**
 * Every final transition produced exactly one merchant event, in sequence 1..n: the payment's (paid,
 * closed, needs_review) and one per succeeded refund (partially_refunded, the last one refunded when
 * all was given back), each for the order's endpoint.
 */
export function checkMerchantEvents(
  planned: PlannedOrder[],
  orders: Map<string, OrderRowLite>,
  refunds: RefundRowLite[],
  events: MerchantEventLite[],
  endpointOf: (shop: ShopName) => string,
): CheckResult {
  const violations: string[] = [];
  const byOrder = new Map<string, MerchantEventLite[]>();
  for (const e of events) byOrder.set(e.orderId, [...(byOrder.get(e.orderId) ?? []), e]);
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    if (!order || order.status === 'UNPAID') continue;
    const id = describe(plan);
    const succeeded = refunds.filter((r) => r.orderId === plan.orderId && r.status === 'SUCCEEDED').length;
    const expected = [eventType(paymentPhase(order.status) as string)];
    for (let i = 1; i <= succeeded; i++) {
      expected.push(
        i === succeeded && order.status === 'REFUNDED' ? 'order.refunded' : 'order.partially_refunded',
      );
    }
    const mine = (byOrder.get(plan.orderId) ?? []).sort((a, b) => a.sequence - b.sequence);
    const got = mine.map((e) => e.type);
    if (got.join(',') !== expected.join(','))
      violations.push(`${id}: events ${got.join(', ') || 'none'}, expected ${expected.join(', ')}`);
    mine.forEach((e, i) => {
      if (e.sequence !== i + 1 || e.id !== `evt_${plan.orderId}_${e.sequence}`)
        violations.push(`${id}: event ${e.id} has sequence ${e.sequence} at position ${i + 1}`);
      if (e.endpointId !== endpointOf(plan.shop))
        violations.push(`${id}: event ${e.id} goes to ${e.endpointId}, the order's shop is ${plan.shop}`);
    });
  }
  return result('every final transition produced exactly one merchant event', planned.length, violations, {
    'merchant events': events.length,
  });
}

/**
 * Every event reached its merchant at least once, validly signed and acknowledged, every copy with
 * the event's id as `webhook-id` and the same body (checkDeliveries, tools/merchant/client.ts), in
 * sequence per order (no delivery of event n before event n−1 was acknowledged, and event n's first
 * attempt started after event n−1's last); or it is EXHAUSTED, which only a `down` shop's may be, after
 * every attempt failed and without any acknowledgement. Exhausted events are listed in the notes.
 */
export function checkMerchantDeliveries(
  planned: PlannedOrder[],
  events: MerchantEventLite[],
  attempts: AttemptRowLite[],
  deliveries: DeliveryView[],
): { check: CheckResult; exhausted: string[] } {
  const violations: string[] = [];
  const exhausted: string[] = [];
  const planOf = new Map(planned.map((p) => [p.orderId, p]));
  const attemptsOf = new Map<string, AttemptRowLite[]>();
  for (const a of attempts) attemptsOf.set(a.eventId, [...(attemptsOf.get(a.eventId) ?? []), a]);
  const deliveredIds: string[] = [];
  const byOrder = new Map<string, MerchantEventLite[]>();
  for (const e of events) {
    byOrder.set(e.orderId, [...(byOrder.get(e.orderId) ?? []), e]);
    const plan = planOf.get(e.orderId);
    if (!plan) continue;
    const mayExhaust = SHOPS[plan.shop].exhausts;
    const acked = deliveries.some((d) => d.webhookId === e.id && d.signatureValid && d.acknowledged);
    if (e.status === 'DELIVERED') {
      deliveredIds.push(e.id);
      if (mayExhaust)
        violations.push(`${describe(plan)}: ${e.id} DELIVERED by a shop that answers 500 to everything`);
    } else if (e.status === 'EXHAUSTED') {
      exhausted.push(`${e.id} (${plan.shop}, ${attemptsOf.get(e.id)?.length ?? 0} attempts)`);
      if (!mayExhaust) violations.push(`${describe(plan)}: ${e.id} EXHAUSTED at the ${plan.shop} shop`);
      if (acked) violations.push(`${describe(plan)}: ${e.id} EXHAUSTED though the merchant acknowledged it`);
    } else {
      violations.push(`${describe(plan)}: ${e.id} is ${e.status}`);
    }
  }
  // At least once, one id, one body, in order of acknowledgement.
  const { problems } = checkDeliveries(deliveries, { webhookIds: deliveredIds });
  violations.push(...problems);
  const known = new Set(events.map((e) => e.id));
  for (const d of deliveries) {
    if (d.signatureValid && d.webhookId && !known.has(d.webhookId))
      violations.push(`delivery ${d.id} of order ${d.orderId} carries an unknown webhook-id ${d.webhookId}`);
    if (!d.signatureValid)
      violations.push(`delivery ${d.id} (${d.webhookId}) failed the signature check: ${d.signatureError}`);
  }
  // Delivery start times respect the sequence.
  for (const [orderId, mine] of byOrder) {
    mine.sort((a, b) => a.sequence - b.sequence);
    for (let i = 1; i < mine.length; i++) {
      const before = attemptsOf.get((mine[i - 1] as MerchantEventLite).id) ?? [];
      const after = attemptsOf.get((mine[i] as MerchantEventLite).id) ?? [];
      const lastBefore = Math.max(...before.map((a) => a.startedAt.getTime()));
      const firstAfter = Math.min(...after.map((a) => a.startedAt.getTime()));
      if (after.length > 0 && before.length > 0 && firstAfter < lastBefore) {
        violations.push(
          `${orderId}: ${(mine[i] as MerchantEventLite).id} first tried ${new Date(firstAfter).toISOString()}, before the last attempt of ${(mine[i - 1] as MerchantEventLite).id} (${new Date(lastBefore).toISOString()})`,
        );
      }
    }
  }
  const attemptsTotal = attempts.length;
  return {
    check: result(
      'every event delivered at least once, one stable id, in sequence (or EXHAUSTED, listed)',
      events.length,
      violations,
      {
        'events delivered': deliveredIds.length,
        'events exhausted (down shop, listed)': exhausted.length,
        'delivery attempts (payrecon)': attemptsTotal,
        'deliveries logged by the merchant simulator': deliveries.length,
      },
    ),
    exhausted,
  };
}

// --- reconciliation and replay -----------------------------------------------------------------------------

/** The day's reconciliation found exactly the breaks the planted statement faults imply, nothing else. */
export function checkReconciliation(
  expected: { kind: string; ref: string; status: string }[],
  found: { kind: string; ref: string; status: string }[],
  error: string | null,
): CheckResult {
  const key = (b: { kind: string; ref: string; status: string }) => `${b.kind} ${b.ref} ${b.status}`;
  const want = new Set(expected.map(key));
  const got = new Set(found.map(key));
  const violations = error ? [error] : [];
  for (const k of want) if (!got.has(k)) violations.push(`missing break: ${k}`);
  for (const k of got) if (!want.has(k)) violations.push(`unexpected break: ${k}`);
  if (found.length !== got.size) violations.push(`${found.length - got.size} breaks found twice`);
  return result(
    'the reconciliation found exactly the injected statement faults',
    expected.length,
    violations,
    {
      'statement faults injected': expected.length,
      'breaks found': found.length,
    },
  );
}

/** Every workflow history the run fetched replays against the current workflow code. */
export function checkReplay(replayed: number, failures: string[], fetchErrors: string[]): CheckResult {
  return result('every history replays', replayed, [...fetchErrors, ...failures]);
}
