import { proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

/**
 * How payrecon's workflows run their activities: where, and how hard they retry. The order workflow
 * defined these; the review, refund and merchant notification workflows use the same ones.
 */

// Database writes are conditional and idempotent, and a settled payment must never be dropped, so they
// retry until Postgres is back. They run as local activities, inside the workflow task that needs them
// (tools/bench/README.md: +45% orders/s, half the p50). One re-run after a failed workflow task finds its
// own earlier write; the results carry the row's settledBy and tradeNo so that is harmless.
export const db = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
});
// A ladder check (a trade or refund query) gives up fast: the next rung of the ladder is its retry.
export const ladderCheck = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '1s', backoffCoefficient: 2, maximumAttempts: 3 },
});
// The final check, the close and a refund's submission must get an answer, so they keep trying (an
// answer that can never be read fails at once: ProviderReplyError is non-retryable).
export const finalCheck = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { initialInterval: '2s', backoffCoefficient: 2, maximumInterval: '1m' },
});
