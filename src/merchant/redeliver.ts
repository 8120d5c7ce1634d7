import { type Client, WorkflowExecutionAlreadyStartedError, WorkflowIdReusePolicy } from '@temporalio/client';
import { merchantNotificationWorkflow } from '../../workflows/notification';
import { notificationWorkflowId } from '../../workflows/notify-merchant';
import { DeliveryStatusKey, OrderIdKey } from '../../workflows/search-attributes';
import type { Database } from '../db/client';
import { findEvent, setEventStatus } from '../db/merchant';

export class RedeliveryError extends Error {
  override name = 'RedeliveryError';
}

/**
 * Starts a new delivery of an event (an operator's `notifications redeliver`, or `recover` for every
 * exhausted one): the same workflow id, a new run, the same `webhook-id`; its attempts are numbered on
 * from the earlier ones. Refused while a delivery of the event is still running.
 */
export async function redeliverEvent(
  deps: { db: Database; client: Client; taskQueue: string },
  eventId: string,
) {
  const event = await findEvent(deps.db, eventId);
  if (!event) throw new RedeliveryError(`no merchant event ${eventId}`);
  if (!event.endpointId) throw new RedeliveryError(`event ${eventId} has no endpoint to deliver to`);
  await setEventStatus(deps.db, eventId, 'PENDING');
  try {
    const handle = await deps.client.workflow.start(merchantNotificationWorkflow, {
      workflowId: notificationWorkflowId(eventId),
      taskQueue: deps.taskQueue,
      args: [{ eventId, orderId: event.orderId, sequence: event.sequence }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: [
        { key: OrderIdKey, value: event.orderId },
        { key: DeliveryStatusKey, value: 'PENDING' },
      ],
      staticSummary: `merchant notification ${eventId} (redelivery)`,
    });
    return handle;
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new RedeliveryError(
        `event ${eventId} is being delivered right now (${notificationWorkflowId(eventId)})`,
      );
    }
    throw error;
  }
}
