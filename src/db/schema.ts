import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  char,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import { ORDER_STATUSES, PAYMENT_PROVIDERS, SETTLED_BY } from '../domain/order';

const tz = { withTimezone: true, mode: 'date' } as const;
const REFUND_STATUSES = ['PROCESSING', 'SUCCEEDED', 'FAILED', 'UNKNOWN'] as const;

/** The shop's orders. Only conditional updates (`... WHERE status = 'UNPAID'`) ever change `status`. */
export const orders = pgTable(
  'orders',
  {
    id: text('id').primaryKey(),
    /** Minor units (fen, cents): money is never a float. */
    amount: bigint('amount', { mode: 'number' }).notNull(),
    currency: char('currency', { length: 3 }).notNull(),
    /**
     * The provider the order's trade is (or would be) at: every query, close, refund and reconciliation
     * of the order goes there. createOrder always names it; the default is the provider of every row
     * from before the column (migration 0006).
     */
    provider: text('provider', { enum: PAYMENT_PROVIDERS }).notNull().default('simulator'),
    status: text('status', { enum: ORDER_STATUSES }).notNull().default('UNPAID'),
    payDeadline: timestamp('pay_deadline', tz).notNull(),
    paidAt: timestamp('paid_at', tz),
    /** Minor units refunded so far; a refund's conditional update keeps it at most `amount`. */
    refundedAmount: bigint('refunded_amount', { mode: 'number' }).notNull().default(0),
    /** The trade that paid (or was held for review with) the order. */
    tradeNo: text('trade_no'),
    /**
     * The trade payrecon opened at the provider for this order, when it opened one: a paid notice that
     * names another trade is checked with the provider before it changes anything.
     */
    providerTradeNo: text('provider_trade_no'),
    /** Where the order's result notifications go (merchant_endpoints.id); none: recorded, not sent. */
    notifyEndpointId: text('notify_endpoint_id'),
    settledBy: text('settled_by', { enum: SETTLED_BY }),
    closedAt: timestamp('closed_at', tz),
    closeReason: text('close_reason'),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
  },
  (t) => [
    check('orders_amount_nonnegative', sql`${t.amount} >= 0`),
    check(
      'orders_status_known',
      sql`${t.status} in ('UNPAID','PAID','PARTIALLY_REFUNDED','REFUNDED','CLOSED','NEEDS_REVIEW')`,
    ),
    check(
      'orders_refunded_within_paid',
      sql`${t.refundedAmount} >= 0 and ${t.refundedAmount} <= ${t.amount}`,
    ),
    check(
      'orders_settled_by_known',
      sql`${t.settledBy} is null or ${t.settledBy} in ('mq','poll','manual','reconciliation')`,
    ),
    check('orders_provider_known', sql`${t.provider} in ('simulator','alipay','wechatpay')`),
    check(
      'orders_paid_has_trade',
      sql`${t.status} <> 'PAID' or (${t.tradeNo} is not null and ${t.paidAt} is not null)`,
    ),
    index('orders_status_idx').on(t.status),
    // The daily reconciliation reads one day of paid orders.
    index('orders_paid_at_idx').on(t.paidAt),
  ],
);

/** Append-only log of every payment fact payrecon saw: notifications, poll results, operator input. */
export const paymentEvents = pgTable(
  'payment_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orderId: text('order_id').notNull(),
    source: text('source', { enum: SETTLED_BY }).notNull(),
    /** The notification's id; null for polls. Unique, so a redelivered notification is recorded once. */
    messageId: text('message_id'),
    tradeNo: text('trade_no'),
    tradeStatus: text('trade_status').notNull(),
    amount: bigint('amount', { mode: 'number' }),
    currency: char('currency', { length: 3 }),
    paidAt: timestamp('paid_at', tz),
    recordedAt: timestamp('recorded_at', tz).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('payment_events_message_id_key').on(t.messageId),
    index('payment_events_order_idx').on(t.orderId, t.recordedAt),
    check('payment_events_source_known', sql`${t.source} in ('mq','poll','manual','reconciliation')`),
  ],
);

/**
 * Facts that contradict an order's state, for an operator. One row per order, kind and subject: the trade,
 * refund request or notice it is about (src/domain/discrepancy.ts), so a second one is never dropped.
 */
export const paymentDiscrepancies = pgTable(
  'payment_discrepancies',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    orderId: text('order_id').notNull(),
    kind: text('kind').notNull(),
    /** What it is about (a trade number, an out_request_no, a notice's message id); '' for the order itself. */
    subject: text('subject').notNull().default(''),
    details: jsonb('details').notNull(),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    resolvedAt: timestamp('resolved_at', tz),
    resolution: text('resolution'),
  },
  (t) => [uniqueIndex('payment_discrepancies_order_kind_subject_key').on(t.orderId, t.kind, t.subject)],
);

