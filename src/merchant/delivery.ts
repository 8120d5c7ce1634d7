import type { Client } from '@temporalio/client';
import { merchantDeliveryWorkflow, wakeDeliverySignal } from '../../workflows/notification';
import { deliveryWorkflowId } from '../../workflows/notify-merchant';
import { OrderIdKey } from '../../workflows/search-attributes';

/**
 * Makes sure the order's PENDING events have an owner: signals the order's delivery workflow
 * (`notify-order-<orderId>`), starting it if none runs. The signal carries nothing; the workflow reads
 * the order's lowest-sequence PENDING event from the database each time it wakes, so a wake-up that
 * repeats or arrives late is harmless, and an event is never waited on without a workflow to send it.
 */
export async function wakeOrderDelivery(client: Client, taskQueue: string, orderId: string) {
  return client.workflow.signalWithStart(merchantDeliveryWorkflow, {
    workflowId: deliveryWorkflowId(orderId),
    taskQueue,
    args: [{ orderId }],
    signal: wakeDeliverySignal,
    signalArgs: [],
    // DeliveryStatus is set by the run once it takes an event: a run that finds none has none.
    typedSearchAttributes: [{ key: OrderIdKey, value: orderId }],
    staticSummary: `merchant notifications of order ${orderId}`,
  });
}
