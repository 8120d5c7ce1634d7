import { z } from 'zod';

/**
 * Fault knobs of the payment simulator.
 *
 * Global knobs are probabilities applied to every trade (a `dropRate` of 0.3 drops about 30% of the
 * notifications); they live in memory, come from SIMULATOR_FAULTS at start-up and change through
 * `PUT|PATCH /faults`. Per-trade knobs are exact and live in `provider.trades.faults`; a per-trade knob
 * that is set wins over the global one, so `{ "drop": false }` protects a trade from a global dropRate.
 */

const MAX_DELAY_MS = 10 * 60_000;
const MAX_LATENCY_MS = 60_000;
const MAX_PROCESSING_MS = 24 * 60 * 60_000;

const rate = z.number().min(0, 'a rate is between 0 and 1').max(1, 'a rate is between 0 and 1');
const delayMs = z.int().min(0).max(MAX_DELAY_MS, `at most ${MAX_DELAY_MS}ms`);
const latencyMs = z.int().min(0).max(MAX_LATENCY_MS, `at most ${MAX_LATENCY_MS}ms`);

export const CORRUPTIONS = ['json', 'schema'] as const;
/** `json`: the body is not JSON at all; `schema`: valid JSON that violates the v1 notification schema. */
export type Corruption = (typeof CORRUPTIONS)[number];

/** Every global knob; all optional, so this is also the shape of a PATCH. */
export const globalFaultsPatchSchema = z
  .strictObject({
    /** Probability that a notification is never published. */
    dropRate: rate,
    /** Probability that a notification is published `duplicateCount` times (same messageId). */
    duplicateRate: rate,
    duplicateCount: z.int().min(2).max(100),
    /** Probability that a notification is published `delayMs` after the payment. */
    delayRate: rate,
    delayMs,
    /** Probability that the body is corrupted (half not JSON, half schema-violating). */
    corruptRate: rate,
    /** Probability that the signature is made with the wrong secret. */
    forgeRate: rate,
    /** Probability that the buyer pays one minor unit less than the trade's amount. */
    wrongAmountRate: rate,
    /** Extra latency of every status query (`GET /trades/:orderId`). */
    queryLatencyMs: latencyMs,
    /** Probability that a status query answers HTTP 503. */
    queryErrorRate: rate,
  })
  .partial();

export type GlobalFaults = Required<z.infer<typeof globalFaultsPatchSchema>>;

export const NO_FAULTS: GlobalFaults = {
  dropRate: 0,
  duplicateRate: 0,
  duplicateCount: 2,
  delayRate: 0,
  delayMs: 5_000,
  corruptRate: 0,
  forgeRate: 0,
  wrongAmountRate: 0,
  queryLatencyMs: 0,
  queryErrorRate: 0,
};

/** A complete set of global knobs: every knob not given has its default (no fault). */
export const globalFaultsSchema = globalFaultsPatchSchema.transform(
  (patch): GlobalFaults => ({ ...NO_FAULTS, ...dropUndefined(patch) }),
);

/**
 * Knobs of one refund: what happens to the refund itself, and to its `trade.refunded` notification (the
 * same knobs as a paid notification's; the global rates apply to both).
 */
export const refundFaultsSchema = z.strictObject({
  /** Stay PROCESSING this long, then end; 0 (default): end at once, in the answer to the request. */
  processingMs: z.int().min(0).max(MAX_PROCESSING_MS, `at most ${MAX_PROCESSING_MS}ms`).optional(),
  /** End FAILED instead of SUCCESS; a string is the failure reason. */
  fail: z.union([z.boolean(), z.string().min(1).max(200)]).optional(),
  drop: z.boolean().optional(),
  duplicate: z.int().min(1).max(100).optional(),
  delayMs: delayMs.optional(),
  corrupt: z.union([z.boolean(), z.enum(CORRUPTIONS)]).optional(),
  forge: z.boolean().optional(),
});
export type RefundFaults = z.infer<typeof refundFaultsSchema>;

