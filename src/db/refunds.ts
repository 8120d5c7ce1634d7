import { randomBytes } from 'node:crypto';
import { and, desc, sql as dsql, eq, inArray, isNotNull, isNull } from 'drizzle-orm';
import {
  type MerchantEventRef,
  MONEY_HELD_KINDS,
  type OrderStatus,
  REFUNDABLE_STATUSES,
  type SettledBy,
} from '../domain';
import type { Database } from './client';
import { findOrder, insertMerchantEvent, type OrderRow, recordDiscrepancy, type Transaction } from './orders';
import { merchantEvents, orders, paymentDiscrepancies, paymentEvents, refunds } from './schema';

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
 *
 * A CLOSED order whose trade was paid anyway (paid after the close, or a wrong amount whose review ended
 * CLOSED) is refundable too: the provider holds the buyer's money. What was paid is the last paid fact
 * recorded for the order; the provider refuses a refund of more than its trade holds.
 */
export async function createRefund(
  db: Database,
  input: { orderId: string; amount?: number; reason?: string },
): Promise<RefundRow> {
  return db.transaction(async (tx) => {
    const [order] = await tx.select().from(orders).where(eq(orders.id, input.orderId)).for('update');
    if (!order) throw new RefundRefused(`no order ${input.orderId}`);
    const paid = await paidMoney(tx, order);
    const [taken] = await tx
      .select({
        held: dsql<number>`coalesce(sum(${refunds.amount}) filter (where ${inArray(refunds.status, OPEN_REFUNDS)}), 0)::bigint`,
        returned: dsql<number>`coalesce(sum(${refunds.amount}) filter (where ${refunds.status} = 'SUCCEEDED'), 0)::bigint`,
      })
      .from(refunds)
      .where(eq(refunds.orderId, order.id));
    const held = Number(taken?.held ?? 0);
    const refundable = paid.amount - paid.returned(Number(taken?.returned ?? 0)) - held;
    const amount = input.amount ?? refundable;
    if (!Number.isSafeInteger(amount) || amount <= 0) {
      throw new RefundRefused(`nothing left to refund on order ${order.id} (refundable: ${refundable})`);
    }
    if (amount > refundable) {
      throw new RefundRefused(
        `refund of ${amount} is more than the ${refundable} left to refund on order ${order.id} (paid ${paid.amount}, refunded ${paid.returned(Number(taken?.returned ?? 0))}, in progress ${held})`,
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

/**
 * The money an order's refunds may return: a PAID or PARTIALLY_REFUNDED order's amount (what it has
 * refunded is on the order); a CLOSED order's last recorded paid fact (what it has refunded is its
 * SUCCEEDED refunds: the order itself never changes again). Anything else is refused.
 */
async function paidMoney(
  tx: Transaction,
  order: OrderRow,
): Promise<{ amount: number; returned: (succeeded: number) => number }> {
  if ((REFUNDABLE_STATUSES as readonly OrderStatus[]).includes(order.status)) {
    return { amount: order.amount, returned: () => order.refundedAmount };
  }
  const paid = order.status === 'CLOSED' ? await lastPaidFact(tx, order.id) : undefined;
  if (paid) return { amount: paid.amount, returned: (succeeded) => succeeded };
  throw new RefundRefused(
    order.status === 'CLOSED'
      ? `order ${order.id} is CLOSED and no payment of its trade was recorded: nothing to refund`
      : `order ${order.id} is ${order.status}: only a PAID or PARTIALLY_REFUNDED order, or a CLOSED one whose trade was paid, can be refunded`,
  );
}

/** The last paid fact recorded for an order (a notice or the provider's answer): its money, its trade. */
async function lastPaidFact(
  tx: Transaction,
  orderId: string,
): Promise<{ amount: number; tradeNo: string | null } | undefined> {
  const [fact] = await tx
    .select({ amount: paymentEvents.amount, tradeNo: paymentEvents.tradeNo })
    .from(paymentEvents)
    .where(
      and(
        eq(paymentEvents.orderId, orderId),
        inArray(paymentEvents.tradeStatus, ['TRADE_SUCCESS', 'TRADE_FINISHED']),
        isNotNull(paymentEvents.amount),
      ),
    )
    .orderBy(desc(paymentEvents.id))
    .limit(1);
  return fact?.amount ? { amount: fact.amount, tradeNo: fact.tradeNo } : undefined;
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
 * A CLOSED order stays CLOSED: the refund returned money its trade held, and once all of it is back the
 * discrepancies that recorded it are resolved. A re-run (its reply lost after the commit) finds the
 * refund settled and returns the merchant event that the first run wrote.
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
    await resolveUnconfirmed(tx, refund, 'SUCCEEDED');
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
      const current = await findOrder(tx, refund.orderId);
      if (current?.status === 'CLOSED') await resolveMoneyHeld(tx, current, refund);
      else {
        // Cannot happen while createRefund reserves the amount; if it does, an operator must look.
        await recordDiscrepancy(tx, {
          orderId: refund.orderId,
          kind: 'REFUND_EXCEEDS_PAID',
          details: { refundId: refund.id, outRequestNo: refund.outRequestNo, amount: refund.amount },
        });
      }
      return {
        changed: true,
        refundStatus: 'SUCCEEDED',
        orderStatus: current?.status ?? null,
        refundedAmount: current?.refundedAmount ?? null,
        event: null,
      };
    }
    const event = await insertMerchantEvent(tx, order, {
      refundedAmount: order.refundedAmount,
      refund: { id: refund.id, outRequestNo: refund.outRequestNo, amount: refund.amount },
    });
    return {
      changed: true,
      refundStatus: 'SUCCEEDED',
      orderStatus: order.status,
      refundedAmount: order.refundedAmount,
      event,
    };
  });
}

/** A re-run: the refund as it is, and the merchant event its settlement wrote (found by the refund's id). */
async function settledAlready(tx: Transaction, refundId: string): Promise<RefundResult> {
  const [refund] = await tx.select().from(refunds).where(eq(refunds.id, refundId));
  const order = refund ? await findOrder(tx, refund.orderId) : undefined;
  const [event] =
    refund?.status === 'SUCCEEDED'
      ? await tx
          .select({
            id: merchantEvents.id,
            sequence: merchantEvents.sequence,
            endpointId: merchantEvents.endpointId,
          })
          .from(merchantEvents)
          .where(
            and(
              eq(merchantEvents.orderId, refund.orderId),
              dsql`${merchantEvents.payload} -> 'refund' ->> 'id' = ${refundId}`,
            ),
          )
          .limit(1)
      : [];
  return {
    changed: false,
    refundStatus: refund?.status ?? null,
    orderStatus: order?.status ?? null,
    refundedAmount: order?.refundedAmount ?? null,
    event: event ?? null,
  };
}

/**
 * A refund of a CLOSED order returned money its trade held: once the order's SUCCEEDED refunds cover the
 * last paid fact, the discrepancies that recorded the held money are resolved.
 */
async function resolveMoneyHeld(tx: Transaction, order: OrderRow, refund: RefundRow): Promise<void> {
  const paid = await lastPaidFact(tx, order.id);
  const [returned] = await tx
    .select({ total: dsql<number>`coalesce(sum(${refunds.amount}), 0)::bigint` })
    .from(refunds)
    .where(and(eq(refunds.orderId, order.id), eq(refunds.status, 'SUCCEEDED')));
  if (!paid || Number(returned?.total ?? 0) < paid.amount) return;
  await tx
    .update(paymentDiscrepancies)
    .set({
      resolvedAt: dsql`now()`,
      resolution: `money returned to the buyer: refund ${refund.id} (${refund.outRequestNo}) completed ${Number(returned?.total ?? 0)} refunded`,
    })
    .where(
      and(
        eq(paymentDiscrepancies.orderId, order.id),
        inArray(paymentDiscrepancies.kind, [...MONEY_HELD_KINDS]),
        isNull(paymentDiscrepancies.resolvedAt),
      ),
    );
}

/** An UNKNOWN refund the provider answered after all: its REFUND_UNCONFIRMED is resolved with the answer. */
async function resolveUnconfirmed(tx: Transaction, refund: RefundRow, outcome: string): Promise<void> {
  await tx
    .update(paymentDiscrepancies)
    .set({ resolvedAt: dsql`now()`, resolution: `the provider answered after the deadline: ${outcome}` })
    .where(
      and(
        eq(paymentDiscrepancies.orderId, refund.orderId),
        eq(paymentDiscrepancies.kind, 'REFUND_UNCONFIRMED'),
        dsql`${paymentDiscrepancies.details} ->> 'refundId' = ${refund.id}`,
        isNull(paymentDiscrepancies.resolvedAt),
      ),
    );
}

/** The provider said no: the refund is FAILED and the order stays as it was. */
export async function failRefund(
  db: Database,
  input: { refundId: string; reason: string },
): Promise<boolean> {
  return db.transaction(async (tx) => {
    const [refund] = await tx
      .update(refunds)
      .set({
        status: 'FAILED',
        failureReason: input.reason,
        settledAt: dsql`now()`,
        updatedAt: dsql`now()`,
      })
      .where(and(eq(refunds.id, input.refundId), inArray(refunds.status, OPEN_REFUNDS)))
      .returning();
    if (refund) await resolveUnconfirmed(tx, refund, 'FAILED');
    return refund !== undefined;
  });
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
