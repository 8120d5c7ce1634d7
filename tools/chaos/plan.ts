import type { DiscrepancyKind, OrderStatus, SettledBy } from '../../src/domain/index';
import type { Corruption, TradeFaults } from '../simulator/faults';

/**
 * Which order gets which fault, and when the chaos run kills what: everything here is decided up
 * front from a seed, so a failing run can be repeated exactly (`--seed`).
 */

/** A small, fast, seedable PRNG (mulberry32): good enough to spread faults, not for cryptography. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export const FAULT_KINDS = [
  'clean',
  'drop',
  'duplicate',
  'late',
  'corrupt',
  'forge',
  'wrong-amount',
  'never-pay',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * Share of the orders per fault (the mix); the rest is `clean`. The kinds are exclusive, one
 * per order, so each order's expected outcome is unambiguous.
 */
export const FAULT_MIX: Record<Exclude<FaultKind, 'clean'>, number> = {
  drop: 0.3,
  duplicate: 0.2,
  late: 0.1,
  corrupt: 0.05,
  forge: 0.03,
  'wrong-amount': 0.02,
  'never-pay': 0.1,
};

/** How an order's notification should end up on the MQ path. */
export type MessageFate =
  /** Nothing is published. */
  | 'none'
  /** Recorded in payment_events (source mq) by the workflow, or by the consumer for an ended workflow. */
  | 'recorded'
  /** In the parking queue with one of these reasons, never recorded. */
  | { parked: string[] };

export interface Expectation {
  /** What the buyer does. */
  buyer: string;
  /** The provider's trade at the end. */
  trade: 'TRADE_SUCCESS' | 'TRADE_CLOSED';
  status: Exclude<OrderStatus, 'UNPAID'>;
  /** Discrepancies recorded for the order, each exactly once; no other kind may appear. */
  discrepancies: DiscrepancyKind[];
  /** Paths allowed to have settled the order (orders.settled_by). */
  settledBy: SettledBy[];
  message: MessageFate;
}

/**
 * The expectation table. "Delivered after the order was closed" (`late`): the buyer does not pay before
 * the deadline, the workflow closes the trade and the order, and then the buyer's payment goes through
 * anyway (the simulator pays the closed trade with `force: true`, as a real provider racing its own
 * close can). The provider's truth is then TRADE_SUCCESS on a trade that was closed before it was paid;
 * payrecon must leave the order CLOSED (it never reopens an order) and flag PAID_AFTER_CLOSE exactly
 * once for an operator to refund. Its notification reaches a workflow that has ended, so the consumer
 * records it (payment_events, source mq) through the ended-workflow path.
 */
export const EXPECTATIONS: Record<FaultKind, Expectation> = {
  clean: {
    buyer: 'pays',
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['mq', 'poll'],
    message: 'recorded',
  },
  drop: {
    buyer: 'pays; notification never published',
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['poll'],
    message: 'none',
  },
  duplicate: {
    buyer: 'pays; notification published 2-5 times (one message id)',
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['mq', 'poll'],
    message: 'recorded',
  },
  late: {
    buyer: 'pays only after the order was closed (forced)',
    trade: 'TRADE_SUCCESS',
    status: 'CLOSED',
    discrepancies: ['PAID_AFTER_CLOSE'],
    settledBy: ['poll'],
    message: 'recorded',
  },
  corrupt: {
    buyer: 'pays; body not JSON or not the v1 schema',
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['poll'],
    message: { parked: ['NOT_JSON', 'SCHEMA_VIOLATION'] },
  },
  forge: {
    buyer: 'pays; signature made with a wrong secret',
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['poll'],
    message: { parked: ['BAD_SIGNATURE'] },
  },
  'wrong-amount': {
    buyer: 'pays one minor unit less',
    trade: 'TRADE_SUCCESS',
    status: 'NEEDS_REVIEW',
    discrepancies: ['AMOUNT_MISMATCH'],
    settledBy: ['mq', 'poll'],
    message: 'recorded',
  },
  'never-pay': {
    buyer: 'never pays',
    trade: 'TRADE_CLOSED',
    status: 'CLOSED',
    discrepancies: [],
    settledBy: ['poll'],
    message: 'none',
  },
};

export interface OrderPlan {
  /** Position in creation order. */
  index: number;
  kind: FaultKind;
  /** Minor units. */
  amount: number;
  /** The simulator's per-trade fault knobs for the payment (none for never-pay and late). */
  faults: TradeFaults | null;
  /** When the buyer pays, after the order was created; null: not before the deadline. */
  payAfterMs: number | null;
}

