import {
  and,
  asc,
  count,
  desc,
  sql as dsql,
  eq,
  inArray,
  isNull,
  notInArray,
  or,
  type SQL,
} from 'drizzle-orm';
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core';
import {
  type DiscrepancyKind,
  discrepancySubject,
  type MerchantEventRef,
  MONEY_HELD_KINDS,
  type OrderStatus,
  type PaymentNotice,
  type PaymentProvider,
  type RefundNotice,
  type SettledBy,
  type TradeSnapshot,
  type TransitionResult,
} from '../domain';
import type { Database } from './client';
import { merchantEvents, orders, paymentDiscrepancies, paymentEvents } from './schema';

/**
 * Every query payrecon runs on its orders, payment events and discrepancies. A status only changes
 * through the conditional updates below (`... WHERE status = 'UNPAID'`), called by the order workflow's
 * activities.
 */

export type OrderRow = typeof orders.$inferSelect;
export type PaymentEventRow = typeof paymentEvents.$inferSelect;
export type DiscrepancyRow = typeof paymentDiscrepancies.$inferSelect;
/** One transaction in the database. */
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0];
/** The database or one transaction in it. */
type Queryable = Database | Transaction;

export interface NewOrder {
  id: string;
  amount: number;
  currency: string;
  payDeadline: Date;
  /** The provider its trade is at; unset: the column's default, simulator (createOrder always sets it). */
  provider?: PaymentProvider;
  /** The trade payrecon opened at the provider for it, if it opened one. */
  providerTradeNo?: string | null;
  /** Where its result notifications go. */
  notifyEndpointId?: string | null;
}

export async function insertOrder(db: Database, order: NewOrder): Promise<OrderRow> {
  const [row] = await db.insert(orders).values(order).returning();
  if (!row) throw new Error(`order ${order.id} was not inserted`);
  return row;
}

export async function findOrder(db: Queryable, orderId: string): Promise<OrderRow | undefined> {
  const [row] = await db.select().from(orders).where(eq(orders.id, orderId));
  return row;
}

