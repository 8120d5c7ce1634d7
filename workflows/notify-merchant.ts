import type { MerchantEventRef } from '../src/domain';
import { db } from './order-activities';

/** The delivery workflow of an order's merchant events: one per order, its runs one event each. */
export function deliveryWorkflowId(orderId: string): string {
  return `notify-order-${orderId}`;
}

/**
 * Hands an event the workflow just committed to its order's delivery workflow (signal-with-start, by a
 * local activity that retries until it succeeds). Called by the workflow that made the transition, after
 * the commit: a crash between the two re-runs the activity, so nothing falls between them.
 */
export async function notifyMerchant(orderId: string, event: MerchantEventRef): Promise<void> {
  // An order that names no endpoint: its events are recorded (NO_ENDPOINT), there is nobody to tell.
  if (!event.endpointId) return;
  await db.startMerchantDelivery.executeWithOptions(
    { summary: `hand ${event.id} to ${deliveryWorkflowId(orderId)}` },
    [{ orderId }],
  );
}
