import { randomBytes } from 'node:crypto';
import { and, desc, sql as dsql, eq, inArray } from 'drizzle-orm';
import { type MerchantEventRef, type OrderStatus, REFUNDABLE_STATUSES, type SettledBy } from '../domain';
import type { Database } from './client';
import { findOrder, insertMerchantEvent, recordDiscrepancy, type Transaction } from './orders';
import { orders, refunds } from './schema';

/** Every query payrecon runs on refunds. The order's refunded amount changes only in `applyRefund`. */

export type RefundRow = typeof refunds.$inferSelect;

/** A refund that cannot be asked for: the order is not paid, or the amount is more than is left. */
export class RefundRefused extends Error {
  override name = 'RefundRefused';
}

/** Refunds that still hold part of the order's money: the provider has not said no. */
const OPEN_REFUNDS: RefundRow['status'][] = ['PROCESSING', 'UNKNOWN'];

/**
 * Writes a refund request BEFORE anything is sent to the provider, with its idempotency key
 * (`out_request_no`). The order's row is locked while the refundable amount is computed (paid minus
 * refunded minus refunds still open), so two requests racing for the same money cannot both be written:
 * the second is refused here and never reaches the provider. Default amount: all that is left.
 */
export async function createRefund(
  db: Database,
  input: { orderId: string; amount?: number; reason?: string },
): Promise<RefundRow> {
  return db.transaction(async (tx) => {
    const [order] = await tx.select().from(orders).where(eq(orders.id, input.orderId)).for('update');
    if (!order) throw new RefundRefused(`no order ${input.orderId}`);
    if (!(REFUNDABLE_STATUSES as readonly OrderStatus[]).includes(order.status)) {
      throw new RefundRefused(
        `order ${order.id} is ${order.status}: only a PAID or PARTIALLY_REFUNDED order can be refunded`,
      );
    }
    const [open] = await tx
      .select({ held: dsql<number>`coalesce(sum(${refunds.amount}), 0)::bigint` })
      .from(refunds)
      .where(and(eq(refunds.orderId, order.id), inArray(refunds.status, OPEN_REFUNDS)));
    const refundable = order.amount - order.refundedAmount - Number(open?.held ?? 0);
    const amount = input.amount ?? refundable;
    if (!Number.isSafeInteger(amount) || amount <= 0) {
      throw new RefundRefused(`nothing left to refund on order ${order.id} (refundable: ${refundable})`);
    }
    if (amount > refundable) {
      throw new RefundRefused(
        `refund of ${amount} is more than the ${refundable} left to refund on order ${order.id} (paid ${order.amount}, refunded ${order.refundedAmount}, in progress ${Number(open?.held ?? 0)})`,
      );
    }
    const [count] = await tx
      .select({ n: dsql<number>`count(*)::int` })
      .from(refunds)
      .where(eq(refunds.orderId, order.id));
    const id = `rf_${randomBytes(6).toString('hex')}`;
    const [row] = await tx
      .insert(refunds)
      .values({
        id,
        orderId: order.id,
        outRequestNo: `${order.id}-R${(count?.n ?? 0) + 1}`,
        amount,
        reason: input.reason ?? null,
      })
      .returning();
    if (!row) throw new Error(`refund of order ${order.id} was not inserted`);
    return row;
  });
}

export async function findRefund(db: Database, id: string): Promise<RefundRow | undefined> {
  const [row] = await db.select().from(refunds).where(eq(refunds.id, id));
  return row;
}

export async function findRefundByOutRequestNo(
  db: Database,
  outRequestNo: string,
): Promise<RefundRow | undefined> {
  const [row] = await db.select().from(refunds).where(eq(refunds.outRequestNo, outRequestNo));
  return row;
}

export async function listRefunds(
  db: Database,
  filter: { orderId?: string; limit?: number } = {},
): Promise<RefundRow[]> {
  return db
    .select()
    .from(refunds)
    .where(filter.orderId ? eq(refunds.orderId, filter.orderId) : undefined)
    .orderBy(desc(refunds.createdAt))
    .limit(filter.limit ?? 100);
}

export interface RefundResult {
  /** Did this call settle the refund (a re-run finds it settled and changes nothing). */
  changed: boolean;
  refundStatus: RefundRow['status'] | null;
  orderStatus: OrderStatus | null;
  refundedAmount: number | null;
  /** The merchant event of the order's transition (also on a re-run). */
  event: MerchantEventRef | null;
}

