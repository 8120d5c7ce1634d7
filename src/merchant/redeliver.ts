import type { Client } from '@temporalio/client';
import { deliveryWorkflowId } from '../../workflows/notify-merchant';
import type { Database } from '../db/client';
import { eventsToRecover, findEvent, setEventStatus } from '../db/merchant';
import { wakeOrderDelivery } from './delivery';

export class RedeliveryError extends Error {
  override name = 'RedeliveryError';
}

interface RedeliveryDeps {
  db: Database;
  client: Client;
  taskQueue: string;
}

/**
 * A new delivery of an event (an operator's `notifications redeliver`): the event is PENDING again, then
 * its order's delivery workflow is woken (signal-with-start). The same `webhook-id`; its attempts are
 * numbered on from the earlier ones; it goes after any earlier PENDING event of its order. A start that
 * fails leaves a PENDING event that the next wake-up, `recover` or `list --stuck` finds.
 */
export async function redeliverEvent(deps: RedeliveryDeps, eventId: string) {
  const event = await findEvent(deps.db, eventId);
  if (!event) throw new RedeliveryError(`no merchant event ${eventId}`);
  if (!event.endpointId) throw new RedeliveryError(`event ${eventId} has no endpoint to deliver to`);
  await setEventStatus(deps.db, eventId, 'PENDING');
  return wakeOrderDelivery(deps.client, deps.taskQueue, event.orderId);
}

export interface RecoveryResult {
  /** Per order, the events made PENDING, in sequence, and the delivery workflow woken. */
  orders: { orderId: string; workflowId: string; eventIds: string[] }[];
  /** Orders whose delivery workflow could not be woken: their events stay PENDING (and show as stuck). */
  failed: { orderId: string; eventIds: string[]; error: string }[];
}

/**
 * `notifications recover --since`: every event since then that ran out of attempts, ended on an
 * endpoint that is enabled again, or is PENDING, re-driven per order: all of an order's events are made
 * PENDING, then its delivery workflow is woken once and sends them lowest sequence first. One order's
 * failed wake-up does not stop the others.
 */
export async function recoverEvents(deps: RedeliveryDeps, since: Date): Promise<RecoveryResult> {
  const byOrder = new Map<string, string[]>();
  for (const event of await eventsToRecover(deps.db, since)) {
    byOrder.set(event.orderId, [...(byOrder.get(event.orderId) ?? []), event.id]);
  }
  const result: RecoveryResult = { orders: [], failed: [] };
  for (const [orderId, eventIds] of byOrder) {
    try {
      for (const eventId of eventIds) await setEventStatus(deps.db, eventId, 'PENDING');
      await wakeOrderDelivery(deps.client, deps.taskQueue, orderId);
      result.orders.push({ orderId, workflowId: deliveryWorkflowId(orderId), eventIds });
    } catch (error) {
      result.failed.push({
        orderId,
        eventIds,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return result;
}