/** Where a merchant wants to hear about its orders' results, and how hard to try. */
export const merchantEndpoints = pgTable(
  'merchant_endpoints',
  {
    id: text('id').primaryKey(),
    url: text('url').notNull(),
    /** Standard Webhooks secrets (`whsec_...`); several during a rotation, each signs every attempt. */
    secrets: jsonb('secrets').$type<string[]>().notNull(),
    /** stepwise: 3s, 30s, 60s, 120s, 180s, 300s between attempts; exponential: 5·(2^n−1) s, 5 attempts. */
    ladder: text('ladder', { enum: ['stepwise', 'exponential'] })
      .notNull()
      .default('stepwise'),
    attemptTimeoutMs: integer('attempt_timeout_ms').notNull().default(5_000),
    status: text('status', { enum: ['ENABLED', 'DISABLED'] })
      .notNull()
      .default('ENABLED'),
    disabledReason: text('disabled_reason'),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
  },
  (t) => [
    check('merchant_endpoints_timeout_positive', sql`${t.attemptTimeoutMs} > 0`),
    check('merchant_endpoints_status_known', sql`${t.status} in ('ENABLED','DISABLED')`),
  ],
);

/**
 * One row per final transition of an order, written in the same transaction as the conditional update:
 * never lost, never emitted for a transition that did not happen. `sequence` orders an order's events.
 */
export const merchantEvents = pgTable(
  'merchant_events',
  {
    /** `evt_<orderId>_<sequence>`: also the `webhook-id`, the same on every attempt. */
    id: text('id').primaryKey(),
    orderId: text('order_id').notNull(),
    sequence: integer('sequence').notNull(),
    /** order.paid, order.closed, order.needs_review. */
    type: text('type').notNull(),
    payload: jsonb('payload').$type<Record<string, unknown>>().notNull(),
    endpointId: text('endpoint_id'),
    status: text('status', {
      enum: ['PENDING', 'DELIVERED', 'EXHAUSTED', 'NO_ENDPOINT', 'ENDPOINT_DISABLED'],
    })
      .notNull()
      .default('PENDING'),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    deliveredAt: timestamp('delivered_at', tz),
    exhaustedAt: timestamp('exhausted_at', tz),
    updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('merchant_events_order_sequence_key').on(t.orderId, t.sequence),
    index('merchant_events_status_idx').on(t.status, t.createdAt),
  ],
);

/** Every attempt to deliver an event: what an operator opens when a merchant says "we never got it". */
export const notificationAttempts = pgTable(
  'notification_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    eventId: text('event_id').notNull(),
    attempt: integer('attempt').notNull(),
    startedAt: timestamp('started_at', tz).notNull(),
    durationMs: integer('duration_ms').notNull(),
    httpStatus: integer('http_status'),
    /** Set when the attempt failed: TIMEOUT, CONNECTION_REFUSED, BAD_BODY, HTTP_STATUS, NETWORK. */
    errorKind: text('error_kind'),
    responsePrefix: text('response_prefix'),
  },
  (t) => [uniqueIndex('notification_attempts_event_attempt_key').on(t.eventId, t.attempt)],
);

/**
 * One row per refund request, written before anything is sent to the provider: `out_request_no` is the
 * idempotency key every retry reuses, so a retried request can never refund twice.
 */
export const refunds = pgTable(
  'refunds',
  {
    id: text('id').primaryKey(),
    orderId: text('order_id').notNull(),
    outRequestNo: text('out_request_no').notNull(),
    /** Minor units. */
    amount: bigint('amount', { mode: 'number' }).notNull(),
    reason: text('reason'),
    /** PROCESSING until the provider answers; SUCCEEDED, FAILED, or UNKNOWN past the refund deadline. */
    status: text('status', { enum: REFUND_STATUSES }).notNull().default('PROCESSING'),
    providerRefundNo: text('provider_refund_no'),
    failureReason: text('failure_reason'),
    settledBy: text('settled_by', { enum: SETTLED_BY }),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    settledAt: timestamp('settled_at', tz),
    updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('refunds_out_request_no_key').on(t.outRequestNo),
    index('refunds_order_idx').on(t.orderId),
    // The daily reconciliation reads one day of settled refunds.
    index('refunds_settled_at_idx').on(t.settledAt),
    check('refunds_amount_positive', sql`${t.amount} > 0`),
  ],
);

export * from './reconciliation-schema';
