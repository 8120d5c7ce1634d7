import type { OrderStatus, SettledBy } from '../../src/domain';
import { billDayBounds, shiftBillDate } from '../../src/provider/statement-format';
import type { OrderFaults } from '../merchant/faults';
import { faultDealer, type MessageFate, SCENARIOS, type ScenarioName } from '../scenarios';
import type { RefundFaults, TradeFaults } from '../simulator/faults';

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
  /**
   * The provider's clock for the payment (ISO, on the run's own bill date), so the day's statement holds
   * only this run's trades; null: now (late and wrong-amount buyers, whose orders never count as paid).
   */
  paidAt: string | null;
  /** What the buyer asks back once the order is PAID; null: nothing. */
  refund: RefundKind | null;
  /** The shop the order belongs to, i.e. how its merchant endpoint answers. */
  shop: ShopName;
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
export function planOrders(options: {
  orders: number;
  seed: number;
  payWindowMs: number;
  /** The run's bill date: paying buyers pay "on" it (default: a fixed day). */
  billDate?: string;
  /** Give the `down` shop (EXHAUSTED after 130 s) its orders; false: none (a short run). Default true. */
  exhaust?: boolean;
}): OrderPlan[] {
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
  const day = billDayBounds(options.billDate ?? '2001-01-01').start.getTime();
  const orders = kinds.map((kind, index): OrderPlan => {
    const amount = 100 * (1 + Math.floor(random() * 500));
    const payAfterMs = 200 + Math.floor(random() * Math.max(1, options.payWindowMs - 200));
    // Paid between 01:00 and 19:00 of the bill date: far from midnight, so no row is on the edge.
    const paidAt = new Date(day + 3_600_000 + Math.floor((index / options.orders) * 18 * 3_600_000));
    return {
      index,
      kind,
      amount,
      // A late buyer pays with no fault, once the order is CLOSED (tools/scenarios.ts).
      faults: dealFaults(kind),
      payAfterMs: SCENARIOS[kind].pays === 'in-time' ? payAfterMs : null,
      paidAt: SCENARIOS[kind].status === 'PAID' ? paidAt.toISOString() : null,
      refund: null,
      shop: 'steady',
    };
  });
  // Separate streams: adding refunds and shops leaves the payment plan of a seed as it was.
  dealRefunds(orders, seededRandom(options.seed ^ 0x2c1b3c6d));
  dealShops(orders, seededRandom(options.seed ^ 0x68e31da4), options.exhaust ?? true);
  return orders;
}

