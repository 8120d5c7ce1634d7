import {
  ActivityFailure,
  defineQuery,
  proxyActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AttemptOutcome } from '../src/merchant/webhook';
import { DELIVERY_LADDERS, formatDuration } from './ladder';
import { db } from './order-activities';
import { DeliveryStatusKey } from './search-attributes';

export interface MerchantNotificationInput {
  eventId: string;
  orderId: string;
  sequence: number;
  /**
   * Bench only (tools/bench/notify.ts): the waits after each failed attempt, in ms, instead of the
   * endpoint's ladder, so `npm run bench -- --notify` can run a scaled-down copy of it. Absent in every
   * workflow payrecon starts; histories without it replay unchanged.
   */
  ladderMs?: number[];
}

export type DeliveryStatus = 'PENDING' | 'DELIVERED' | 'EXHAUSTED' | 'ENDPOINT_DISABLED' | 'NO_ENDPOINT';

export interface DeliveryState {
  eventId: string;
  status: DeliveryStatus;
  /** Attempts this delivery made (a redelivery starts again at 0). */
  attempts: number;
  lastAttempt: { at: string; result: string } | null;
  nextAttemptAt: string | null;
  waitingFor: string | null;
}

export const deliveryStateQuery = defineQuery<DeliveryState>('deliveryState');

/**
 * Tells the merchant about one event of an order, until it answers success: an attempt at once, then one
 * after each step of its endpoint's ladder (3s, 30s, 60s, 120s, 180s, 300s, or 5·(2^n−1) s), each bounded
 * by the endpoint's timeout; at-least-once, with the event id as `webhook-id` on every attempt. An
 * order's events go out in sequence: event n waits until event n−1 is delivered or has given up.
 */
export async function merchantNotificationWorkflow(input: MerchantNotificationInput): Promise<DeliveryState> {
  const state: DeliveryState = {
    eventId: input.eventId,
    status: 'PENDING',
    attempts: 0,
    lastAttempt: null,
    nextAttemptAt: null,
    waitingFor: null,
  };
  setHandler(deliveryStateQuery, () => state);

  // Free for an order's first event; a later one waits for the one before it.
  if (input.sequence > 1) await waitForPreviousEvent(input, state);
  const target = await db.loadDelivery.executeWithOptions({ summary: `load event ${input.eventId}` }, [
    input.eventId,
  ]);
  if (!target.endpointId) return settle(state, 'NO_ENDPOINT');
  if (target.endpointStatus !== 'ENABLED') return settle(state, 'ENDPOINT_DISABLED');

  const gaps: readonly number[] = input.ladderMs?.length ? input.ladderMs : DELIVERY_LADDERS[target.ladder];
  for (let attempt = 1; ; attempt++) {
    const outcome = await postOnce(input.eventId, attempt);
    state.attempts = attempt;
    state.lastAttempt = { at: outcome.startedAt, result: describeOutcome(outcome) };
    await db.recordAttempt({
      eventId: input.eventId,
      attempt: target.attemptsSoFar + attempt,
      startedAt: outcome.startedAt,
      durationMs: outcome.durationMs,
      httpStatus: outcome.httpStatus,
      errorKind: outcome.errorKind,
      responsePrefix: outcome.responsePrefix,
    });
    if (outcome.outcome === 'DELIVERED') return settle(state, 'DELIVERED');
    if (outcome.outcome === 'GONE') {
      await db.disableEndpoint({ endpointId: target.endpointId, reason: `410 Gone for ${input.eventId}` });
      return settle(state, 'ENDPOINT_DISABLED');
    }
    const gap = gaps[attempt - 1];
    if (gap === undefined) return settle(state, 'EXHAUSTED');
    // A merchant that asks for more time (429/503 Retry-After) gets at least that much.
    const wait = Math.max(gap, outcome.retryAfterMs ?? 0);
    state.nextAttemptAt = new Date(Date.now() + wait).toISOString();
    await sleep(wait, {
      summary: `attempt ${attempt} failed (${state.lastAttempt.result}); next attempt in ${formatDuration(wait)}`,
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
      { summary: `attempt ${attempt}: POST to the merchant` },
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

async function waitForPreviousEvent(input: MerchantNotificationInput, state: DeliveryState): Promise<void> {
  state.waitingFor = `event #${input.sequence - 1} of order ${input.orderId}`;
  for (let wait = 2_000; ; wait = Math.min(wait * 2, 60_000)) {
    const settled = await db.previousEventSettled({ orderId: input.orderId, sequence: input.sequence });
    if (settled) break;
    await sleep(wait, { summary: `waiting for ${state.waitingFor} to be delivered` });
  }
  state.waitingFor = null;
}

async function settle(state: DeliveryState, status: DeliveryStatus): Promise<DeliveryState> {
  await db.settleEvent({ eventId: state.eventId, status });
  state.status = status;
  upsertSearchAttributes([{ key: DeliveryStatusKey, value: status }]);
  return state;
}

function describeOutcome(outcome: AttemptOutcome): string {
  if (outcome.outcome === 'DELIVERED') return `HTTP ${outcome.httpStatus}`;
  if (outcome.errorKind === 'HTTP_STATUS') return `HTTP ${outcome.httpStatus}`;
  if (outcome.errorKind === 'BAD_BODY') return `HTTP ${outcome.httpStatus}, body is not success`;
  return outcome.errorKind ?? 'failed';
}
