import { type Client, WorkflowNotFoundError } from '@temporalio/client';
import { refundNoticeSignal } from '../../workflows/refund-contract';
import type { Database } from '../db/client';
import { recordDiscrepancy, recordRefundNotice } from '../db/orders';
import { findRefundByOutRequestNo, type RefundRow } from '../db/refunds';
import type { RefundNotice } from '../domain';
import { calling, ServiceCallError } from '../platform/errors';
import { refundWorkflowId } from './refund';

export type RefundNoticeDelivery =
  | { outcome: 'signalled'; refund: RefundRow }
  /** The refund's workflow has ended: the notice was recorded, a contradiction flagged. */
  | { outcome: 'recorded-after-end'; refund: RefundRow }
  | { outcome: 'unknown-refund' };

/**
 * Delivers the provider's refund notice to its refund's workflow (found by out_request_no). A notice
 * that names another order than the refund's is delivered too: the workflow checks any notice that
 * differs from its refund with the provider before it settles anything. A service that fails throws a
 * ServiceCallError naming it.
 */
export async function deliverRefundNotice(
  deps: { db: Database; temporal: Client },
  notice: RefundNotice,
): Promise<RefundNoticeDelivery> {
  const refund = await calling('PostgreSQL', () => findRefundByOutRequestNo(deps.db, notice.outRequestNo));
  if (!refund) return { outcome: 'unknown-refund' };
  try {
    await deps.temporal.workflow.getHandle(refundWorkflowId(refund.id)).signal(refundNoticeSignal, notice);
    return { outcome: 'signalled', refund };
  } catch (error) {
    if (!(error instanceof WorkflowNotFoundError)) throw new ServiceCallError('Temporal', error);
    await calling('PostgreSQL', () => recordLateRefundNotice(deps.db, refund, notice));
    return { outcome: 'recorded-after-end', refund };
  }
}

/** A notice after the workflow ended changes nothing; one that says otherwise than the row is flagged. */
async function recordLateRefundNotice(db: Database, refund: RefundRow, notice: RefundNotice): Promise<void> {
  const isNew = await recordRefundNotice(db, notice);
  const agrees =
    notice.status === 'REFUND_SUCCESS' ? refund.status === 'SUCCEEDED' : refund.status === 'FAILED';
  if (!isNew || agrees) return;
  await recordDiscrepancy(db, {
    orderId: refund.orderId,
    kind: 'REFUND_CONTRADICTS_RECORD',
    details: {
      refundId: refund.id,
      outRequestNo: refund.outRequestNo,
      refundStatus: refund.status,
      notice: notice.status,
      messageId: notice.messageId,
    },
  });
}
