import type { Database } from '../src/db/client';
import { noMetrics, type PayreconMetrics } from '../src/platform/metrics';
import type { PaymentGateway } from '../src/provider/gateway';
import { createNotificationActivities } from './notifications';
import { createOrderActivities } from './orders';
import { createProviderActivities } from './provider';
import { createRefundActivities } from './refunds';

export interface ActivityDeps {
  db: Database;
  gateway: PaymentGateway;
  metrics?: PayreconMetrics;
}

/** Every activity the worker registers: all of payrecon's I/O, one side effect each. */
export function createActivities({ db, gateway, metrics = noMetrics }: ActivityDeps) {
  return {
    ...createOrderActivities(db, metrics),
    ...createProviderActivities(gateway, metrics),
    ...createNotificationActivities(db, metrics),
    ...createRefundActivities(db, metrics),
  };
}

export type Activities = ReturnType<typeof createActivities>;