/** The provider an order's trade is at; undefined when there is no such order. */
export async function orderProvider(db: Queryable, orderId: string): Promise<string | undefined> {
  const [row] = await db.select({ provider: orders.provider }).from(orders).where(eq(orders.id, orderId));
  return row?.provider;
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

// --- conditional transitions -------------------------------------------------------------------------

/**
 * What an UPDATE ... RETURNING found, with the merchant event of that transition written in the same
 * transaction; or, when it changed nothing, the row as it is and the event of its current status (a
 * re-run after a lost reply must still hand its event to the workflow that starts the delivery).
 */
async function transitionResult(
  tx: Transaction,
  orderId: string,
  updated: OrderRow[],
): Promise<TransitionResult> {
  const [row] = updated;
  if (row) {
    const event = await insertMerchantEvent(tx, row);
    return { changed: true, status: row.status, settledBy: row.settledBy, tradeNo: row.tradeNo, event };
  }
  const current = await findOrder(tx, orderId);
  const type = current ? merchantEventType(current.status) : null;
  const [event] = type
    ? await tx
        .select({
          id: merchantEvents.id,
          sequence: merchantEvents.sequence,
          endpointId: merchantEvents.endpointId,
        })
        .from(merchantEvents)
        .where(and(eq(merchantEvents.orderId, orderId), eq(merchantEvents.type, type)))
        .orderBy(desc(merchantEvents.sequence))
        .limit(1)
    : [];
  return {
    changed: false,
    status: current?.status ?? null,
    settledBy: current?.settledBy ?? null,
    tradeNo: current?.tradeNo ?? null,
    event: event ?? null,
  };
}

/** The event a final status produces for the merchant (order.paid, order.closed, order.needs_review). */
export function merchantEventType(status: OrderStatus): string | null {
  return status === 'UNPAID' ? null : `order.${status.toLowerCase()}`;
}

/**
 * The next event of the order, numbered after its last: the UPDATE before it holds the order's row lock.
 * `about` adds what the transition was about to the payload (a refund's id and amount).
 */
export async function insertMerchantEvent(
  tx: Transaction,
  row: OrderRow,
  about: Record<string, unknown> = {},
): Promise<MerchantEventRef | null> {
  const type = merchantEventType(row.status);
  if (!type) return null;
  const [last] = await tx
    .select({ sequence: merchantEvents.sequence })
    .from(merchantEvents)
    .where(eq(merchantEvents.orderId, row.id))
    .orderBy(desc(merchantEvents.sequence))
    .limit(1);
  const sequence = (last?.sequence ?? 0) + 1;
  const id = `evt_${row.id}_${sequence}`;
  await tx.insert(merchantEvents).values({
    id,
    orderId: row.id,
    sequence,
    type,
    endpointId: row.notifyEndpointId,
    status: row.notifyEndpointId ? 'PENDING' : 'NO_ENDPOINT',
    payload: {
      id,
      type,
      sequence,
      orderId: row.id,
      status: row.status,
      amount: row.amount,
      currency: row.currency,
      tradeNo: row.tradeNo,
      settledBy: row.settledBy,
      paidAt: row.paidAt?.toISOString() ?? null,
      closedAt: row.closedAt?.toISOString() ?? null,
      closeReason: row.closeReason,
      occurredAt: row.updatedAt.toISOString(),
      ...about,
    },
  });
  return { id, sequence, endpointId: row.notifyEndpointId };
}

type OrderChange = PgUpdateSetSource<typeof orders>;

/**
 * One conditional UPDATE of an order (`guard` is the lattice's WHERE clause), its merchant event, and
 * `alongside` (what must commit with it), in one transaction.
 */
async function transition(
  db: Database,
  orderId: string,
  guard: SQL | undefined,
  change: OrderChange,
  alongside?: (tx: Transaction, result: TransitionResult) => Promise<void>,
): Promise<TransitionResult> {
  return db.transaction(async (tx) => {
    const updated = await tx
      .update(orders)
      .set({ ...change, updatedAt: dsql`now()` })
      .where(and(eq(orders.id, orderId), guard))
      .returning();
    const result = await transitionResult(tx, orderId, updated);
    await alongside?.(tx, result);
    return result;
  });
}

const unpaid = eq(orders.status, 'UNPAID');
const inReview = eq(orders.status, 'NEEDS_REVIEW');

/**
 * The one place an order becomes PAID. The `status = 'UNPAID'` guard makes it safe to call from both
 * reconciliation paths, twice, or late: only the first call changes the row.
 */
export async function markOrderPaid(
  db: Database,
  input: { orderId: string; tradeNo: string; paidAt: Date; settledBy: SettledBy },
): Promise<TransitionResult> {
  const { orderId, tradeNo, paidAt, settledBy } = input;
  return transition(db, orderId, unpaid, { status: 'PAID', tradeNo, paidAt, settledBy });
}

/**
 * A paid notice that matches the order (its trade, its money) recorded and the order marked paid in one
 * transaction: the order workflow's path for the common case, one local activity and one commit where
 * recordPaymentNotice then markOrderPaid took two. The notice is kept whether or not the update changes
 * the row (a redelivery, an order already closed), like recordPaymentNotice keeps it.
 */
export async function markOrderPaidByNotice(
  db: Database,
  input: { notice: PaymentNotice; settledBy: SettledBy },
): Promise<TransitionResult> {
  const { notice, settledBy } = input;
  const paidAt = new Date(notice.paidAt);
  return transition(
    db,
    notice.orderId,
    unpaid,
    { status: 'PAID', tradeNo: notice.tradeNo, paidAt, settledBy },
    async (tx) => {
      await appendNotice(tx, paymentNoticeRow(notice));
    },
  );
}

/** Conditional close: an order that some path already paid is never closed. */
export async function closeOrder(
  db: Database,
  input: { orderId: string; reason: string; settledBy: SettledBy },
): Promise<TransitionResult> {
  return transition(db, input.orderId, unpaid, {
    status: 'CLOSED',
    closedAt: dsql`now()`,
    closeReason: input.reason,
    settledBy: input.settledBy,
  });
}

/**
 * A fact payrecon must not act on alone (money that does not match, a provider answer it cannot read):
 * the order waits in NEEDS_REVIEW and the reason is recorded, in one transaction, so neither exists
 * without the other.
 */
export async function holdOrderForReview(
  db: Database,
  input: {
    orderId: string;
    tradeNo: string | null;
    settledBy: SettledBy;
    kind: DiscrepancyKind;
    details: Record<string, unknown>;
  },
): Promise<TransitionResult> {
  const { orderId, tradeNo, settledBy, kind, details } = input;
  return transition(
    db,
    orderId,
    unpaid,
    { status: 'NEEDS_REVIEW', tradeNo, settledBy },
    async (tx, result) => {
      if (result.status === 'NEEDS_REVIEW') await recordDiscrepancy(tx, { orderId, kind, details });
    },
  );
}

/**
 * An operator's decision on an order held for review, as one conditional update (`WHERE status =
 * 'NEEDS_REVIEW'`): PAID with the trade the provider reports paid (`paidTrade`, its own paid time), which
 * must be the one under review unless the operator named it (`tradeNo`); or CLOSED with the operator's
 * note as the reason. The order's open discrepancies are resolved with the same note in the same
 * transaction. Changes nothing when the order is not in review or is held with another trade.
 */
export async function resolveReview(
  db: Database,
  input: {
    orderId: string;
    outcome: 'PAID' | 'CLOSED';
    note: string;
    tradeNo?: string;
    paidTrade?: { tradeNo: string; paidAt: string | null };
  },
): Promise<TransitionResult> {
  const resolveDiscrepancies = async (tx: Transaction, result: TransitionResult) => {
    if (!result.changed) return;
    // Closed, the buyer's money is still at the provider: what records it stays open until a refund
    // returns it (src/db/refunds.ts).
    const stillHeld = input.outcome === 'CLOSED' ? [...MONEY_HELD_KINDS] : [];
    await tx
      .update(paymentDiscrepancies)
      .set({ resolvedAt: dsql`now()`, resolution: `review resolved ${input.outcome}: ${input.note}` })
      .where(
        and(
          eq(paymentDiscrepancies.orderId, input.orderId),
          isNull(paymentDiscrepancies.resolvedAt),
          stillHeld.length > 0 ? notInArray(paymentDiscrepancies.kind, stillHeld) : undefined,
        ),
      );
  };
  if (input.outcome === 'CLOSED') {
    const change: OrderChange = {
      status: 'CLOSED',
      closedAt: dsql`now()`,
      closeReason: input.note,
      settledBy: 'manual',
    };
    return transition(db, input.orderId, inReview, change, resolveDiscrepancies);
  }
  // PAID moves money: only with the provider's answer that the trade is paid (workflows/review.ts asks).
  const { paidTrade } = input;
  if (!paidTrade) throw new Error(`review of ${input.orderId}: PAID needs the provider's paid trade`);
  const heldTrade = or(isNull(orders.tradeNo), eq(orders.tradeNo, paidTrade.tradeNo));
  const guard = input.tradeNo ? inReview : and(inReview, heldTrade);
  const change: OrderChange = {
    status: 'PAID',
    tradeNo: paidTrade.tradeNo,
    // The provider's time, so the next reconciliation finds the payment on its day.
    paidAt: paidTrade.paidAt ? new Date(paidTrade.paidAt) : dsql`coalesce(${orders.paidAt}, now())`,
    settledBy: 'manual',
  };
  return transition(db, input.orderId, guard, change, resolveDiscrepancies);
}

// --- the append-only payment event log -----------------------------------------------------------------

/** Appends a notice's row; false when its message id was recorded before (a redelivery). */
async function appendNotice(db: Queryable, row: typeof paymentEvents.$inferInsert): Promise<boolean> {
  const inserted = await db
    .insert(paymentEvents)
    .values(row)
    .onConflictDoNothing({ target: paymentEvents.messageId })
    .returning({ id: paymentEvents.id });
  return inserted.length > 0;
}

/** Appends a paid notice to the event log; false when it was recorded before. */
export function recordPaymentNotice(db: Database, notice: PaymentNotice): Promise<boolean> {
  return appendNotice(db, paymentNoticeRow(notice));
}

function paymentNoticeRow(notice: PaymentNotice): typeof paymentEvents.$inferInsert {
  const { orderId, source, messageId, tradeNo, status, amount, currency, paidAt } = notice;
  return {
    ...{ orderId, source, messageId, tradeNo, amount, currency },
    tradeStatus: status,
    paidAt: new Date(paidAt),
  };
}

/** Appends a refund notice (its refund number as the trade number); false when it was recorded before. */
export function recordRefundNotice(db: Database, notice: RefundNotice): Promise<boolean> {
  const { orderId, source, messageId, refundNo, status, amount, currency } = notice;
  return appendNotice(db, {
    orderId,
    source,
    messageId,
    tradeNo: refundNo,
    tradeStatus: status,
    amount,
    currency,
  });
}

/** Appends what the provider answered a status query or a close (source poll). */
export async function recordTradeSnapshot(db: Database, snapshot: TradeSnapshot): Promise<void> {
  await db.insert(paymentEvents).values({
    orderId: snapshot.orderId,
    source: 'poll',
    messageId: null,
    tradeNo: snapshot.tradeNo,
    tradeStatus: snapshot.status,
    amount: snapshot.amount,
    currency: snapshot.currency,
    paidAt: snapshot.paidAt ? new Date(snapshot.paidAt) : null,
  });
}

export async function listPaymentEvents(db: Database, orderId: string): Promise<PaymentEventRow[]> {
  return db
    .select()
    .from(paymentEvents)
    .where(eq(paymentEvents.orderId, orderId))
    .orderBy(asc(paymentEvents.recordedAt), asc(paymentEvents.id));
}

// --- discrepancies -------------------------------------------------------------------------------------

export interface NewDiscrepancy {
  orderId: string;
  kind: DiscrepancyKind;
  details: Record<string, unknown>;
  /** What it is about; by default derived from the details (discrepancySubject in src/domain). */
  subject?: string;
}

/**
 * One discrepancy per order, kind and subject: recording the same fact again (a re-run, a redelivery)
 * changes nothing, another trade, refund or notice is a new row. Returns true if new.
 */
export async function recordDiscrepancy(db: Queryable, input: NewDiscrepancy): Promise<boolean> {
  const { orderId, kind, details } = input;
  const subject = input.subject ?? discrepancySubject(kind, details);
  const inserted = await db
    .insert(paymentDiscrepancies)
    .values({ orderId, kind, subject, details })
    .onConflictDoNothing({
      target: [paymentDiscrepancies.orderId, paymentDiscrepancies.kind, paymentDiscrepancies.subject],
    })
    .returning({ id: paymentDiscrepancies.id });
  return inserted.length > 0;
}

export async function listDiscrepancies(
  db: Database,
  filter: { orderId?: string; kind?: DiscrepancyKind; unresolved?: boolean; limit?: number } = {},
): Promise<DiscrepancyRow[]> {
  const where: SQL[] = [];
  if (filter.orderId) where.push(eq(paymentDiscrepancies.orderId, filter.orderId));
  if (filter.kind) where.push(eq(paymentDiscrepancies.kind, filter.kind));
  if (filter.unresolved) where.push(isNull(paymentDiscrepancies.resolvedAt));
  return db
    .select()
    .from(paymentDiscrepancies)
    .where(where.length > 0 ? and(...where) : undefined)
    .orderBy(desc(paymentDiscrepancies.createdAt), desc(paymentDiscrepancies.id))
    .limit(filter.limit ?? 1000);
}

/**
 * An operator's note on what was done about a discrepancy. Only an unresolved one is changed; otherwise
 * the row as it is (already resolved) or undefined (no such discrepancy).
 */
export async function resolveDiscrepancy(
  db: Database,
  id: number,
  note: string,
): Promise<{ resolved: true; row: DiscrepancyRow } | { resolved: false; row: DiscrepancyRow | undefined }> {
  const [updated] = await db
    .update(paymentDiscrepancies)
    .set({ resolvedAt: dsql`now()`, resolution: note })
    .where(and(eq(paymentDiscrepancies.id, id), isNull(paymentDiscrepancies.resolvedAt)))
    .returning();
  if (updated) return { resolved: true, row: updated };
  const [existing] = await db.select().from(paymentDiscrepancies).where(eq(paymentDiscrepancies.id, id));
  return { resolved: false, row: existing };
}

// --- a batch of orders at once (the demo's summary, the chaos run's evidence) ----------------------------

/** The orders with these ids, in no particular order. */
export async function findOrders(db: Database, orderIds: string[]): Promise<OrderRow[]> {
  return db.select().from(orders).where(inArray(orders.id, orderIds));
}

/** How many of these orders are in each status (a status none is in is absent). */
export async function countOrdersByStatus(
  db: Database,
  orderIds: string[],
): Promise<Partial<Record<OrderStatus, number>>> {
  const rows = await db
    .select({ status: orders.status, n: count() })
    .from(orders)
    .where(inArray(orders.id, orderIds))
    .groupBy(orders.status);
  return Object.fromEntries(rows.map((row) => [row.status, row.n]));
}

/** The payment events of these orders, oldest first. */
export async function findPaymentEvents(db: Database, orderIds: string[]): Promise<PaymentEventRow[]> {
  return db
    .select()
    .from(paymentEvents)
    .where(inArray(paymentEvents.orderId, orderIds))
    .orderBy(asc(paymentEvents.id));
}

/** The discrepancies of these orders, resolved or not, oldest first. */
export async function findDiscrepancies(db: Database, orderIds: string[]): Promise<DiscrepancyRow[]> {
  return db
    .select()
    .from(paymentDiscrepancies)
    .where(inArray(paymentDiscrepancies.orderId, orderIds))
    .orderBy(asc(paymentDiscrepancies.id));
}
