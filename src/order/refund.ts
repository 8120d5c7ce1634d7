import { type Client, WorkflowIdReusePolicy } from '@temporalio/client';
import { refundWorkflow } from '../../workflows/refund';
import type { RefundWorkflowInput } from '../../workflows/refund-contract';
import { OrderIdKey, RefundStatusKey } from '../../workflows/search-attributes';
import type { Database } from '../db/client';
import { createRefund, type RefundRow } from '../db/refunds';
import type { Config } from '../platform/config';

export type RefundConfig = Pick<
  Config,
  'REFUND_LADDER' | 'REFUND_REPEAT' | 'REFUND_DEADLINE' | 'TEMPORAL_TASK_QUEUE'
>;

export function refundWorkflowId(refundId: string): string {
  return `refund-${refundId}`;
}

/** The refund workflow's input for a refund row. */
export function refundWorkflowInput(refund: RefundRow, config: RefundConfig): RefundWorkflowInput {
  return {
    refundId: refund.id,
    orderId: refund.orderId,
    outRequestNo: refund.outRequestNo,
    amount: refund.amount,
    reason: refund.reason,
    ladder: { stepsMs: config.REFUND_LADDER, repeatMs: config.REFUND_REPEAT },
    deadline: new Date(refund.createdAt.getTime() + config.REFUND_DEADLINE).toISOString(),
  };
}

/**
 * Asks for a refund: the `refunds` row (with its out_request_no, the amount reserved) is written first,
 * then its workflow `refund-<refundId>` starts (REJECT_DUPLICATE: one workflow per refund, ever). A refund
 * that cannot be asked for throws RefundRefused and changes nothing.
 */
export async function requestRefund(
  deps: { db: Database; client: Client; config: RefundConfig },
  request: { orderId: string; amount?: number; reason?: string },
) {
  const refund = await createRefund(deps.db, request);
  return { refund, workflowId: await startRefundWorkflow(deps, refund) };
}

/**
 * Starts a refund's workflow: after `requestRefund` wrote the row, or again by hand (`refund start`) when
 * Temporal was down at that moment. A second start of a refund that has a workflow is refused by
 * REJECT_DUPLICATE, so a refund is never run twice.
 */
export async function startRefundWorkflow(deps: { client: Client; config: RefundConfig }, refund: RefundRow) {
  const handle = await deps.client.workflow.start(refundWorkflow, {
    workflowId: refundWorkflowId(refund.id),
    taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
    args: [refundWorkflowInput(refund, deps.config)],
    workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
    typedSearchAttributes: [
      { key: OrderIdKey, value: refund.orderId },
      { key: RefundStatusKey, value: 'PROCESSING' },
    ],
    staticSummary: `refund ${refund.outRequestNo}: ${refund.amount} of order ${refund.orderId}`,
  });
  return handle.workflowId;
}
