import type { Database } from '../db/client';
import { type OrderRow, recordDiscrepancy, recordPaymentNotice } from '../db/orders';
import { discrepancyForPaidFact, isPaidTradeStatus, type PaymentNotice } from '../domain';

/**
 * A notice for an order whose workflow has ended (REJECT_DUPLICATE refuses a second run). The fact is
 * still recorded; it never changes the order, and a contradiction (the same rule the workflow applies,
 * src/domain) becomes a discrepancy for an operator.
 */
export async function handleNoticeForEndedWorkflow(
  db: Database,
  order: Pick<OrderRow, 'id' | 'status' | 'tradeNo'>,
  notice: PaymentNotice,
): Promise<void> {
  const isNew = await recordPaymentNotice(db, notice);
  if (!isNew || !isPaidTradeStatus(notice.status)) return;
  const kind = discrepancyForPaidFact(order, notice);
  if (!kind) return;
  const { messageId, tradeNo, amount, source } = notice;
  const details = { messageId, tradeNo, amount, source, paidTradeNo: order.tradeNo };
  await recordDiscrepancy(db, { orderId: order.id, kind, details });
}
