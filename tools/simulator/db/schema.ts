import { bigint, char, jsonb, pgSchema, text, timestamp } from 'drizzle-orm/pg-core';

/**
 * The payment-service simulator's own data, in its own PostgreSQL schema `provider`, with its own
 * migrations (tools/simulator/drizzle/, `npm run sim:db:generate`). payrecon never reads it: it asks
 * the provider over HTTP (src/provider). Only the rig (the simulator, chaos checks) reads it directly.
 */

const tz = { withTimezone: true, mode: 'date' } as const;

export const provider = pgSchema('provider');

export const providerTrades = provider.table('trades', {
  tradeNo: text('trade_no').primaryKey(),
  orderId: text('order_id').notNull().unique(),
  amount: bigint('amount', { mode: 'number' }).notNull(),
  currency: char('currency', { length: 3 }).notNull(),
  status: text('status', { enum: ['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED'] })
    .notNull()
    .default('WAIT_BUYER_PAY'),
  /** What the buyer actually paid (a fault knob can make it differ from `amount`). */
  paidAmount: bigint('paid_amount', { mode: 'number' }),
  paidAt: timestamp('paid_at', tz),
  closedAt: timestamp('closed_at', tz),
  /** Per-trade fault knobs for the notification, see tools/simulator/faults.ts. */
  faults: jsonb('faults').notNull().default({}),
  createdAt: timestamp('created_at', tz).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
});
