import { and, eq, lte, sql } from 'drizzle-orm';
import type { Database } from '../../src/db/client';
import { providerRefunds, providerTrades } from './db/schema';
import { type RefundFaults, refundFaultsSchema } from './faults';
import { newTradeNo, type Trade, toTrade } from './trades';

/**
 * The simulator's refunds (`provider.refunds`). One row per (order, out_request_no): a request asked
 * again finds its row and never refunds twice. The trade's row is locked while a request checks what is
 * left to refund (paid minus succeeded and processing refunds), so two racing requests cannot both take
 * the last of it; a refund ends (PROCESSING → SUCCESS | FAILED) in one conditional update that only one
 * caller wins, and only that transition moves money: `executions` + 1 and the trade's `refunded_amount`.
 */

export type RefundStatus = 'PROCESSING' | 'SUCCESS' | 'FAILED';

export interface Refund {
  refundNo: string;
  orderId: string;
  outRequestNo: string;
  /** Minor units. */
  amount: number;
  currency: string;
  reason: string | null;
  status: RefundStatus;
  failureReason: string | null;
  faults: RefundFaults;
  /** When a PROCESSING refund ends. */
  settleAt: Date;
  /** When it ended; null while PROCESSING. */
  settledAt: Date | null;
  /** 1 once it succeeded, 0 otherwise: more would be a refund executed twice. */
  executions: number;
  createdAt: Date;
}

/**
 * Why a refund request is refused, in the answer's `code` (as a real provider's sub_code): the first four
 * mean the provider took nothing; OUT_REQUEST_NO_REUSED means a refund with this number exists already.
 */
export type RefundRefusalCode =
  | 'TRADE_NOT_PAID'
  | 'TRADE_FINISHED'
  | 'TRADE_CLOSED'
  | 'REFUND_AMOUNT_EXCEEDED'
  | 'OUT_REQUEST_NO_REUSED';

/** The request cannot be accepted (trade not refundable, over the refundable amount, a different amount for a known out_request_no). */
export class RefundRefusedError extends Error {
  override name = 'RefundRefusedError';
  constructor(
    readonly code: RefundRefusalCode,
    message: string,
  ) {
    super(message);
  }
}

type RefundRow = typeof providerRefunds.$inferSelect;

function toRefund(row: RefundRow): Refund {
  const faults = refundFaultsSchema.safeParse(row.faults ?? {});
  return {
    refundNo: row.refundNo,
    orderId: row.orderId,
    outRequestNo: row.outRequestNo,
    amount: row.amount,
    currency: row.currency,
    reason: row.reason,
    status: row.status,
    failureReason: row.failureReason,
    faults: faults.success ? faults.data : {},
    settleAt: row.settleAt,
    settledAt: row.settledAt,
    executions: row.executions,
    createdAt: row.createdAt,
  };
}

export const DEFAULT_FAILURE_REASON = 'simulated refund failure (fault fail)';

export interface RefundInput {
  orderId: string;
  outRequestNo: string;
  amount: number;
  reason?: string | null;
  /** The refund's knobs, stored with it. */
  faults?: RefundFaults;
}

/**
 * Accepts a refund request, or finds the one already made with this out_request_no (`created: false`;
 * a different amount throws RefundRefusedError). Refuses (RefundRefusedError) a trade that is not paid,
 * past its refund window (TRADE_FINISHED), or without enough left to refund. Null when the order has no
 * trade. The new refund is PROCESSING until `now + faults.processingMs`.
 */
