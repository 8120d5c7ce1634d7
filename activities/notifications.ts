import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../src/db/client';
import * as merchant from '../src/db/merchant';
import { wakeOrderDelivery } from '../src/merchant/delivery';
import { DestinationPolicy } from '../src/merchant/destination';
import { type AttemptOutcome, merchantTransport, postWebhook } from '../src/merchant/webhook';
import type { PayreconMetrics } from '../src/platform/metrics';

/** What a delivery workflow needs to know of its event, without secrets (they stay out of histories). */
export interface DeliveryTarget {
  eventId: string;
  orderId: string;
  sequence: number;
  type: string;
  endpointId: string | null;
  endpointStatus: 'ENABLED' | 'DISABLED' | null;
  ladder: 'stepwise' | 'exponential';
  attemptTimeoutMs: number;
  /** Attempts recorded by earlier deliveries of this event (a redelivery numbers on from there). */
  attemptsSoFar: number;
}

/**
 * The merchant delivery workflow's I/O, one side effect each: the POST (a regular activity, with the
 * endpoint's timeout), the database reads and writes (local activities, idempotent), and the wake-up of
 * an order's delivery workflow (signal-with-start, from the workflow that wrote the event).
 * `merchantAllowlist`: MERCHANT_PRIVATE_ALLOWLIST (src/merchant/destination.ts).
 */
export function createNotificationActivities(
  db: Database,
  metrics: PayreconMetrics,
  merchantAllowlist?: string,
) {
  const transport = merchantTransport(new DestinationPolicy(merchantAllowlist));
  return {
    /** The order's lowest-sequence PENDING event, or null: the database is the delivery queue. */
    async nextPendingDelivery(orderId: string): Promise<DeliveryTarget | null> {
      const found = await merchant.nextPendingDelivery(db, orderId);
      if (!found) return null;
      const { event, endpoint } = found;
      return {
        eventId: event.id,
        orderId: event.orderId,
        sequence: event.sequence,
        type: event.type,
        endpointId: event.endpointId,
        endpointStatus: endpoint?.status ?? null,
        ladder: endpoint?.ladder ?? 'stepwise',
        attemptTimeoutMs: endpoint?.attemptTimeoutMs ?? 5_000,
        attemptsSoFar: await merchant.countAttempts(db, event.id),
      };
    },

    /**
     * Signs the event's payload with every secret of its endpoint and POSTs it once; an endpoint
     * disabled since the delivery began (410 for another event, an operator) gets no request.
     */
    async postEvent(eventId: string): Promise<AttemptOutcome> {
      const found = await merchant.findDelivery(db, eventId);
      if (!found?.endpoint)
        throw ApplicationFailure.nonRetryable(`event ${eventId} has no endpoint`, 'NoEndpoint');
      if (found.endpoint.status !== 'ENABLED') {
        return {
          outcome: 'ENDPOINT_DISABLED',
          startedAt: new Date().toISOString(),
          durationMs: 0,
          httpStatus: null,
          errorKind: null,
          retryAfterMs: null,
          responsePrefix: null,
        };
      }
      return postWebhook(
        {
          url: found.endpoint.url,
          secrets: found.endpoint.secrets,
          id: eventId,
          body: JSON.stringify(found.event.payload),
          timeoutMs: found.endpoint.attemptTimeoutMs,
        },
        transport,
      );
    },

    async recordAttempt(input: merchant.AttemptInput): Promise<void> {
      await merchant.recordAttempt(db, input);
    },

    async settleEvent(input: { eventId: string; status: merchant.EventStatus }): Promise<void> {
      await merchant.setEventStatus(db, input.eventId, input.status);
      if (input.status !== 'PENDING') metrics.merchantNotification(input.status);
    },

    /** 410 Gone: the merchant says this endpoint is no more; nothing is sent to it until re-enabled. */
    async disableEndpoint(input: { endpointId: string; reason: string }): Promise<void> {
      await merchant.setEndpointStatus(db, input.endpointId, 'DISABLED', input.reason);
    },

    /**
     * Wakes (or starts) the order's delivery workflow after an event was committed: signal-with-start
     * with the worker's own client, on the worker's task queue. Retried until it succeeds, by the
     * workflow that wrote the event, so a crash between the commit and the start loses nothing.
     */
    async startMerchantDelivery(input: { orderId: string }): Promise<void> {
      const context = Context.current();
      await wakeOrderDelivery(context.client, context.info.taskQueue, input.orderId);
    },
  };
}
