import type { Database } from '../db/client';
import { countStuckEvents } from '../db/merchant';
import type { PayreconMetrics } from '../platform/metrics';

/** How often a worker counts the stuck merchant events for its gauge. */
export const STUCK_CHECK_INTERVAL_MS = 60_000;

/** Sets payrecon_merchant_notifications_stuck to the number of stuck events; returns it. */
export async function reportStuckNotifications(db: Database, metrics: PayreconMetrics): Promise<number> {
  const count = await countStuckEvents(db);
  metrics.stuckMerchantNotifications(count);
  return count;
}

/**
 * Keeps the gauge current from the worker process, once a minute (one indexed count): a PENDING event
 * with no workflow to send it is seen on the worker's metrics, not only when an operator asks. Returns
 * the function that stops it.
 */
export function watchStuckNotifications(
  db: Database,
  metrics: PayreconMetrics,
  onError: (error: unknown) => void,
  intervalMs = STUCK_CHECK_INTERVAL_MS,
): () => void {
  const check = () => void reportStuckNotifications(db, metrics).catch(onError);
  check();
  const timer = setInterval(check, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
