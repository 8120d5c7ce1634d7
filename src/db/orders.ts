import { and, desc, sql as dsql, eq } from 'drizzle-orm';
import type {
  DiscrepancyKind,
  OrderStatus,
  PaymentEventSource,
  SettledBy,
  TransitionResult,
} from '../domain/index';
import type { Database } from './client';
import { orders, paymentDiscrepancies, paymentEvents } from './schema';

export type OrderRow = typeof orders.$inferSelect;

export interface NewOrder {
  id: string;
  amount: number;
  currency: string;
  payDeadline: Date;
}

export async function insertOrder(db: Database, order: NewOrder): Promise<OrderRow> {
  const [row] = await db.insert(orders).values(order).returning();
  if (!row) throw new Error(`order ${order.id} was not inserted`);
  return row;
}

export async function findOrder(db: Database, orderId: string): Promise<OrderRow | undefined> {
  const [row] = await db.select().from(orders).where(eq(orders.id, orderId));
  return row;
}

export async function listOrders(
  db: Database,
  filter: { status?: OrderStatus; limit?: number } = {},
): Promise<OrderRow[]> {
  return db
    .select()
    .from(orders)
    .where(filter.status ? eq(orders.status, filter.status) : undefined)
    .orderBy(desc(orders.createdAt))
    .limit(filter.limit ?? 100);
}

/** What an UPDATE ... RETURNING found, or, when it changed nothing, the row's current status. */
async function transitionResult(
  db: Database,
  orderId: string,
  updated: { status: OrderStatus; settledBy: SettledBy | null }[],
): Promise<TransitionResult> {
  const [row] = updated;
  if (row) return { changed: true, status: row.status, settledBy: row.settledBy };
  const current = await findOrder(db, orderId);
  return { changed: false, status: current?.status ?? null, settledBy: current?.settledBy ?? null };
}

/**
 * The one place an order becomes PAID. The `status = 'UNPAID'` guard makes it safe to call from both
 * reconciliation paths, twice, or late: only the first call changes the row.
 */
export async function markOrderPaid(
  db: Database,
  input: { orderId: string; tradeNo: string; paidAt: Date; settledBy: SettledBy },
): Promise<TransitionResult> {
  const updated = await db
    .update(orders)
    .set({
      status: 'PAID',
      tradeNo: input.tradeNo,
      paidAt: input.paidAt,
      settledBy: input.settledBy,
      updatedAt: dsql`now()`,
    })
    .where(and(eq(orders.id, input.orderId), eq(orders.status, 'UNPAID')))
    .returning({ status: orders.status, settledBy: orders.settledBy });
  return transitionResult(db, input.orderId, updated);
}

/** Conditional close: an order that some path already paid is never closed. */
export async function closeOrder(
  db: Database,
  input: { orderId: string; reason: string; settledBy: SettledBy },
): Promise<TransitionResult> {
  const updated = await db
    .update(orders)
    .set({
      status: 'CLOSED',
      closedAt: dsql`now()`,
      closeReason: input.reason,
      settledBy: input.settledBy,
      updatedAt: dsql`now()`,
    })
    .where(and(eq(orders.id, input.orderId), eq(orders.status, 'UNPAID')))
    .returning({ status: orders.status, settledBy: orders.settledBy });
  return transitionResult(db, input.orderId, updated);
}

/** Money arrived but does not match the order: park the order for an operator, never pay or close it. */
export async function holdOrderForReview(
  db: Database,
  input: { orderId: string; tradeNo: string | null; settledBy: SettledBy },
): Promise<TransitionResult> {
  const updated = await db
    .update(orders)
    .set({
      status: 'NEEDS_REVIEW',
      tradeNo: input.tradeNo,
      settledBy: input.settledBy,
      updatedAt: dsql`now()`,
    })
    .where(and(eq(orders.id, input.orderId), eq(orders.status, 'UNPAID')))
    .returning({ status: orders.status, settledBy: orders.settledBy });
  return transitionResult(db, input.orderId, updated);
}

export interface PaymentEventInput {
  orderId: string;
  source: PaymentEventSource;
  messageId?: string | null;
  tradeNo: string | null;
  tradeStatus: string;
  amount: number | null;
  currency: string | null;
  paidAt: Date | null;
}

/** Appends to the event log. Returns false when this message id was recorded before (a redelivery). */
export async function recordPaymentEvent(db: Database, event: PaymentEventInput): Promise<boolean> {
  const inserted = await db
    .insert(paymentEvents)
    .values({ ...event, messageId: event.messageId ?? null })
    .onConflictDoNothing({ target: paymentEvents.messageId })
    .returning({ id: paymentEvents.id });
  return inserted.length > 0;
}

/** One discrepancy per order and kind: recording it again changes nothing. Returns true if new. */
export async function recordDiscrepancy(
  db: Database,
  input: { orderId: string; kind: DiscrepancyKind; details: Record<string, unknown> },
): Promise<boolean> {
  const inserted = await db
    .insert(paymentDiscrepancies)
    .values(input)
    .onConflictDoNothing({ target: [paymentDiscrepancies.orderId, paymentDiscrepancies.kind] })
    .returning({ id: paymentDiscrepancies.id });
  return inserted.length > 0;
}
