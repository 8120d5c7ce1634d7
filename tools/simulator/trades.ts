import { randomInt } from 'node:crypto';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { Database } from '../../src/db/client';
import type { TradeStatus } from '../../src/domain';
import { providerTrades } from './db/schema';
import { readTradeFaults, type TradeFaults } from './faults';

/**
 * The simulator's trades (`provider.trades`). Every status change is a conditional update, so two
 * racing calls (pay and close, two pays) cannot both win.
 */

export type TradeRow = typeof providerTrades.$inferSelect;

export interface Trade {
  tradeNo: string;
  orderId: string;
  /** What the order costs, minor units. */
  amount: number;
  currency: string;
  status: TradeStatus;
  /** What the buyer paid; null until paid. */
  paidAmount: number | null;
  paidAt: Date | null;
  closedAt: Date | null;
  /** What succeeded refunds gave back; equal to `paidAmount` on a trade refunded in full (TRADE_CLOSED). */
  refundedAmount: number;
  faults: TradeFaults;
}

export interface Transition {
  /** Did this call change the trade? */
  changed: boolean;
  trade: Trade;
}

export class TradeConflictError extends Error {
  override name = 'TradeConflictError';
}

export function toTrade(row: TradeRow): Trade {
  return {
    tradeNo: row.tradeNo,
    orderId: row.orderId,
    amount: row.amount,
    currency: row.currency,
    status: row.status,
    paidAmount: row.paidAmount,
    paidAt: row.paidAt,
    closedAt: row.closedAt,
    refundedAmount: row.refundedAmount,
    faults: readTradeFaults(row.faults),
  };
}

/** A trade number in the style of the big Chinese providers: the date and 16 random digits. */
export function newTradeNo(now = new Date()): string {
  const date = now.toISOString().slice(0, 10).replaceAll('-', '');
  const random = Array.from({ length: 4 }, () => String(randomInt(0, 10_000)).padStart(4, '0')).join('');
  return `${date}${random}`;
}

/**
 * Creates the order's trade. Idempotent per order: asking again with the same amount and currency
 * returns the existing trade (`changed: false`); with a different one it throws TradeConflictError.
 */
export async function createTrade(
  db: Database,
  input: { orderId: string; amount: number; currency: string; faults?: TradeFaults },
): Promise<Transition> {
  const [inserted] = await db
    .insert(providerTrades)
    .values({
      tradeNo: newTradeNo(),
      orderId: input.orderId,
      amount: input.amount,
      currency: input.currency,
      faults: input.faults ?? {},
    })
    .onConflictDoNothing({ target: providerTrades.orderId })
    .returning();
  if (inserted) return { changed: true, trade: toTrade(inserted) };

  const existing = await getTrade(db, input.orderId);
  if (!existing) throw new Error(`trade of order ${input.orderId} vanished while being created`);
  if (existing.amount !== input.amount || existing.currency !== input.currency) {
    throw new TradeConflictError(
      `order ${input.orderId} already has trade ${existing.tradeNo} for ${existing.amount} ${existing.currency}, not ${input.amount} ${input.currency}`,
    );
  }
  return { changed: false, trade: existing };
}

export async function getTrade(db: Database, orderId: string): Promise<Trade | null> {
  const [row] = await db.select().from(providerTrades).where(eq(providerTrades.orderId, orderId)).limit(1);
  return row ? toTrade(row) : null;
}

/** The trades of these orders (the chaos checks read the provider's truth where it is kept). */
export async function findTrades(db: Database, orderIds: string[]): Promise<Trade[]> {
  const rows = await db.select().from(providerTrades).where(inArray(providerTrades.orderId, orderIds));
  return rows.map(toTrade);
}

/**
 * Marks the trade paid (TRADE_SUCCESS) with what the buyer paid, if it is still waiting for payment.
 * `allowClosed` also pays a closed trade: a payment racing the close, which real providers do see.
 * Returns null when the order has no trade.
 */
export async function payTrade(
  db: Database,
  orderId: string,
  payment: { paidAmount: number; paidAt?: Date; allowClosed?: boolean },
): Promise<Transition | null> {
  const payable: TradeStatus[] = payment.allowClosed
    ? ['WAIT_BUYER_PAY', 'TRADE_CLOSED']
    : ['WAIT_BUYER_PAY'];
  const now = new Date();
  const [row] = await db
    .update(providerTrades)
    .set({
      status: 'TRADE_SUCCESS',
      paidAmount: payment.paidAmount,
      paidAt: payment.paidAt ?? now,
      updatedAt: now,
    })
    .where(and(eq(providerTrades.orderId, orderId), inArray(providerTrades.status, payable)))
    .returning();
  if (row) return { changed: true, trade: toTrade(row) };
  const current = await getTrade(db, orderId);
  return current ? { changed: false, trade: current } : null;
}

/**
 * Closes the trade if nobody paid it yet (WAIT_BUYER_PAY → TRADE_CLOSED). A paid or already closed
 * trade is returned unchanged, so the caller learns that it was paid. Null when the order has no trade.
 */
export async function closeTrade(db: Database, orderId: string): Promise<Transition | null> {
  const now = new Date();
  const [row] = await db
    .update(providerTrades)
    .set({ status: 'TRADE_CLOSED', closedAt: now, updatedAt: now })
    .where(and(eq(providerTrades.orderId, orderId), eq(providerTrades.status, 'WAIT_BUYER_PAY')))
    .returning();
  if (row) return { changed: true, trade: toTrade(row) };
  const current = await getTrade(db, orderId);
  return current ? { changed: false, trade: current } : null;
}

/**
 * Ends the trade's refund window (TRADE_SUCCESS → TRADE_FINISHED): paid all the same, but refunds are
 * refused from now on. Null when the order has no trade.
 */
export async function finishTrade(db: Database, orderId: string): Promise<Transition | null> {
  const [row] = await db
    .update(providerTrades)
    .set({ status: 'TRADE_FINISHED', updatedAt: new Date() })
    .where(and(eq(providerTrades.orderId, orderId), eq(providerTrades.status, 'TRADE_SUCCESS')))
    .returning();
  if (row) return { changed: true, trade: toTrade(row) };
  const current = await getTrade(db, orderId);
  return current ? { changed: false, trade: current } : null;
}

/** Replaces the trade's fault knobs. Null when the order has no trade. */
export async function setTradeFaults(
  db: Database,
  orderId: string,
  faults: TradeFaults,
): Promise<Trade | null> {
  const [row] = await db
    .update(providerTrades)
    .set({ faults, updatedAt: new Date() })
    .where(eq(providerTrades.orderId, orderId))
    .returning();
  return row ? toTrade(row) : null;
}

/**
 * Uses up one of the trade's `queryErrors` (atomically, so concurrent queries fail exactly that many
 * times). True when this query must fail.
 */
export async function takeQueryError(db: Database, orderId: string): Promise<boolean> {
  const remaining = sql`(${providerTrades.faults}->>'queryErrors')::int`;
  const rows = await db
    .update(providerTrades)
    .set({ faults: sql`jsonb_set(${providerTrades.faults}, '{queryErrors}', to_jsonb(${remaining} - 1))` })
    .where(and(eq(providerTrades.orderId, orderId), sql`${remaining} > 0`))
    .returning({ orderId: providerTrades.orderId });
  return rows.length > 0;
}