/** Exact counts per key for n items: shares rounded by largest remainder; `rest` gets what is left. */
function exactCounts<K extends string>(
  n: number,
  shares: Partial<Record<K, number>>,
  rest: K,
): Record<K, number> {
  const exact = (Object.entries(shares) as [K, number][]).map(([key, share]) => ({ key, value: share * n }));
  const counts = { [rest]: 0 } as Record<K, number>;
  for (const { key, value } of exact) counts[key] = Math.floor(value);
  const target = Math.round(exact.reduce((sum, { value }) => sum + value, 0));
  let assigned = exact.reduce((sum, { value }) => sum + Math.floor(value), 0);
  const byRemainder = [...exact].sort(
    (a, b) => b.value - Math.floor(b.value) - (a.value - Math.floor(a.value)),
  );
  for (const { key } of byRemainder) {
    if (assigned >= target) break;
    counts[key] = (counts[key] ?? 0) + 1;
    assigned++;
  }
  counts[rest] = n - assigned;
  return counts;
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

// --- refunds ------------------------------------------------------------------------------------------

export const REFUND_KINDS = [
  'full',
  'partial',
  'two-partials',
  'race',
  'notice-drop',
  'notice-duplicate',
  'notice-forge',
  'notice-corrupt',
  'provider-fails',
  'processing',
] as const;
export type RefundKind = (typeof REFUND_KINDS)[number];

export interface RefundScenario {
  what: string;
  /**
   * The requests payrecon gets (`requestRefund`), as shares of the order's amount (null: all that is
   * left). `sequential`: the second once the first has settled; `racing`: both at once.
   */
  requests: { shares: (number | null)[]; mode: 'one' | 'sequential' | 'racing' };
  /** The simulator's knobs of the order's refunds (provider.trades.faults.refund). */
  faults(nth: number): RefundFaults;
  /** Refunds that must end SUCCEEDED and FAILED (a racing request refused is neither). */
  succeeded: number;
  failed: number;
  final: Extract<OrderStatus, 'PAID' | 'PARTIALLY_REFUNDED' | 'REFUNDED'>;
  /** Paths allowed to have settled the refunds (refunds.settled_by). */
  settledBy: SettledBy[];
  /** Where the refund notices go. */
  notice: MessageFate;
  /** The order's paid notice is published again (twice) after the refund settled: the sources' race. */
  republishPaid: boolean;
  /** The refund workflow must have queried at least once (no valid notice ever comes). */
  queried: boolean;
  /**
   * The provider answered the submit PROCESSING and kept it so past the first ladder step (the query
   * then sees PROCESSING, unless the workflow ran late and the notice came first).
   */
  staysProcessing: boolean;
}

/** Refunds end 1 s after the request (past the notice, before the first 2 s query) unless said otherwise. */
const PROCESSING_MS = 1_000;

export const REFUND_SCENARIOS: Record<RefundKind, RefundScenario> = {
  full: {
    what: 'all of it back; the paid notice is published again afterwards (twice)',
    requests: { shares: [null], mode: 'one' },
    faults: () => ({ processingMs: PROCESSING_MS }),
    succeeded: 1,
    failed: 0,
    final: 'REFUNDED',
    settledBy: ['mq', 'poll'],
    notice: 'recorded',
    republishPaid: true,
    queried: false,
    staysProcessing: false,
  },
  partial: {
    what: 'half back; the paid notice is published again afterwards (twice)',
    requests: { shares: [0.5], mode: 'one' },
    faults: () => ({ processingMs: PROCESSING_MS }),
    succeeded: 1,
    failed: 0,
    final: 'PARTIALLY_REFUNDED',
    settledBy: ['mq', 'poll'],
    notice: 'recorded',
    republishPaid: true,
    queried: false,
    staysProcessing: false,
  },
  'two-partials': {
    what: '30 %, then the rest once the first settled',
    requests: { shares: [0.3, null], mode: 'sequential' },
    faults: () => ({ processingMs: PROCESSING_MS }),
    succeeded: 2,
    failed: 0,
    final: 'REFUNDED',
    settledBy: ['mq', 'poll'],
    notice: 'recorded',
    republishPaid: false,
    queried: false,
    staysProcessing: false,
  },
  race: {
    what: 'two 60 % requests at once: one is refused, one executes',
    requests: { shares: [0.6, 0.6], mode: 'racing' },
    faults: () => ({ processingMs: PROCESSING_MS }),
    succeeded: 1,
    failed: 0,
    final: 'PARTIALLY_REFUNDED',
    settledBy: ['mq', 'poll'],
    notice: 'recorded',
    republishPaid: false,
    queried: false,
    staysProcessing: false,
  },
  'notice-drop': {
    what: 'all back; the refund notice is never published',
    requests: { shares: [null], mode: 'one' },
    faults: () => ({ processingMs: PROCESSING_MS, drop: true }),
    succeeded: 1,
    failed: 0,
    final: 'REFUNDED',
    settledBy: ['poll'],
    notice: 'none',
    republishPaid: false,
    queried: true,
    staysProcessing: false,
  },
  'notice-duplicate': {
    what: 'half back; the refund notice is published 3 times (one message id)',
    requests: { shares: [0.5], mode: 'one' },
    faults: () => ({ processingMs: PROCESSING_MS, duplicate: 3 }),
    succeeded: 1,
    failed: 0,
    final: 'PARTIALLY_REFUNDED',
    settledBy: ['mq', 'poll'],
    notice: 'recorded',
    republishPaid: false,
    queried: false,
    staysProcessing: false,
  },
  'notice-forge': {
    what: 'all back; the refund notice is signed with a wrong secret',
    requests: { shares: [null], mode: 'one' },
    faults: () => ({ processingMs: PROCESSING_MS, forge: true }),
    succeeded: 1,
    failed: 0,
    final: 'REFUNDED',
    settledBy: ['poll'],
    notice: { parked: ['BAD_SIGNATURE'] },
    republishPaid: false,
    queried: true,
    staysProcessing: false,
  },
  'notice-corrupt': {
    what: 'half back; the refund notice is not JSON / not the schema (alternating)',
    requests: { shares: [0.5], mode: 'one' },
    faults: (nth) => ({ processingMs: PROCESSING_MS, corrupt: nth % 2 === 0 ? 'json' : 'schema' }),
    succeeded: 1,
    failed: 0,
    final: 'PARTIALLY_REFUNDED',
    settledBy: ['poll'],
    notice: { parked: ['NOT_JSON', 'SCHEMA_VIOLATION'] },
    republishPaid: false,
    queried: true,
    staysProcessing: false,
  },
  'provider-fails': {
    what: 'all back asked; the provider refuses it (FAILED), the order stays PAID',
    requests: { shares: [null], mode: 'one' },
    faults: () => ({ processingMs: PROCESSING_MS, fail: 'simulated refusal (chaos)' }),
    succeeded: 0,
    failed: 1,
    final: 'PAID',
    settledBy: ['mq', 'poll'],
    notice: 'recorded',
    republishPaid: false,
    queried: false,
    staysProcessing: false,
  },
  processing: {
    what: 'all back; the provider stays PROCESSING 5 s, past the first 2 s refund query',
    requests: { shares: [null], mode: 'one' },
    faults: () => ({ processingMs: 5_000 }),
    succeeded: 1,
    failed: 0,
    final: 'REFUNDED',
    settledBy: ['mq', 'poll'],
    notice: 'recorded',
    republishPaid: false,
    queried: false,
    staysProcessing: true,
  },
};

/** Share of ALL orders per refund kind, drawn from the orders that end PAID (78 % of them). */
export const REFUND_MIX: Record<RefundKind, number> = {
  full: 0.04,
  partial: 0.04,
  'two-partials': 0.02,
  race: 0.03,
  'notice-drop': 0.02,
  'notice-duplicate': 0.02,
  'notice-forge': 0.01,
  'notice-corrupt': 0.01,
  'provider-fails': 0.02,
  processing: 0.02,
};

export function refundCounts(n: number): Partial<Record<RefundKind | 'none', number>> {
  const counts = exactCounts<RefundKind | 'none'>(n, REFUND_MIX, 'none');
  return counts;
}

/** The refund plan goes to orders whose payment ends PAID, seeded; the rest ask nothing back. */
function dealRefunds(orders: OrderPlan[], random: () => number): void {
  const eligible = shuffle(
    orders.filter((o) => SCENARIOS[o.kind].status === 'PAID'),
    random,
  );
  let next = 0;
  for (const [kind, count] of Object.entries(refundCounts(orders.length)) as [
    RefundKind | 'none',
    number,
  ][]) {
    if (kind === 'none') continue;
    for (let i = 0; i < count && next < eligible.length; i++) (eligible[next++] as OrderPlan).refund = kind;
  }
}

/** The order's final status: its payment scenario's, then its refunds'. */
export function expectedStatus(plan: Pick<OrderPlan, 'kind' | 'refund'>): OrderStatus {
  return plan.refund ? REFUND_SCENARIOS[plan.refund].final : SCENARIOS[plan.kind].status;
}

/** The provider's trade at the end: refunded in full turns it TRADE_CLOSED (as at Alipay). */
export function expectedTrade(plan: Pick<OrderPlan, 'kind' | 'refund'>): string {
  return plan.refund && REFUND_SCENARIOS[plan.refund].final === 'REFUNDED'
    ? 'TRADE_CLOSED'
    : SCENARIOS[plan.kind].trade;
}

// --- merchant shops -------------------------------------------------------------------------------------

export const SHOP_NAMES = ['steady', 'flapping', 'busy', 'slow', 'wrong-body', 'down'] as const;
export type ShopName = (typeof SHOP_NAMES)[number];

export interface Shop {
  what: string;
  /** The merchant simulator's knobs for each of the shop's orders. */
  faults: OrderFaults;
  /** The driver clears the order's knobs once its first delivery arrived: the endpoint recovers. */
  recovers: boolean;
  /** Every event of the shop's orders ends EXHAUSTED (and is listed); otherwise DELIVERED. */
  exhausts: boolean;
}

/** How each shop's endpoint (exponential ladder: 5 s, 15 s, 35 s, 75 s after failed attempts 1-4) answers. */
export const SHOPS: Record<ShopName, Shop> = {
  steady: { what: 'answers success at once', faults: {}, recovers: false, exhausts: false },
  flapping: {
    what: 'HTTP 500 to the first 2 deliveries of each order',
    faults: { failFirst: 2 },
    recovers: false,
    exhausts: false,
  },
  busy: {
    what: '503 with Retry-After 2 to the first delivery',
    faults: { failFirst: 1, status: 503, retryAfterSeconds: 2 },
    recovers: false,
    exhausts: false,
  },
  slow: {
    what: 'answers after 6 s (past the 5 s timeout) until the first delivery arrived',
    faults: { delayMs: 6_000 },
    recovers: true,
    exhausts: false,
  },
  'wrong-body': {
    what: '200 "ok thanks" (not success) until the first delivery arrived',
    faults: { badBody: true },
    recovers: true,
    exhausts: false,
  },
  down: {
    what: 'HTTP 500 to everything: EXHAUSTED',
    faults: { status: 500 },
    recovers: false,
    exhausts: true,
  },
};

export const SHOP_MIX: Partial<Record<ShopName, number>> = {
  flapping: 0.15,
  busy: 0.15,
  slow: 0.1,
  'wrong-body': 0.1,
  down: 0.01,
};

/**
 * Shops, seeded. `down` (every attempt fails: 130 s to EXHAUSTED) goes to early orders that are paid
 * and never refunded, so the run is not held up and no second event queues behind an exhausted one;
 * at least one whenever there are 20 orders or more.
 */
function dealShops(orders: OrderPlan[], random: () => number, exhaust: boolean): void {
  const counts = exactCounts<ShopName>(orders.length, SHOP_MIX, 'steady');
  if (!exhaust) {
    counts.steady += counts.down;
    counts.down = 0;
  } else if (orders.length >= 20 && counts.down === 0) {
    counts.down = 1;
    counts.steady--;
  }
  const downCandidates = shuffle(
    orders.filter((o) => o.index < orders.length / 2 && SCENARIOS[o.kind].status === 'PAID' && !o.refund),
    random,
  );
  const down = new Set(downCandidates.slice(0, counts.down));
  for (const o of down) o.shop = 'down';
  const rest = shuffle(
    orders.filter((o) => !down.has(o)),
    random,
  );
  let next = 0;
  for (const name of SHOP_NAMES) {
    if (name === 'down') continue;
    const n = name === 'steady' ? counts.steady + (counts.down - down.size) : counts[name];
    for (let i = 0; i < n && next < rest.length; i++) (rest[next++] as OrderPlan).shop = name;
  }
}

// --- the run's own bill date ------------------------------------------------------------------------

/**
 * A day in the past that belongs to this run (2001-2020, by the minute the run started and its seed):
 * its buyers pay "on" it, so the day's statement holds this run's trades only. The driver moves on to
 * the next day while a candidate already has trades or a reconciliation.
 */
export function candidateBillDate(startedAtMs: number, seed: number): string {
  return shiftBillDate('2001-01-01', (Math.floor(startedAtMs / 60_000) + seed) % 7_300);
}

export type DisruptionKind =
  | 'kill-worker'
  | 'kill-consumer'
  | 'restart-broker'
  | 'refuse-merchant'
  /** --cluster: the node leading the pay-success quorum queue stopped, then started again. */
  | 'stop-leader'
  /** A worker SIGKILLs itself inside the next applyRefund, after its commit (tools/chaos/worker.ts). */
  | 'kill-worker-in-refund';

export interface Disruption {
  kind: DisruptionKind;
  /** Which of the processes of that kind (1-based: worker-1, worker-2); 0 for the broker and merchant. */
  target: number;
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
  /** Times the merchant simulator refuses connections (3 s each). */
  merchantRefusals?: number;
  /** Times the pay-success leader's node is stopped (5 s down, then started again; --cluster). */
  leaderStops?: number;
  /** Processes of each kind (worker, consumer); kills alternate between them. Default 1. */
  processes?: number;
  /** Times a worker is killed inside applyRefund, after its commit (its reply lost). */
  killsInRefund?: number;
}): Disruption[] {
  // A different stream than the orders', so changing N does not move the kills.
  const random = seededRandom(options.seed ^ 0x5bd1e995);
  const start = options.windowMs * 0.05;
  const span = options.windowMs * 0.8;
  const processes = options.processes ?? 1;
  const spread = (
    kind: DisruptionKind,
    count: number,
    downMs: () => number,
    targets: boolean,
  ): Disruption[] => {
    // Kills alternate between the processes of a kind, from a seeded first one.
    const first = Math.floor(random() * processes);
    return Array.from({ length: count }, (_, i) => ({
      kind,
      target: targets ? ((first + i) % processes) + 1 : 0,
      atMs: Math.round(start + ((i + 0.25 + random() * 0.5) * span) / count),
      downMs: downMs(),
    }));
  };
  return [
    ...spread('kill-worker', options.killsWorker, () => 1_000 + Math.floor(random() * 1_000), true),
    ...spread('kill-consumer', options.killsConsumer, () => 1_000 + Math.floor(random() * 1_000), true),
    ...spread('restart-broker', options.brokerRestarts, () => 3_000, false),
    ...spread('refuse-merchant', options.merchantRefusals ?? 0, () => 3_000, false),
    // Last, so the draws above (and so every plan without --cluster) stay as they were.
    ...spread('stop-leader', options.leaderStops ?? 0, () => 5_000, false),
    // After it, for the same reason. The worker that dies is whichever runs the next applyRefund.
    ...spread('kill-worker-in-refund', options.killsInRefund ?? 0, () => 1_000, false),
  ].sort((a, b) => a.atMs - b.atMs);
}
