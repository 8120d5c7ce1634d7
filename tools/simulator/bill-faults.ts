import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Database } from '../../src/db/client';
import {
  billDayBounds,
  type StatementFormat,
  type StatementSummary,
} from '../../src/provider/statement-format';
import { providerBillFaults } from './db/schema';

/**
 * Faults of one day's trade statement ("bill"), keyed by the shop's order id or a refund's
 * out_request_no. They change only what the bill says (a row missing, doubled, off by some fen, a day
 * late...), never the trades themselves, so payrecon's reconciliation must find each as a break. Stored
 * in `provider.bill_faults`, one row per bill date; `PUT /bills/:billDate/faults` replaces them.
 */

const MAX_TTL_MS = 24 * 3_600_000;
const MAX_LIST = 10_000;

const orderId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'order ids are 1-64 letters, digits, _ or -');
const outRequestNo = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, 'an out_request_no is 1-128 letters, digits, _ or -');
const minor = z.int('amounts are integers in minor units (fen, cents)');

export const extraPaymentSchema = z.strictObject({
  orderId,
  /** Minor units. */
  amount: minor.nonnegative(),
  /** Default: a trade number derived from the bill date and order id. */
  tradeNo: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'a trade number is 1-64 letters, digits, _ or -')
    .optional(),
  /** An ISO 8601 instant within the bill's day; default: 12:00:00 Asia/Shanghai of that day. */
  time: z.iso.datetime({ offset: true }).optional(),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'currency is an ISO 4217 code such as CNY')
    .optional(),
  /** The status the row prints; default TRADE_SUCCESS (a row that is no payment: TRADE_CLOSED, ...). */
  status: z
    .string()
    .regex(/^[A-Z_]{1,32}$/, 'a status is 1-32 capitals or _')
    .optional(),
});
export type ExtraPayment = z.infer<typeof extraPaymentSchema>;

const summaryDeltaSchema = z
  .strictObject({
    rows: z.int(),
    payCount: z.int(),
    payAmount: minor,
    refundCount: z.int(),
    refundAmount: minor,
    fee: minor,
  })
  .partial();

export const billFaultsSchema = z.strictObject({
  /** These orders' payment rows are missing. */
  omitPayments: z.array(orderId).max(MAX_LIST).optional(),
  /** Payment rows for trades the provider never had (or orders the shop never created). */
  extraPayments: z.array(extraPaymentSchema).max(MAX_LIST).optional(),
  /** orderId → minor units added to its payment row's amount (the fee follows the printed amount). */
  amountDeltas: z
    .record(
      orderId,
      minor.refine((delta) => delta !== 0, 'a delta is not 0'),
    )
    .optional(),
  /** orderId → the status its payment row prints instead of TRADE_SUCCESS. */
  statusOverrides: z
    .record(orderId, z.string().regex(/^[A-Z_]{1,32}$/, 'a status is 1-32 capitals or _'))
    .optional(),
  /** These orders' payment rows appear twice. */
  duplicatePayments: z.array(orderId).max(MAX_LIST).optional(),
  /** These refunds' rows (by out_request_no) are missing. */
  omitRefunds: z.array(outRequestNo).max(MAX_LIST).optional(),
  /**
   * Orders paid on this day whose payment row is on the next day's bill instead, just after midnight
   * (the provider's clock closed the day a little early): the midnight edge.
   */
  carryToNextDay: z.array(orderId).max(MAX_LIST).optional(),
  /** Added to the summary line after it is computed from the rows: control totals that do not add up. */
  summaryDelta: summaryDeltaSchema.optional(),
  /** The download URL's lifetime for this day (default SIMULATOR_BILL_URL_TTL). */
  urlTtlMs: z.int().min(1).max(MAX_TTL_MS, `at most ${MAX_TTL_MS}ms`).optional(),
  /** The next n URLs handed out for this day are born expired: the client must ask again. */
  expireNextUrls: z.int().min(0).max(1_000).optional(),
  encoding: z.enum(['utf-8', 'gbk']).optional(),
  zipped: z.boolean().optional(),
});
export type BillFaults = z.infer<typeof billFaultsSchema>;

/** Checks that need the bill date: an extra payment's time must fall on the bill's day. */
export function checkBillFaults(billDate: string, faults: BillFaults): string | null {
  const { start, end } = billDayBounds(billDate);
  for (const [index, extra] of (faults.extraPayments ?? []).entries()) {
    if (extra.time === undefined) continue;
    const at = Date.parse(extra.time);
    if (at < start.getTime() || at >= end.getTime()) {
      return `extraPayments.${index}.time: ${extra.time} is not on ${billDate} (Asia/Shanghai)`;
    }
  }
  return null;
}

/** The bill's format: the day's faults over the simulator's defaults. */
export function billFormat(faults: BillFaults, defaults: StatementFormat): StatementFormat {
  return { encoding: faults.encoding ?? defaults.encoding, zipped: faults.zipped ?? defaults.zipped };
}

/** Stored faults; a row written by hand with bad knobs counts as none. */
export function readBillFaults(stored: unknown): BillFaults {
  const parsed = billFaultsSchema.safeParse(stored ?? {});
  return parsed.success ? parsed.data : {};
}

export async function getBillFaults(db: Database, billDate: string): Promise<BillFaults> {
  const [row] = await db
    .select({ faults: providerBillFaults.faults })
    .from(providerBillFaults)
    .where(eq(providerBillFaults.billDate, billDate))
    .limit(1);
  return readBillFaults(row?.faults);
}

/** Replaces the day's faults; `{}` leaves a row that means none. */
export async function setBillFaults(db: Database, billDate: string, faults: BillFaults): Promise<BillFaults> {
  const now = new Date();
  await db
    .insert(providerBillFaults)
    .values({ billDate, faults, updatedAt: now })
    .onConflictDoUpdate({ target: providerBillFaults.billDate, set: { faults, updatedAt: now } });
  return faults;
}

/** Removes every day's faults; returns how many days had some. */
export async function clearBillFaults(db: Database): Promise<number> {
  const rows = await db.delete(providerBillFaults).returning({ billDate: providerBillFaults.billDate });
  return rows.length;
}

/**
 * Uses up one of the day's `expireNextUrls` (atomically, so concurrent requests expire exactly that
 * many URLs). True when this URL must be born expired.
 */
export async function takeExpiredUrl(db: Database, billDate: string): Promise<boolean> {
  const remaining = sql`(${providerBillFaults.faults}->>'expireNextUrls')::int`;
  const rows = await db
    .update(providerBillFaults)
    .set({
      faults: sql`jsonb_set(${providerBillFaults.faults}, '{expireNextUrls}', to_jsonb(${remaining} - 1))`,
      updatedAt: new Date(),
    })
    .where(sql`${providerBillFaults.billDate} = ${billDate} and ${remaining} > 0`)
    .returning({ billDate: providerBillFaults.billDate });
  return rows.length > 0;
}

/** A summary with the fault's deltas added. */
export function applySummaryDelta(
  summary: StatementSummary,
  delta: BillFaults['summaryDelta'],
): StatementSummary {
  if (!delta) return summary;
  return {
    rows: summary.rows + (delta.rows ?? 0),
    payCount: summary.payCount + (delta.payCount ?? 0),
    payAmount: summary.payAmount + (delta.payAmount ?? 0),
    refundCount: summary.refundCount + (delta.refundCount ?? 0),
    refundAmount: summary.refundAmount + (delta.refundAmount ?? 0),
    fee: summary.fee + (delta.fee ?? 0),
  };
}