/** Exact counts per kind for n orders: the mix's shares rounded by largest remainder, the rest clean. */
export function faultCounts(n: number): Record<FaultKind, number> {
  const kinds = Object.keys(FAULT_MIX) as Exclude<FaultKind, 'clean'>[];
  const exact = kinds.map((kind) => ({ kind, value: FAULT_MIX[kind] * n }));
  const counts = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;
  for (const { kind, value } of exact) counts[kind] = Math.floor(value);
  const target = Math.round(kinds.reduce((sum, kind) => sum + FAULT_MIX[kind], 0) * n);
  let assigned = kinds.reduce((sum, kind) => sum + counts[kind], 0);
  const byRemainder = [...exact].sort(
    (a, b) => b.value - Math.floor(b.value) - (a.value - Math.floor(a.value)),
  );
  for (const { kind } of byRemainder) {
    if (assigned >= target) break;
    counts[kind]++;
    assigned++;
  }
  counts.clean = n - assigned;
  return counts;
}

/**
 * The orders of one run. `payWindowMs`: buyers who pay do so within this long of their order's
 * creation (keep it well inside the pay deadline, so a payment never races the close by accident).
 */
export function planOrders(options: { orders: number; seed: number; payWindowMs: number }): OrderPlan[] {
  const random = seededRandom(options.seed);
  const kinds: FaultKind[] = [];
  for (const [kind, count] of Object.entries(faultCounts(options.orders)) as [FaultKind, number][]) {
    for (let i = 0; i < count; i++) kinds.push(kind);
  }
  // Fisher-Yates with the seeded dice: the kinds are spread over the whole run.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as FaultKind, kinds[i] as FaultKind];
  }
  let corruptions = 0;
  return kinds.map((kind, index) => {
    const amount = 100 * (1 + Math.floor(random() * 500));
    const payAfterMs = 200 + Math.floor(random() * Math.max(1, options.payWindowMs - 200));
    let faults: TradeFaults | null;
    switch (kind) {
      case 'clean':
        faults = {};
        break;
      case 'drop':
        faults = { drop: true };
        break;
      case 'duplicate':
        faults = { duplicate: 2 + Math.floor(random() * 4) };
        break;
      case 'corrupt': {
        // Alternate, so both kinds of corruption are always in the mix.
        const corruption: Corruption = corruptions++ % 2 === 0 ? 'json' : 'schema';
        faults = { corrupt: corruption };
        break;
      }
      case 'forge':
        faults = { forge: true };
        break;
      case 'wrong-amount':
        faults = { wrongAmount: true };
        break;
      case 'late':
        // Paid with `force: true` and no fault once the order is CLOSED (see EXPECTATIONS).
        faults = {};
        break;
      case 'never-pay':
        faults = null;
        break;
    }
    const paysInTime = kind !== 'late' && kind !== 'never-pay';
    return { index, kind, amount, faults, payAfterMs: paysInTime ? payAfterMs : null };
  });
}

export type DisruptionKind = 'kill-worker' | 'kill-consumer' | 'restart-broker';

export interface Disruption {
  kind: DisruptionKind;
  /** After the start of the run. */
  atMs: number;
  /** How long the process (or the RabbitMQ application) stays down. */
  downMs: number;
}

/**
 * Spreads the kills and broker restarts over `windowMs` (the busy part of the run: order creation up to
 * the last deadline). Each kind gets evenly spaced slots with a seeded jitter inside its slot, so the
 * kinds interleave and no two of one kind come together.
 */
export function planDisruptions(options: {
  seed: number;
  windowMs: number;
  killsWorker: number;
  killsConsumer: number;
  brokerRestarts: number;
}): Disruption[] {
  // A different stream than the orders', so changing N does not move the kills.
  const random = seededRandom(options.seed ^ 0x5bd1e995);
  const start = options.windowMs * 0.05;
  const span = options.windowMs * 0.8;
  const spread = (kind: DisruptionKind, count: number, downMs: () => number): Disruption[] =>
    Array.from({ length: count }, (_, i) => ({
      kind,
      atMs: Math.round(start + ((i + 0.25 + random() * 0.5) * span) / count),
      downMs: downMs(),
    }));
  return [
    ...spread('kill-worker', options.killsWorker, () => 1_000 + Math.floor(random() * 1_000)),
    ...spread('kill-consumer', options.killsConsumer, () => 1_000 + Math.floor(random() * 1_000)),
    ...spread('restart-broker', options.brokerRestarts, () => 3_000),
  ].sort((a, b) => a.atMs - b.atMs);
}
