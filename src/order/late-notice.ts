import type { Database } from '../db/client';
import { type OrderRow, recordDiscrepancy, recordPaymentEvent } from '../db/orders';
import { isPaidTradeStatus, type TradeLookupStatus } from '../domain/index';

/**
 * A notice for an order whose workflow has ended (REJECT_DUPLICATE refuses a second run). The fact is
 * still recorded; it never changes the order, and a contradiction becomes a discrepancy for an operator.
 */
export async function handleNoticeForEndedWorkflow(
  db: Database,
  order: Pick<OrderRow, 'id' | 'status' | 'tradeNo'>,
  notice: {
    messageId: string;
    source: 'mq' | 'manual';
    tradeNo: string;
    status: TradeLookupStatus;
    amount: number;
    currency: string;
    paidAt: string;
  },
): Promise<void> {
  const isNew = await recordPaymentEvent(db, {
    orderId: order.id,
    source: notice.source,
    messageId: notice.messageId,
    tradeNo: notice.tradeNo,
    tradeStatus: notice.status,
    amount: notice.amount,
    currency: notice.currency,
    paidAt: new Date(notice.paidAt),
  });
  if (!isNew || !isPaidTradeStatus(notice.status)) return;
  const details = {
    messageId: notice.messageId,
    tradeNo: notice.tradeNo,
    amount: notice.amount,
    source: notice.source,
  };
  if (order.status === 'CLOSED') {
    await recordDiscrepancy(db, { orderId: order.id, kind: 'PAID_AFTER_CLOSE', details });
  } else if (order.status === 'PAID' && order.tradeNo !== notice.tradeNo) {
    await recordDiscrepancy(db, {
      orderId: order.id,
      kind: 'DUPLICATE_PAYMENT',
      details: { ...details, paidTradeNo: order.tradeNo },
    });
  } else if (order.status === 'UNPAID') {
    // Only an operator's terminate/reset ends a workflow before its order settles.
    await recordDiscrepancy(db, { orderId: order.id, kind: 'ORPHAN_NOTICE', details });
  }
}
