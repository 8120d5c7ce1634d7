import type { Database } from '../src/db/client';
import type { LadderConfig } from '../src/order/start';
import { noMetrics, type PayreconMetrics } from '../src/platform/metrics';
import type { PaymentGateway } from '../src/provider/gateway';
import { createNotificationActivities } from './notifications';
import { createOrderActivities } from './orders';
import { createProviderActivities } from './provider';
import { createReconciliationActivities } from './reconciliation';
import { createRefundActivities } from './refunds';

export interface ActivityDeps {
  db: Database;
  gateway: PaymentGateway;
  metrics?: PayreconMetrics;
  /** How order workflows are started: the reconciliation hands healable breaks to them. */
  config?: LadderConfig;
  /** MERCHANT_PRIVATE_ALLOWLIST: non-public addresses merchant endpoints may lead to (none: public only). */
  merchantAllowlist?: string;
}

/** Every activity the worker registers: all of payrecon's I/O, one side effect each. */
export function createActivities({
  db,
  gateway,
  metrics = noMetrics,
  config,
  merchantAllowlist,
}: ActivityDeps) {
  return {
    ...createOrderActivities(db, metrics),
    ...createProviderActivities(gateway, metrics),
    ...createNotificationActivities(db, metrics, merchantAllowlist),
    ...createRefundActivities(db, metrics),
    ...createReconciliationActivities(db, gateway, config),
  };
}

export type Activities = ReturnType<typeof createActivities>;
