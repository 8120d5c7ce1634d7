import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { ParentClosePolicy, startChild } from '@temporalio/workflow';
import type { MerchantEventRef } from '../src/domain';
import { merchantNotificationWorkflow } from './notification';
import { DeliveryStatusKey, OrderIdKey } from './search-attributes';

export function notificationWorkflowId(eventId: string): string {
  return `notify-${eventId}`;
}

/**
 * Starts the delivery of a merchant event as a child that outlives its parent (ABANDON). Started from
 * the workflow that made the transition, not from the activity that wrote the event: the start is a
 * command in the parent's history, so a crash between the database commit and the start cannot lose
 * it, and no activity needs a Temporal client. Started once: the id is the event's.
 */
export async function notifyMerchant(orderId: string, event: MerchantEventRef): Promise<void> {
  // An order that names no endpoint: its events are recorded (NO_ENDPOINT), there is nobody to tell.
  if (!event.endpointId) return;
  try {
    await startChild(merchantNotificationWorkflow, {
      workflowId: notificationWorkflowId(event.id),
      args: [{ eventId: event.id, orderId, sequence: event.sequence }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: OrderIdKey, value: orderId },
        { key: DeliveryStatusKey, value: 'PENDING' },
      ],
      staticSummary: `merchant notification ${event.id}`,
    });
  } catch (error) {
    // A redelivery (or an earlier start) owns this id already: the event is being delivered.
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
}