export const tradeFaultsSchema = z.strictObject({
  /** Publish nothing. */
  drop: z.boolean().optional(),
  /** Publish the notification this many times in all, with the same messageId. */
  duplicate: z.int().min(1).max(100).optional(),
  /** Publish it this long after the payment. */
  delayMs: delayMs.optional(),
  /** `true` means `json`. */
  corrupt: z.union([z.boolean(), z.enum(CORRUPTIONS)]).optional(),
  /** Sign with the wrong secret. */
  forge: z.boolean().optional(),
  /** `true`: pay one minor unit less than the trade's amount (one more for a zero amount); a number: pay exactly that. */
  wrongAmount: z.union([z.boolean(), z.int().nonnegative()]).optional(),
  queryLatencyMs: latencyMs.optional(),
  /** The next this many status queries of this trade answer HTTP 503. */
  queryErrors: z.int().min(0).max(1_000).optional(),
  /**
   * Knobs of every refund of this trade (the knobs above are the paid notification's and do not apply
   * to refunds); a refund request's own `faults` win over these.
   */
  refund: refundFaultsSchema.optional(),
});
export type TradeFaults = z.infer<typeof tradeFaultsSchema>;

/** What happens to one trade's notification, every knob decided. */
export interface NotificationPlan {
  drop: boolean;
  copies: number;
  delayMs: number;
  corrupt: Corruption | null;
  forge: boolean;
  /** What the buyer pays. */
  paidAmount: number;
}

export type Random = () => number;

export function planNotification(
  amount: number,
  trade: TradeFaults,
  global: GlobalFaults,
  random: Random = Math.random,
): NotificationPlan {
  const roll = (probability: number) => probability > 0 && random() < probability;
  const duplicate = trade.duplicate ?? (roll(global.duplicateRate) ? global.duplicateCount : 1);
  const delay = trade.delayMs ?? (roll(global.delayRate) ? global.delayMs : 0);
  let corrupt: Corruption | null;
  if (trade.corrupt === undefined) {
    corrupt = roll(global.corruptRate) ? (random() < 0.5 ? 'json' : 'schema') : null;
  } else {
    corrupt = trade.corrupt === true ? 'json' : trade.corrupt === false ? null : trade.corrupt;
  }
  const wrongAmount = trade.wrongAmount ?? roll(global.wrongAmountRate);
  let paidAmount = amount;
  if (typeof wrongAmount === 'number') paidAmount = wrongAmount;
  else if (wrongAmount) paidAmount = amount > 0 ? amount - 1 : amount + 1;
  return {
    drop: trade.drop ?? roll(global.dropRate),
    copies: duplicate,
    delayMs: delay,
    corrupt,
    forge: trade.forge ?? roll(global.forgeRate),
    paidAmount,
  };
}

/** The global knobs of one running simulator. */
export class FaultStore {
  private current: GlobalFaults;

  constructor(initial: Partial<GlobalFaults> = {}) {
    this.current = globalFaultsSchema.parse(initial);
  }

  get(): GlobalFaults {
    return { ...this.current };
  }

  /** Every knob not given goes back to its default (no fault). */
  replace(input: unknown): GlobalFaults {
    this.current = globalFaultsSchema.parse(input);
    return this.get();
  }

  /** Changes only the knobs given. */
  merge(input: unknown): GlobalFaults {
    const patch = globalFaultsPatchSchema.parse(input);
    this.current = { ...this.current, ...dropUndefined(patch) };
    return this.get();
  }
}

/** Per-trade knobs as stored; a row written by hand with bad knobs counts as none. */
export function readTradeFaults(stored: unknown): TradeFaults {
  const parsed = tradeFaultsSchema.safeParse(stored ?? {});
  return parsed.success ? parsed.data : {};
}

function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
