import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgSchema,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';

/**
 * The merchant simulator's own data, in its own PostgreSQL schema `merchant`, with its own migrations
 * (tools/merchant/drizzle/, `npm run merchant:db:generate`). payrecon never reads it: it only POSTs to
 * the simulator over HTTP. The rig (tests, demo, chaos) reads it through `GET /deliveries`.
 */

const tz = { withTimezone: true, mode: 'date' } as const;

export const merchant = pgSchema('merchant');

/** Every delivery attempt that reached the simulator, signed well or not, with what it answered. */
export const merchantDeliveries = merchant.table(
  'deliveries',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    /** The `:merchantId` of `POST /hooks/:merchantId`. */
    merchantId: text('merchant_id').notNull(),
    /** The `webhook-id` header (payrecon's event id: the same on every retry of one event). */
    webhookId: text('webhook_id'),
    /** The `webhook-timestamp` header, seconds since the epoch. */
    webhookTimestamp: bigint('webhook_timestamp', { mode: 'number' }),
    /** The `webhook-signature` header as received (space-separated `v1,<base64>` entries). */
    signatureHeader: text('signature_header'),
    /** From the JSON body (`orderId`, `type`, `sequence`, at the top level or under `data`). */
    orderId: text('order_id'),
    eventType: text('event_type'),
    sequence: integer('sequence'),
    /** The raw body, exactly the bytes that were signed (UTF-8). */
    body: text('body').notNull(),
    signatureValid: boolean('signature_valid').notNull(),
    /** Why the signature did not verify (missing headers, no matching signature, timestamp too old, ...). */
    signatureError: text('signature_error'),
    /** The how-manieth validly signed delivery of this order this is (1-based); what `failFirst` counts. */
    orderDelivery: integer('order_delivery'),
    /**
     * What the simulator answered: the HTTP status ('200', '500', ...), `pending` while a delayed answer
     * waits, `timeout` when the sender hung up before the delayed answer, `refused` when the simulator cut
     * the connection (a `refuseForMs` window began while the answer waited).
     */
    answer: text('answer').notNull(),
    answerBody: text('answer_body'),
    /** How long the answer was held back (`delayMs`). */
    delayMs: integer('delay_ms').notNull().default(0),
    /** The fault knobs in effect for this delivery (global merged with the order's). */
    faults: jsonb('faults').notNull().default({}),
    receivedAt: timestamp('received_at', tz).notNull().defaultNow(),
    answeredAt: timestamp('answered_at', tz),
  },
  (table) => [
    index('deliveries_order_id_idx').on(table.orderId),
    index('deliveries_webhook_id_idx').on(table.webhookId),
    index('deliveries_merchant_id_idx').on(table.merchantId),
  ],
);

/** The signing secrets each merchant id accepts (several during a rotation). `*` applies to any other id. */
export const merchantSecrets = merchant.table('merchants', {
  merchantId: text('merchant_id').primaryKey(),
  /** `whsec_<base64>` strings. */
  secrets: jsonb('secrets').$type<string[]>().notNull(),
  updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
});

/** Per-order fault knobs (tools/merchant/faults.ts), keyed on the body's `orderId`. */
export const merchantOrderFaults = merchant.table('order_faults', {
  orderId: text('order_id').primaryKey(),
  faults: jsonb('faults').notNull().default({}),
  updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
});
