import {
  ActivityFailure,
  defineQuery,
  defineSignal,
  makeContinueAsNewFunc,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { DeliveryTarget } from '../activities/notifications';
import type { AttemptOutcome } from '../src/merchant/webhook';
import { DELIVERY_LADDERS, formatDuration, retryAfterCeiling } from './ladder';
import { db } from './order-activities';
import { DeliveryStatusKey, OrderIdKey } from './search-attributes';

export interface MerchantDeliveryInput {
  orderId: string;
  /**
   * Bench only (tools/bench/notify.ts): the waits after each failed attempt, in ms, instead of the
   * endpoint's ladder, so `npm run bench -- --notify` can run a scaled-down copy of it. Absent in every
   * workflow payrecon starts.
   */
  ladderMs?: number[];
}

export type DeliveryStatus = 'PENDING' | 'DELIVERED' | 'EXHAUSTED' | 'ENDPOINT_DISABLED' | 'NO_ENDPOINT';

export interface DeliveryState {
  orderId: string;
  /** The event this run is delivering (or delivered); null before the first read. */
  eventId: string | null;
  status: DeliveryStatus | null;
  /** Attempts this run made for its event (a redelivery starts again at 0). */
  attempts: number;
  lastAttempt: { at: string; result: string } | null;
  nextAttemptAt: string | null;
}

export const deliveryStateQuery = defineQuery<DeliveryState>('deliveryState');
/** "An event of this order may be PENDING": carries nothing, the database says which. */
export const wakeDeliverySignal = defineSignal('wake');

/**
 * Tells the merchant about an order's events, in sequence: one workflow per order
 * (`notify-order-<orderId>`), the database its queue. Each run reads the order's lowest-sequence
 * PENDING event and delivers it: an attempt at once, then one after each step of its endpoint's ladder
 * (3s, 30s, 60s, 120s, 180s, 300s, or 5·(2^n−1) s), each bounded by the endpoint's timeout;
 * at-least-once, with the event id as `webhook-id` on every attempt. Then it continues as new if
 * another event is PENDING, or ends: every history holds one event's ladder at most, and an order's
 * event n cannot go before n−1 has ended, because nothing else sends them.
 *
 * Whoever makes an event PENDING (the transition's workflow, a redelivery, `notifications recover`)
 * signals this workflow with signal-with-start afterwards. A wake that comes while a run is ending is
 * read before it ends (and the server refuses the completion of a task that missed a new signal).
 */
export async function merchantDeliveryWorkflow(input: MerchantDeliveryInput): Promise<DeliveryState> {
  const state: DeliveryState = {
    orderId: input.orderId,
    eventId: null,
    status: null,
    attempts: 0,
    lastAttempt: null,
    nextAttemptAt: null,
  };
  setHandler(deliveryStateQuery, () => state);
  let wakes = 0;
  setHandler(wakeDeliverySignal, () => {
    wakes++;
  });

  for (;;) {
    const seen = wakes;
    const target = await db.nextPendingDelivery.executeWithOptions(
      { summary: `next PENDING event of order ${input.orderId}` },
      [input.orderId],
    );
    if (target) {
      // One event per run: the next one starts a fresh history (its DeliveryStatus set when it takes it).
      if (state.eventId !== null || workflowInfo().continueAsNewSuggested) {
        await makeContinueAsNewFunc<typeof merchantDeliveryWorkflow>({
          typedSearchAttributes: [{ key: OrderIdKey, value: input.orderId }],
        })(input);
      }
      state.eventId = target.eventId;
      state.status = 'PENDING';
      upsertSearchAttributes([{ key: DeliveryStatusKey, value: 'PENDING' }]);
      await deliver(target, input, state);
    } else if (wakes === seen) {
      // Nothing PENDING, and no wake since the read began: whoever makes an event PENDING next starts
      // a new run.
      return state;
    }
  }
}

async function deliver(target: DeliveryTarget, input: MerchantDeliveryInput, state: DeliveryState) {
  if (!target.endpointId) return settle(state, 'NO_ENDPOINT');
  if (target.endpointStatus !== 'ENABLED') return settle(state, 'ENDPOINT_DISABLED');

  const gaps: readonly number[] = input.ladderMs?.length ? input.ladderMs : DELIVERY_LADDERS[target.ladder];
  const ceiling = retryAfterCeiling(gaps);
  for (let attempt = 1; ; attempt++) {
    const outcome = await postOnce(target.eventId, attempt);
    // Disabled since the delivery began (a 410 for another event, an operator): no request was made.
    if (outcome.outcome === 'ENDPOINT_DISABLED') return settle(state, 'ENDPOINT_DISABLED');
    state.attempts = attempt;
    state.lastAttempt = { at: outcome.startedAt, result: describeOutcome(outcome) };
    await db.recordAttempt({
      eventId: target.eventId,
      attempt: target.attemptsSoFar + attempt,
      startedAt: outcome.startedAt,
      durationMs: outcome.durationMs,
      httpStatus: outcome.httpStatus,
      errorKind: outcome.errorKind,
      responsePrefix: outcome.responsePrefix,
    });
    if (outcome.outcome === 'DELIVERED') return settle(state, 'DELIVERED');
    if (outcome.outcome === 'GONE') {
      await db.disableEndpoint({ endpointId: target.endpointId, reason: `410 Gone for ${target.eventId}` });
      return settle(state, 'ENDPOINT_DISABLED');
    }
    const gap = gaps[attempt - 1];
    if (gap === undefined) return settle(state, 'EXHAUSTED');
    // A merchant that asks for more time (429/503 Retry-After) gets it, up to the ceiling: a year-long
    // (or unrepresentable) Retry-After must not stall the order's later events.
    const wait = Math.max(gap, Math.min(outcome.retryAfterMs ?? 0, ceiling));
    state.nextAttemptAt = new Date(Date.now() + wait).toISOString();
    await sleep(wait, {
      summary: `${target.eventId} attempt ${attempt} failed (${state.lastAttempt.result}); next attempt in ${formatDuration(wait)}`,
    });
    state.nextAttemptAt = null;
  }
}

// One POST: the endpoint's own timeout (at most 30 s) bounds it; the ladder is its retry. A second
// try covers only a worker lost mid-request.
const merchant = proxyActivities<Activities>({
  startToCloseTimeout: '45s',
  retry: { initialInterval: '1s', maximumAttempts: 2 },
});

async function postOnce(eventId: string, attempt: number): Promise<AttemptOutcome> {
  try {
    return await merchant.postEvent.executeWithOptions(
      { summary: `${eventId} attempt ${attempt}: POST to the merchant` },
      [eventId],
    );
  } catch (error) {
    const cause = error instanceof ActivityFailure ? String(error.cause?.message) : String(error);
    return {
      outcome: 'FAILED',
      startedAt: new Date(Date.now()).toISOString(),
      durationMs: 0,
      httpStatus: null,
      errorKind: 'NETWORK',
      retryAfterMs: null,
      responsePrefix: cause.slice(0, 512),
    };
  }
}

async function settle(state: DeliveryState, status: DeliveryStatus): Promise<void> {
  const eventId = state.eventId;
  if (!eventId) return;
  await db.settleEvent({ eventId, status });
  state.status = status;
  upsertSearchAttributes([{ key: DeliveryStatusKey, value: status }]);
}

function describeOutcome(outcome: AttemptOutcome): string {
  if (outcome.outcome === 'DELIVERED') return `HTTP ${outcome.httpStatus}`;
  if (outcome.errorKind === 'HTTP_STATUS') return `HTTP ${outcome.httpStatus}`;
  if (outcome.errorKind === 'BAD_BODY') return `HTTP ${outcome.httpStatus}, body is not success`;
  return outcome.errorKind ?? 'failed';
}
