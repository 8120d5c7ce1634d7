import type { Database } from '../src/db/client';
import type { LadderConfig } from '../src/order/start';
import { noMetrics, type PayreconMetrics } from '../src/platform/metrics';
import type { PaymentGateway } from '../src/provider/gateway';
import { asGateways, type PaymentGateways } from '../src/provider/select';
import { createNotificationActivities } from './notifications';
import { createOrderActivities } from './orders';
import { createProviderActivities } from './provider';
import { createReconciliationActivities } from './reconciliation';
import { createRefundActivities } from './refunds';

export interface ActivityDeps {
  db: Database;
  /**
   * One gateway per enabled provider (createPaymentGateways), each order's calls going to its own; or
   * one gateway that answers for every order, whatever its provider (tests, the rig's one-provider runs).
   */
  gateway: PaymentGateway | PaymentGateways;
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
  const gateways = asGateways(gateway);
  return {
    ...createOrderActivities(db, metrics),
    ...createProviderActivities(gateways, metrics, db),
    ...createNotificationActivities(db, metrics, merchantAllowlist),
    ...createRefundActivities(db, metrics),
    ...createReconciliationActivities(db, gateways, config),
  };
}

export type Activities = ReturnType<typeof createActivities>;
