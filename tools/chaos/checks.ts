import type { DiscrepancyKind, OrderStatus } from '../../src/domain';
import type { ParkedMessage as Parked } from '../../src/mq/parking';
import { SCENARIOS, type ScenarioName } from '../scenarios';
import type { OrderPlan } from './plan';

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
}

export interface TradeRowLite {
  orderId: string;
  tradeNo: string;
  status: string;
  amount: number;
  paidAmount: number | null;
  paidAt: Date | null;
  closedAt: Date | null;
}

export interface EventRowLite {
  orderId: string;
  source: string;
  messageId: string | null;
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

/** One transition activity (markOrderPaid, closeOrder, holdOrderForReview) as the history has it. */
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
  if (trade.status === 'TRADE_CLOSED') return { status: 'CLOSED', discrepancies: [] };
  if (trade.status === 'TRADE_SUCCESS' || trade.status === 'TRADE_FINISHED') {
    if (trade.closedAt && trade.paidAt && trade.closedAt.getTime() <= trade.paidAt.getTime()) {
      return { status: 'CLOSED', discrepancies: ['PAID_AFTER_CLOSE'] };
    }
    if (trade.paidAmount !== orderAmount)
      return { status: 'NEEDS_REVIEW', discrepancies: ['AMOUNT_MISMATCH'] };
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
    const expected = SCENARIOS[plan.kind];
    if (!trade || !order) continue; // reported by checkFinalStates
    const truth = providerTruth(trade, order.amount);
    if (trade.status !== expected.trade || ('status' in truth && truth.status !== expected.status)) {
      violations.push(
        `${plan.orderId} (${plan.kind}): trade is ${trade.status}${'status' in truth ? ` (means ${truth.status})` : ''}, the plan expects ${expected.trade} (${expected.status})`,
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
 *    transition activity in it (markOrderPaid, closeOrder, holdOrderForReview) reported that same
 *    status, at most one of them with `changed: true`. A result naming another status means the row was
 *    in another state at that moment. Zero `changed: true` happens legitimately when the worker was
 *    killed after the UPDATE but before reporting it: the retry then finds the row already moved.
 */
export function checkSingleTransition(
  planned: PlannedOrder[],
  orders: Map<string, OrderRowLite>,
  workflows: Map<string, WorkflowEvidence>,
): CheckResult {
  const violations: string[] = [];
  let historiesChecked = 0;
  let confirmedByRetry = 0;
  for (const plan of planned) {
    const order = orders.get(plan.orderId);
    if (!order) continue;
    const id = `${plan.orderId} (${plan.kind})`;
    if (order.status === 'PAID' && (!order.paidAt || order.closedAt)) {
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
    if (workflow.resultStatus !== order.status) {
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
      if (t.status !== order.status) {
        violations.push(
          `${id}: ${t.activity} saw the order ${t.status}${t.changed ? ' (changed it)' : ''}, it ended ${order.status}`,
        );
      }
    }
  }
  return result('no order changed status twice', planned.length, violations, {
    'workflow histories checked': historiesChecked,
    'transition confirmed only by a retry': confirmedByRetry,
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
    if (orders.get(plan.orderId)?.status === SCENARIOS[plan.kind].status) row.asExpected++;
    rows.set(plan.kind, row);
  }
  return [...rows].map(([kind, row]) => ({ kind, ...row, expectation: SCENARIOS[kind] }));
}
