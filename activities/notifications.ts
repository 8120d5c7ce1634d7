import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../src/db/client';
import * as merchant from '../src/db/merchant';
import { type AttemptOutcome, postWebhook } from '../src/merchant/webhook';
import type { PayreconMetrics } from '../src/platform/metrics';

/** What a delivery workflow needs to know of its event, without secrets (they stay out of histories). */
export interface DeliveryTarget {
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
 * The merchant notification workflow's I/O, one side effect each: the POST (a regular activity, with
 * the endpoint's timeout), and the database writes (local activities, idempotent).
 */
export function createNotificationActivities(db: Database, metrics: PayreconMetrics) {
  return {
    async loadDelivery(eventId: string): Promise<DeliveryTarget> {
      const found = await merchant.findDelivery(db, eventId);
      if (!found) throw ApplicationFailure.nonRetryable(`no merchant event ${eventId}`, 'UnknownEvent');
      const { event, endpoint } = found;
      const attemptsSoFar = await merchant.countAttempts(db, eventId);
      return {
        orderId: event.orderId,
        sequence: event.sequence,
        type: event.type,
        endpointId: event.endpointId,
        endpointStatus: endpoint?.status ?? null,
        ladder: endpoint?.ladder ?? 'stepwise',
        attemptTimeoutMs: endpoint?.attemptTimeoutMs ?? 5_000,
        attemptsSoFar,
      };
    },

    async previousEventSettled(input: { orderId: string; sequence: number }): Promise<boolean> {
      return merchant.previousEventSettled(db, input.orderId, input.sequence);
    },

    /** Signs the event's payload with every secret of its endpoint and POSTs it once. */
    async postEvent(eventId: string): Promise<AttemptOutcome> {
      const found = await merchant.findDelivery(db, eventId);
      if (!found?.endpoint)
        throw ApplicationFailure.nonRetryable(`event ${eventId} has no endpoint`, 'NoEndpoint');
      return postWebhook({
        url: found.endpoint.url,
        secrets: found.endpoint.secrets,
        id: eventId,
        body: JSON.stringify(found.event.payload),
        timeoutMs: found.endpoint.attemptTimeoutMs,
      });
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
  };
}