export async function requestRefund(
  db: Database,
  input: RefundInput,
  now = new Date(),
): Promise<{ created: boolean; refund: Refund; trade: Trade } | null> {
  return db.transaction(async (tx) => {
    const [tradeRow] = await tx
      .select()
      .from(providerTrades)
      .where(eq(providerTrades.orderId, input.orderId))
      .for('update');
    if (!tradeRow) return null;
    const trade = toTrade(tradeRow);

    const [existing] = await tx
      .select()
      .from(providerRefunds)
      .where(
        and(eq(providerRefunds.orderId, input.orderId), eq(providerRefunds.outRequestNo, input.outRequestNo)),
      );
    if (existing) {
      if (existing.amount !== input.amount) {
        throw new RefundRefusedError(
          'OUT_REQUEST_NO_REUSED',
          `refund ${input.outRequestNo} of order ${input.orderId} was requested for ${existing.amount}, not ${input.amount}: an out_request_no names one refund`,
        );
      }
      return { created: false, refund: toRefund(existing), trade };
    }

    if (trade.status === 'WAIT_BUYER_PAY') {
      throw new RefundRefusedError(
        'TRADE_NOT_PAID',
        `trade ${trade.tradeNo} is not paid (WAIT_BUYER_PAY): nothing to refund`,
      );
    }
    if (trade.status === 'TRADE_FINISHED') {
      throw new RefundRefusedError(
        'TRADE_FINISHED',
        `trade ${trade.tradeNo} is TRADE_FINISHED: its refund window is over, refunds are refused`,
      );
    }
    if (trade.status === 'TRADE_CLOSED') {
      throw new RefundRefusedError(
        'TRADE_CLOSED',
        trade.refundedAmount > 0
          ? `trade ${trade.tradeNo} is TRADE_CLOSED: refunded in full (${trade.refundedAmount})`
          : `trade ${trade.tradeNo} is TRADE_CLOSED: closed unpaid, nothing to refund`,
      );
    }
    const paid = trade.paidAmount ?? 0;
    const [reserved] = await tx
      .select({ total: sql<number>`coalesce(sum(${providerRefunds.amount}), 0)`.mapWith(Number) })
      .from(providerRefunds)
      .where(
        and(
          eq(providerRefunds.orderId, input.orderId),
          sql`${providerRefunds.status} in ('SUCCESS', 'PROCESSING')`,
        ),
      );
    const taken = reserved?.total ?? 0;
    if (taken + input.amount > paid) {
      throw new RefundRefusedError(
        'REFUND_AMOUNT_EXCEEDED',
        `refund of ${input.amount} exceeds what is left to refund on trade ${trade.tradeNo}: paid ${paid}, refunded or being refunded ${taken}, refundable ${paid - taken}`,
      );
    }

    const [inserted] = await tx
      .insert(providerRefunds)
      .values({
        refundNo: `R${newTradeNo(now)}`,
        orderId: input.orderId,
        outRequestNo: input.outRequestNo,
        amount: input.amount,
        currency: trade.currency,
        reason: input.reason ?? null,
        faults: input.faults ?? {},
        settleAt: new Date(now.getTime() + (input.faults?.processingMs ?? 0)),
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    if (!inserted) throw new Error(`refund ${input.outRequestNo} of order ${input.orderId} was not stored`);
    return { created: true, refund: toRefund(inserted), trade };
  });
}

/**
 * Ends a PROCESSING refund as its knobs say: FAILED when `fail`, else SUCCESS, which adds its amount to
 * the trade's refunded amount (TRADE_CLOSED once refunded in full) and counts one execution.
 * `changed: false` when it had ended already (another caller won). Null when there is no such refund.
 */
export async function settleRefund(
  db: Database,
  refundNo: string,
  now = new Date(),
): Promise<{ changed: boolean; refund: Refund } | null> {
  const [found] = await db
    .select({ orderId: providerRefunds.orderId })
    .from(providerRefunds)
    .where(eq(providerRefunds.refundNo, refundNo));
  if (!found) return null;
  return db.transaction(async (tx) => {
    // Trade first, then refund: the same lock order as requestRefund.
    await tx
      .select({ orderId: providerTrades.orderId })
      .from(providerTrades)
      .where(eq(providerTrades.orderId, found.orderId))
      .for('update');
    const [row] = await tx
      .select()
      .from(providerRefunds)
      .where(eq(providerRefunds.refundNo, refundNo))
      .for('update');
    if (!row) return null;
    if (row.status !== 'PROCESSING') return { changed: false, refund: toRefund(row) };
    const fail = toRefund(row).faults.fail;
    const failed = fail !== undefined && fail !== false;
    const [settled] = await tx
      .update(providerRefunds)
      .set({
        status: failed ? 'FAILED' : 'SUCCESS',
        failureReason: failed ? (typeof fail === 'string' ? fail : DEFAULT_FAILURE_REASON) : null,
        settledAt: now,
        updatedAt: now,
        executions: failed ? providerRefunds.executions : sql`${providerRefunds.executions} + 1`,
      })
      .where(and(eq(providerRefunds.refundNo, refundNo), eq(providerRefunds.status, 'PROCESSING')))
      .returning();
    if (!settled) throw new Error(`refund ${refundNo} changed under its lock`);
    if (!failed) {
      const refunded = sql`${providerTrades.refundedAmount} + ${settled.amount}`;
      const full = sql`${refunded} >= coalesce(${providerTrades.paidAmount}, ${providerTrades.amount})`;
      await tx
        .update(providerTrades)
        .set({
          refundedAmount: sql`${refunded}`,
          status: sql`case when ${full} then 'TRADE_CLOSED' else ${providerTrades.status} end`,
          closedAt: sql`case when ${full} then ${now.toISOString()}::timestamptz else ${providerTrades.closedAt} end`,
          updatedAt: now,
        })
        .where(eq(providerTrades.orderId, settled.orderId));
    }
    return { changed: true, refund: toRefund(settled) };
  });
}

export async function getRefund(db: Database, orderId: string, outRequestNo: string): Promise<Refund | null> {
  const [row] = await db
    .select()
    .from(providerRefunds)
    .where(and(eq(providerRefunds.orderId, orderId), eq(providerRefunds.outRequestNo, outRequestNo)))
    .limit(1);
  return row ? toRefund(row) : null;
}

/** The order's refunds, oldest first. */
export async function listRefunds(db: Database, orderId: string): Promise<Refund[]> {
  const rows = await db
    .select()
    .from(providerRefunds)
    .where(eq(providerRefunds.orderId, orderId))
    .orderBy(providerRefunds.createdAt, providerRefunds.refundNo);
  return rows.map(toRefund);
}

/** The order's PROCESSING refunds whose time has come (a simulator restarted while they waited). */
export async function dueRefunds(db: Database, orderId: string, now = new Date()): Promise<string[]> {
  const rows = await db
    .select({ refundNo: providerRefunds.refundNo })
    .from(providerRefunds)
    .where(
      and(
        eq(providerRefunds.orderId, orderId),
        eq(providerRefunds.status, 'PROCESSING'),
        lte(providerRefunds.settleAt, now),
      ),
    );
  return rows.map((row) => row.refundNo);
}

/** Counts that prove no refund was executed twice: `maxExecutions` ≤ 1, `executions` = `succeeded`. */
export interface RefundStats {
  /** The order counted, or null for every refund the simulator holds. */
  orderId: string | null;
  refunds: number;
  processing: number;
  succeeded: number;
  failed: number;
  /** Refunds executed (money moved), summed over refunds. */
  executions: number;
  /** The most any one refund was executed: more than 1 would be a refund executed twice. */
  maxExecutions: number;
  /** Sum of succeeded refunds. */
  refundedAmount: number;
}

export async function refundStats(db: Database, orderId?: string): Promise<RefundStats> {
  const count = (status: RefundStatus) =>
    sql<number>`count(*) filter (where ${providerRefunds.status} = ${status})`.mapWith(Number);
  const [row] = await db
    .select({
      refunds: sql<number>`count(*)`.mapWith(Number),
      processing: count('PROCESSING'),
      succeeded: count('SUCCESS'),
      failed: count('FAILED'),
      executions: sql<number>`coalesce(sum(${providerRefunds.executions}), 0)`.mapWith(Number),
      maxExecutions: sql<number>`coalesce(max(${providerRefunds.executions}), 0)`.mapWith(Number),
      refundedAmount:
        sql<number>`coalesce(sum(${providerRefunds.amount}) filter (where ${providerRefunds.status} = 'SUCCESS'), 0)`.mapWith(
          Number,
        ),
    })
    .from(providerRefunds)
    .where(orderId === undefined ? undefined : eq(providerRefunds.orderId, orderId));
  return {
    orderId: orderId ?? null,
    refunds: row?.refunds ?? 0,
    processing: row?.processing ?? 0,
    succeeded: row?.succeeded ?? 0,
    failed: row?.failed ?? 0,
    executions: row?.executions ?? 0,
    maxExecutions: row?.maxExecutions ?? 0,
    refundedAmount: row?.refundedAmount ?? 0,
  };
}