/**
 * The provider refunded: the refund row and the order change together, in one transaction, each by a
 * conditional update. The refund only once (`status` still open); the order only forward in the lattice
 * (`PAID | PARTIALLY_REFUNDED`) and never past what was paid (`refunded_amount + amount <= amount`).
 */
export async function applyRefund(
  db: Database,
  input: { refundId: string; settledBy: SettledBy; providerRefundNo: string | null },
): Promise<RefundResult> {
  return db.transaction(async (tx) => {
    const [refund] = await tx
      .update(refunds)
      .set({
        status: 'SUCCEEDED',
        settledBy: input.settledBy,
        providerRefundNo: input.providerRefundNo,
        settledAt: dsql`now()`,
        updatedAt: dsql`now()`,
      })
      .where(and(eq(refunds.id, input.refundId), inArray(refunds.status, OPEN_REFUNDS)))
      .returning();
    if (!refund) return settledAlready(tx, input.refundId);
    const [order] = await tx
      .update(orders)
      .set({
        refundedAmount: dsql`${orders.refundedAmount} + ${refund.amount}`,
        status: dsql`case when ${orders.refundedAmount} + ${refund.amount} = ${orders.amount} then 'REFUNDED' else 'PARTIALLY_REFUNDED' end`,
        updatedAt: dsql`now()`,
      })
      .where(
        and(
          eq(orders.id, refund.orderId),
          inArray(orders.status, [...REFUNDABLE_STATUSES]),
          dsql`${orders.refundedAmount} + ${refund.amount} <= ${orders.amount}`,
        ),
      )
      .returning();
    if (!order) {
      // Cannot happen while createRefund reserves the amount; if it does, an operator must look.
      await recordDiscrepancy(tx, {
        orderId: refund.orderId,
        kind: 'REFUND_EXCEEDS_PAID',
        details: { refundId: refund.id, amount: refund.amount },
      });
      const current = await findOrder(tx, refund.orderId);
      return {
        changed: true,
        refundStatus: 'SUCCEEDED',
        orderStatus: current?.status ?? null,
        refundedAmount: current?.refundedAmount ?? null,
        event: null,
      };
    }
    const event = await insertMerchantEvent(tx, order);
    return {
      changed: true,
      refundStatus: 'SUCCEEDED',
      orderStatus: order.status,
      refundedAmount: order.refundedAmount,
      event,
    };
  });
}

async function settledAlready(tx: Transaction, refundId: string): Promise<RefundResult> {
  const [refund] = await tx.select().from(refunds).where(eq(refunds.id, refundId));
  const order = refund ? await findOrder(tx, refund.orderId) : undefined;
  return {
    changed: false,
    refundStatus: refund?.status ?? null,
    orderStatus: order?.status ?? null,
    refundedAmount: order?.refundedAmount ?? null,
    event: null,
  };
}

/** The provider said no: the refund is FAILED and the order stays as it was. */
export async function failRefund(
  db: Database,
  input: { refundId: string; reason: string },
): Promise<boolean> {
  const updated = await db
    .update(refunds)
    .set({ status: 'FAILED', failureReason: input.reason, settledAt: dsql`now()`, updatedAt: dsql`now()` })
    .where(and(eq(refunds.id, input.refundId), inArray(refunds.status, OPEN_REFUNDS)))
    .returning({ id: refunds.id });
  return updated.length > 0;
}

/**
 * Past its deadline without an answer: UNKNOWN, never silently a success, and a discrepancy for an
 * operator. True when this call recorded the discrepancy (a re-run after a lost reply records nothing).
 */
export async function markRefundUnconfirmed(db: Database, refundId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [refund] = await tx
      .update(refunds)
      .set({ status: 'UNKNOWN', updatedAt: dsql`now()` })
      .where(and(eq(refunds.id, refundId), eq(refunds.status, 'PROCESSING')))
      .returning();
    if (!refund) return false;
    return recordDiscrepancy(tx, {
      orderId: refund.orderId,
      kind: 'REFUND_UNCONFIRMED',
      details: { refundId, outRequestNo: refund.outRequestNo, amount: refund.amount },
    });
  });
}
