import { and, asc, eq, type SQL, sql } from 'drizzle-orm';
import type { Database } from '../../src/db/client';
import { merchantDeliveries, merchantOrderFaults, merchantSecrets } from './db/schema';
import { type AnswerFaults, isAcknowledgement, type OrderFaults, readOrderFaults } from './faults';

/** The merchant simulator's rows: deliveries, secrets per merchant, faults per order. */

export type DeliveryRow = typeof merchantDeliveries.$inferSelect;

/** What the simulator read from one delivery before answering it. */
export interface ReceivedDelivery {
  merchantId: string;
  webhookId: string | null;
  /** Seconds since the epoch, as the `webhook-timestamp` header said. */
  webhookTimestamp: number | null;
  signatureHeader: string | null;
  orderId: string | null;
  eventType: string | null;
  sequence: number | null;
  /** The raw body. */
  body: string;
  signatureValid: boolean;
  signatureError: string | null;
}

/** One delivery as `GET /deliveries` answers it: what was received (but the signature header), and the answer. */
export interface DeliveryView extends Omit<ReceivedDelivery, 'signatureHeader'> {
  id: number;
  /** The how-manieth validly signed delivery of its order (1-based); null for a bad signature. */
  orderDelivery: number | null;
  /** '200', '500', ... or 'pending', 'timeout', 'refused' (see db/schema.ts). */
  answer: string;
  answerBody: string | null;
  /** true when the answer counts as success by payrecon's rule (2xx, body empty, success or SUCCESS JSON). */
  acknowledged: boolean;
  delayMs: number;
  faults: AnswerFaults;
  receivedAt: string;
  answeredAt: string | null;
}

export function deliveryView(row: DeliveryRow): DeliveryView {
  const status = /^\d{3}$/.test(row.answer) ? Number(row.answer) : 0;
  return {
    id: row.id,
    merchantId: row.merchantId,
    webhookId: row.webhookId,
    webhookTimestamp: row.webhookTimestamp,
    orderId: row.orderId,
    eventType: row.eventType,
    sequence: row.sequence,
    body: row.body,
    signatureValid: row.signatureValid,
    signatureError: row.signatureError,
    orderDelivery: row.orderDelivery,
    answer: row.answer,
    answerBody: row.answerBody,
    acknowledged: isAcknowledgement(status, row.answerBody ?? ''),
    delayMs: row.delayMs,
    faults: readOrderFaults(row.faults),
    receivedAt: row.receivedAt.toISOString(),
    answeredAt: row.answeredAt?.toISOString() ?? null,
  };
}

/** The secrets of `merchantId`, else those of `*`, else none. */
export async function secretsFor(db: Database, merchantId: string): Promise<string[]> {
  const rows = await db
    .select({ merchantId: merchantSecrets.merchantId, secrets: merchantSecrets.secrets })
    .from(merchantSecrets)
    .where(sql`${merchantSecrets.merchantId} in (${merchantId}, '*')`);
  const own = rows.find((row) => row.merchantId === merchantId) ?? rows.find((row) => row.merchantId === '*');
  return own?.secrets ?? [];
}

export async function setSecrets(db: Database, merchantId: string, secrets: string[]): Promise<void> {
  await db
    .insert(merchantSecrets)
    .values({ merchantId, secrets })
    .onConflictDoUpdate({ target: merchantSecrets.merchantId, set: { secrets, updatedAt: sql`now()` } });
}

export async function getOrderFaults(db: Database, orderId: string): Promise<OrderFaults> {
  const [row] = await db
    .select({ faults: merchantOrderFaults.faults })
    .from(merchantOrderFaults)
    .where(eq(merchantOrderFaults.orderId, orderId));
  return readOrderFaults(row?.faults);
}

export async function setOrderFaults(db: Database, orderId: string, faults: OrderFaults): Promise<void> {
  await db
    .insert(merchantOrderFaults)
    .values({ orderId, faults })
    .onConflictDoUpdate({ target: merchantOrderFaults.orderId, set: { faults, updatedAt: sql`now()` } });
}

/**
 * Records a delivery and decides its answer in one transaction. For a validly signed delivery the
 * transaction holds an advisory lock on its order (or, without an order id, its webhook id) while it
 * counts the earlier ones, so two deliveries of one order arriving together get numbers 1 and 2, never
 * 1 and 1. `decide` gets that number and the order's stored knobs and returns the row's answer fields.
 */
export async function recordDelivery(
  db: Database,
  received: ReceivedDelivery,
  decide: (
    orderDelivery: number | null,
    orderFaults: OrderFaults,
  ) => {
    answer: string;
    answerBody: string | null;
    delayMs: number;
    faults: AnswerFaults;
    answered: boolean;
  },
): Promise<DeliveryRow> {
  return db.transaction(async (tx) => {
    let orderDelivery: number | null = null;
    let orderFaults: OrderFaults = {};
    if (received.signatureValid) {
      const key = received.orderId ?? `webhook:${received.webhookId ?? ''}`;
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`payrecon-merchant-order:${key}`}))`);
      const same =
        received.orderId !== null
          ? eq(merchantDeliveries.orderId, received.orderId)
          : and(
              sql`${merchantDeliveries.orderId} is null`,
              eq(merchantDeliveries.webhookId, received.webhookId ?? ''),
            );
      const [counted] = await tx
        .select({ n: sql<number>`count(*)::int` })
        .from(merchantDeliveries)
        .where(and(same, eq(merchantDeliveries.signatureValid, true)));
      orderDelivery = (counted?.n ?? 0) + 1;
      if (received.orderId !== null) {
        const [row] = await tx
          .select({ faults: merchantOrderFaults.faults })
          .from(merchantOrderFaults)
          .where(eq(merchantOrderFaults.orderId, received.orderId));
        orderFaults = readOrderFaults(row?.faults);
      }
    }
    const decided = decide(orderDelivery, orderFaults);
    const [row] = await tx
      .insert(merchantDeliveries)
      .values({
        ...received,
        orderDelivery,
        answer: decided.answer,
        answerBody: decided.answerBody,
        delayMs: decided.delayMs,
        faults: decided.faults,
        answeredAt: decided.answered ? sql`now()` : null,
      })
      .returning();
    if (!row) throw new Error('insert into merchant.deliveries returned no row');
    return row;
  });
}

/** Sets the final answer of a delivery whose answer was held back. */
export async function finishDelivery(db: Database, id: number, answer: string): Promise<void> {
  await db
    .update(merchantDeliveries)
    .set({ answer, answeredAt: sql`clock_timestamp()` })
    .where(eq(merchantDeliveries.id, id));
}

export interface DeliveryFilter {
  orderId?: string;
  webhookId?: string;
  merchantId?: string;
}

/** Deliveries matching every filter given, in the order they arrived. */
export async function listDeliveries(
  db: Database,
  filter: DeliveryFilter,
  limit: number,
): Promise<DeliveryRow[]> {
  const where: SQL[] = [];
  if (filter.orderId !== undefined) where.push(eq(merchantDeliveries.orderId, filter.orderId));
  if (filter.webhookId !== undefined) where.push(eq(merchantDeliveries.webhookId, filter.webhookId));
  if (filter.merchantId !== undefined) where.push(eq(merchantDeliveries.merchantId, filter.merchantId));
  return db
    .select()
    .from(merchantDeliveries)
    .where(where.length > 0 ? and(...where) : undefined)
    .orderBy(asc(merchantDeliveries.id))
    .limit(limit);
}
