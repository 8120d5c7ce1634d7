import type { MetricMeter } from '@temporalio/common';
import type { DiscrepancyKind, OrderStatus, SettledBy } from '../domain';

/**
 * payrecon's own counters. They are created on the Temporal runtime's meter, so they are served on the
 * same Prometheus endpoint as the SDK's metrics (workers/runtime.ts), one scrape target per process.
 */
export interface PayreconMetrics {
  notificationReceived(outcome: 'delivered' | 'late' | 'retried'): void;
  notificationParked(reason: string): void;
  poll(result: 'answered' | 'failed'): void;
  settled(path: SettledBy, status: OrderStatus): void;
  discrepancy(kind: DiscrepancyKind): void;
  /** A merchant notification's delivery ended: DELIVERED, EXHAUSTED, ENDPOINT_DISABLED. */
  merchantNotification(status: string): void;
  /** PENDING merchant events older than their ladder's span (src/merchant/stuck.ts sets it). */
  stuckMerchantNotifications(count: number): void;
  /**
   * A provider's notification the receiver answered: published (to the exchange, then `success`),
   * acknowledged (nothing to publish, `success`), refused (forged, not ours, unreadable: `fail`), failed
   * (the broker did not confirm: `fail`, the provider retries).
   */
  providerNotification(provider: string, outcome: 'published' | 'acknowledged' | 'refused' | 'failed'): void;
}

export const noMetrics: PayreconMetrics = {
  notificationReceived() {},
  notificationParked() {},
  poll() {},
  settled() {},
  discrepancy() {},
  merchantNotification() {},
  stuckMerchantNotifications() {},
  providerNotification() {},
};

export function createMetrics(meter: MetricMeter): PayreconMetrics {
  const received = meter.createCounter(
    'payrecon_notifications_received',
    '',
    'payment notifications handled',
  );
  const parked = meter.createCounter(
    'payrecon_notifications_parked',
    '',
    'notifications moved to the parking queue',
  );
  const polls = meter.createCounter('payrecon_provider_polls', '', 'trade status queries to the provider');
  const settlements = meter.createCounter('payrecon_settlements', '', 'orders that reached a final state');
  const discrepancies = meter.createCounter('payrecon_discrepancies', '', 'new payment discrepancies');
  const notifications = meter.createCounter(
    'payrecon_merchant_notifications',
    '',
    'merchant notification deliveries that ended, by status',
  );
  const stuck = meter.createGauge(
    'payrecon_merchant_notifications_stuck',
    'int',
    '',
    "PENDING merchant events not delivered within their ladder's span",
  );
  const providerNotifications = meter.createCounter(
    'payrecon_provider_notifications',
    '',
    "providers' notifications the receiver answered, by provider and outcome",
  );
  return {
    notificationReceived: (outcome) => received.add(1, { outcome }),
    notificationParked: (reason) => parked.add(1, { reason }),
    poll: (result) => polls.add(1, { result }),
    settled: (path, status) => settlements.add(1, { path, status }),
    discrepancy: (kind) => discrepancies.add(1, { kind }),
    merchantNotification: (status) => notifications.add(1, { status }),
    stuckMerchantNotifications: (count) => stuck.set(count),
    providerNotification: (provider, outcome) => providerNotifications.add(1, { provider, outcome }),
  };
}
