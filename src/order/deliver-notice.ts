import { type Client, WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { orderWorkflow, paymentNoticeSignal } from '../../workflows/order';
import type { Database } from '../db/client';
import { findOrder, type OrderRow } from '../db/orders';
import type { PaymentNotice } from '../domain';
import { calling, ServiceCallError } from '../platform/errors';
import { handleNoticeForEndedWorkflow } from './late-notice';
import { type LadderConfig, orderWorkflowInput, orderWorkflowStartOptions } from './start';

export type NoticeDelivery =
  /** The order's workflow has the notice (started by it if the notice beat the order's own start). */
  | { outcome: 'signalled'; order: OrderRow }
  /** The order's workflow has ended: the notice was recorded, a contradiction flagged. */
  | { outcome: 'recorded-after-end'; order: OrderRow }
  | { outcome: 'unknown-order' };

/**
 * Delivers a payment notice to its order's workflow: the one path for the MQ consumer and an operator's
 * `payrecon signal notify`. A service that fails throws a ServiceCallError naming it; nothing is lost,
 * since the caller retries (the consumer's retry queue) and every step is idempotent.
 */
export async function deliverPaymentNotice(
  deps: { db: Database; temporal: Client; config: LadderConfig },
  notice: PaymentNotice,
): Promise<NoticeDelivery> {
  const order = await calling('PostgreSQL', () => findOrder(deps.db, notice.orderId));
  if (!order) return { outcome: 'unknown-order' };
  try {
    // signalWithStart: a notice that beats the order's workflow to the server still lands.
    await deps.temporal.workflow.signalWithStart(orderWorkflow, {
      ...orderWorkflowStartOptions(orderWorkflowInput(order, deps.config), deps.config.TEMPORAL_TASK_QUEUE),
      signal: paymentNoticeSignal,
      signalArgs: [notice],
    });
    return { outcome: 'signalled', order };
  } catch (error) {
    if (!(error instanceof WorkflowExecutionAlreadyStartedError))
      throw new ServiceCallError('Temporal', error);
    // The order's workflow has ended and may not start again (REJECT_DUPLICATE).
    await calling('PostgreSQL', () => handleNoticeForEndedWorkflow(deps.db, order, notice));
    return { outcome: 'recorded-after-end', order };
  }
}
