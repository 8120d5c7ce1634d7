import type { DiscrepancyKind, OrderStatus, SettledBy } from '../src/domain';
import type { Corruption, TradeFaults } from './simulator/faults';

/**
 * The one catalogue of payment scenarios the rig plays: what the buyer does, which per-trade fault
 * knobs the simulator applies to the payment's notification, and what payrecon must end with. The demo
 * (tools/demo.ts) and the chaos run (tools/chaos/) both draw their orders from it, each with its own
 * mix; the chaos checks hold every order to its expectation.
 */

export const SCENARIO_NAMES = [
  'clean',
  'drop',
  'duplicate',
  'delay',
  'late',
  'corrupt',
  'forge',
  'wrong-amount',
  'never-pay',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** How an order's notification should end up on the MQ path. */
export type MessageFate =
  /** Nothing is published. */
  | 'none'
  /** Recorded in payment_events (source mq) by the workflow, or by the consumer for an ended workflow. */
  | 'recorded'
  /** In the parking queue with one of these reasons, never recorded. */
  | { parked: string[] };

export interface Scenario {
  /** What the buyer does, in words. */
  buyer: string;
  /**
   * When the buyer pays: within the pay window; only once the order is CLOSED (the simulator pays the
   * closed trade with `force: true`, a payment racing the provider's own close); or never.
   */
  pays: 'in-time' | 'after-close' | 'never';
  /**
   * The simulator's per-trade fault knobs for the payment. `random` is the caller's dice (seeded in the
   * chaos run); `nth` counts the orders of this scenario from 0, so variants alternate.
   */
  faults(random: () => number, nth: number): TradeFaults;
  /** The provider's trade at the end. */
  trade: 'TRADE_SUCCESS' | 'TRADE_CLOSED';
  status: Exclude<OrderStatus, 'UNPAID'>;
  /** Discrepancies recorded for the order, each exactly once; no other kind may appear. */
  discrepancies: DiscrepancyKind[];
  /** Paths allowed to have settled the order (orders.settled_by). */
  settledBy: SettledBy[];
  message: MessageFate;
}

const none = (): TradeFaults => ({});

/**
 * "Delivered after the order was closed" (`late`): the buyer does not pay before the deadline, the
 * workflow closes the trade and the order, and then the buyer's payment goes through anyway. The
 * provider's truth is then TRADE_SUCCESS on a trade that was closed before it was paid; payrecon must
 * leave the order CLOSED (it never reopens an order) and flag PAID_AFTER_CLOSE exactly once for an
 * operator to refund. Its notification reaches a workflow that has ended, so the consumer records it
 * (payment_events, source mq) through the ended-workflow path.
 */
export const SCENARIOS: Record<ScenarioName, Scenario> = {
  clean: {
    buyer: 'pays',
    pays: 'in-time',
    faults: none,
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['mq', 'poll'],
    message: 'recorded',
  },
  drop: {
    buyer: 'pays; notification never published',
    pays: 'in-time',
    faults: () => ({ drop: true }),
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['poll'],
    message: 'none',
  },
  duplicate: {
    buyer: 'pays; notification published 2-5 times (one message id)',
    pays: 'in-time',
    faults: (random) => ({ duplicate: 2 + Math.floor(random() * 4) }),
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['mq', 'poll'],
    message: 'recorded',
  },
  delay: {
    buyer: 'pays; notification published 4 s later',
    pays: 'in-time',
    faults: () => ({ delayMs: 4_000 }),
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['mq', 'poll'],
    message: 'recorded',
  },
  late: {
    buyer: 'pays only after the order was closed (forced)',
    pays: 'after-close',
    faults: none,
    trade: 'TRADE_SUCCESS',
    status: 'CLOSED',
    discrepancies: ['PAID_AFTER_CLOSE'],
    settledBy: ['poll'],
    message: 'recorded',
  },
  corrupt: {
    buyer: 'pays; body not JSON or not the v1 schema (alternating)',
    pays: 'in-time',
    // Alternate, so both kinds of corruption are always in the mix.
    faults: (_random, nth) => ({ corrupt: (['json', 'schema'] as Corruption[])[nth % 2] }),
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['poll'],
    message: { parked: ['NOT_JSON', 'SCHEMA_VIOLATION'] },
  },
  forge: {
    buyer: 'pays; signature made with a wrong secret',
    pays: 'in-time',
    faults: () => ({ forge: true }),
    trade: 'TRADE_SUCCESS',
    status: 'PAID',
    discrepancies: [],
    settledBy: ['poll'],
    message: { parked: ['BAD_SIGNATURE'] },
  },
  'wrong-amount': {
    buyer: 'pays one minor unit less',
    pays: 'in-time',
    faults: () => ({ wrongAmount: true }),
    trade: 'TRADE_SUCCESS',
    status: 'NEEDS_REVIEW',
    discrepancies: ['AMOUNT_MISMATCH'],
    settledBy: ['mq', 'poll'],
    message: 'recorded',
  },
  'never-pay': {
    buyer: 'never pays',
    pays: 'never',
    faults: none,
    trade: 'TRADE_CLOSED',
    status: 'CLOSED',
    discrepancies: [],
    settledBy: ['poll'],
    message: 'none',
  },
};

/**
 * Deals out the payments' fault knobs, order after order: `deal(name)` is the next order of that
 * scenario's knobs (variants alternate per scenario), null when its buyer never pays.
 */
export function faultDealer(random: () => number): (name: ScenarioName) => TradeFaults | null {
  const seen: Partial<Record<ScenarioName, number>> = {};
  return (name) => {
    const nth = seen[name] ?? 0;
    seen[name] = nth + 1;
    const scenario = SCENARIOS[name];
    return scenario.pays === 'never' ? null : scenario.faults(random, nth);
  };
}
