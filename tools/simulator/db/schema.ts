import { bigint, char, integer, jsonb, pgSchema, text, timestamp, unique } from 'drizzle-orm/pg-core';

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
  /**
   * What succeeded refunds gave back. A trade refunded in full turns TRADE_CLOSED (as at Alipay), the
   * same status as a trade closed unpaid: this amount tells the two apart.
   */
  refundedAmount: bigint('refunded_amount', { mode: 'number' }).notNull().default(0),
  /** Per-trade fault knobs for the notification, see tools/simulator/faults.ts. */
  faults: jsonb('faults').notNull().default({}),
  createdAt: timestamp('created_at', tz).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
});

/**
 * Refund requests, one per (order, out_request_no): asking again with the same out_request_no finds
 * this row and never refunds twice. A refund is PROCESSING until `settle_at`, then SUCCESS or FAILED,
 * a conditional update that only one caller wins.
 */
export const providerRefunds = provider.table(
  'refunds',
  {
    refundNo: text('refund_no').primaryKey(),
    orderId: text('order_id').notNull(),
    /** The shop's idempotency key of the request. */
    outRequestNo: text('out_request_no').notNull(),
    amount: bigint('amount', { mode: 'number' }).notNull(),
    currency: char('currency', { length: 3 }).notNull(),
    reason: text('reason'),
    status: text('status', { enum: ['PROCESSING', 'SUCCESS', 'FAILED'] })
      .notNull()
      .default('PROCESSING'),
    failureReason: text('failure_reason'),
    /** Knobs of this refund (processingMs, fail, and those of its notification), see ../faults.ts. */
    faults: jsonb('faults').notNull().default({}),
    /** When the refund ends (SUCCESS or FAILED, as its faults say). */
    settleAt: timestamp('settle_at', tz).notNull(),
    settledAt: timestamp('settled_at', tz),
    /**
     * How many times the money went back: incremented on the one transition to SUCCESS, so a test can
     * prove that no refund was ever executed twice (every row 0 or 1).
     */
    executions: integer('executions').notNull().default(0),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
  },
  (t) => [unique('refunds_order_id_out_request_no_unique').on(t.orderId, t.outRequestNo)],
);

/**
 * Faults of one day's trade statement (tools/simulator/bill-faults.ts), kept in the database so that
 * they survive a restart and the simulator's CLI can set them. They change only what the bill says,
 * never a trade.
 */
export const providerBillFaults = provider.table('bill_faults', {
  /** YYYY-MM-DD, an Asia/Shanghai calendar day. */
  billDate: text('bill_date').primaryKey(),
  faults: jsonb('faults').notNull().default({}),
  updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
});
