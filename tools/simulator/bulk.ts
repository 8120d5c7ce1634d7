import { createHash } from 'node:crypto';
import type { Sql } from '../../src/db/client';
import { billDayBounds } from '../../src/provider/statement-format';

/**
 * Bulk data for the benchmarks: `count` paid trades in one `INSERT ... SELECT generate_series`, fast
 * enough for a million rows (a few seconds), so a bill of that size can be served and reconciled.
 */

export interface SeedPaidTradesOptions {
  count: number;
  /** The Asia/Shanghai day the trades are paid on, spread evenly over it. */
  billDate: string;
  /** Order ids are `${prefix}${n}`, n from 1 to count. */
  prefix: string;
  /** Minor units of every trade; default 1000 + n % 9000 (varied, deterministic). */
  amount?: number;
  currency?: string;
}

/**
 * Inserts the trades (TRADE_SUCCESS, paid in full); an order id that already has a trade is left as it
 * is. Trade numbers are the date, 6 digits from the prefix and n: the same input gives the same
 * numbers. Returns how many were inserted.
 */
export async function seedPaidTrades(
  sql: Sql,
  options: SeedPaidTradesOptions,
): Promise<{ inserted: number }> {
  const { count, billDate, prefix } = options;
  if (!Number.isSafeInteger(count) || count < 1 || count > 10_000_000) {
    throw new RangeError(`count must be a whole number from 1 to 10,000,000, not ${count}`);
  }
  if (options.amount !== undefined && (!Number.isSafeInteger(options.amount) || options.amount < 0)) {
    throw new RangeError(`amount must be a whole number of minor units, not ${options.amount}`);
  }
  const { start } = billDayBounds(billDate);
  const prefixDigits = (createHash('sha256').update(prefix).digest().readUInt32BE(0) % 1_000_000)
    .toString()
    .padStart(6, '0');
  const tradeNoHead = `${billDate.replaceAll('-', '')}${prefixDigits}`;
  // Whole milliseconds between payments, so the day's last payment is still on the day.
  const stepMs = Math.floor(86_400_000 / count);
  const result = await sql`
    insert into provider.trades
      (trade_no, order_id, amount, currency, status, paid_amount, paid_at, created_at, updated_at)
    select ${tradeNoHead} || lpad(n::text, 10, '0'),
           ${prefix} || n::text,
           a.amount, ${options.currency ?? 'CNY'}, 'TRADE_SUCCESS', a.amount, p.at, p.at, p.at
      from generate_series(1, ${count}::int) as n,
           lateral (select coalesce(${options.amount ?? null}::bigint, 1000 + n % 9000) as amount) a,
           lateral (select ${start.toISOString()}::timestamptz + ((n - 1)::bigint * ${stepMs}) * interval '1 millisecond' as at) p
    on conflict do nothing`;
  return { inserted: result.count };
}
