import { faultDealer, SCENARIOS, type ScenarioName } from '../scenarios';
import type { TradeFaults } from '../simulator/faults';

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

/**
 * Share of the orders per scenario (the mix, tools/scenarios.ts); the rest is `clean`. One
 * scenario per order, so each order's expected outcome is unambiguous.
 */
export const FAULT_MIX: Partial<Record<Exclude<ScenarioName, 'clean'>, number>> = {
  drop: 0.3,
  duplicate: 0.2,
  late: 0.1,
  corrupt: 0.05,
  forge: 0.03,
  'wrong-amount': 0.02,
  'never-pay': 0.1,
};

export interface OrderPlan {
  /** Position in creation order. */
  index: number;
  kind: ScenarioName;
  /** Minor units. */
  amount: number;
  /** The simulator's per-trade fault knobs for the payment; null when the buyer never pays. */
  faults: TradeFaults | null;
  /** When the buyer pays, after the order was created; null: not before the deadline. */
  payAfterMs: number | null;
}

/** Exact counts per kind for n orders: the mix's shares rounded by largest remainder, the rest clean. */
export function faultCounts(n: number): Partial<Record<ScenarioName, number>> {
  const exact = (Object.entries(FAULT_MIX) as [ScenarioName, number][]).map(([kind, share]) => ({
    kind,
    value: share * n,
  }));
  const counts: Partial<Record<ScenarioName, number>> = { clean: 0 };
  for (const { kind, value } of exact) counts[kind] = Math.floor(value);
  const target = Math.round(exact.reduce((sum, { value }) => sum + value, 0));
  let assigned = exact.reduce((sum, { value }) => sum + Math.floor(value), 0);
  const byRemainder = [...exact].sort(
    (a, b) => b.value - Math.floor(b.value) - (a.value - Math.floor(a.value)),
  );
  for (const { kind } of byRemainder) {
    if (assigned >= target) break;
    counts[kind] = (counts[kind] ?? 0) + 1;
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
  const kinds: ScenarioName[] = [];
  for (const [kind, count] of Object.entries(faultCounts(options.orders)) as [ScenarioName, number][]) {
    for (let i = 0; i < count; i++) kinds.push(kind);
  }
  // Fisher-Yates with the seeded dice: the kinds are spread over the whole run.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as ScenarioName, kinds[i] as ScenarioName];
  }
  const dealFaults = faultDealer(random);
  return kinds.map((kind, index) => {
    const amount = 100 * (1 + Math.floor(random() * 500));
    const payAfterMs = 200 + Math.floor(random() * Math.max(1, options.payWindowMs - 200));
    return {
      index,
      kind,
      amount,
      // A late buyer pays with no fault, once the order is CLOSED (tools/scenarios.ts).
      faults: dealFaults(kind),
      payAfterMs: SCENARIOS[kind].pays === 'in-time' ? payAfterMs : null,
    };
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
