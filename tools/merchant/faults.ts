import { z } from 'zod';

/**
 * Fault knobs of the merchant simulator: how the merchant answers payrecon's deliveries.
 *
 * Global knobs apply to every order; they live in memory, come from MERCHANT_FAULTS at start-up and
 * change through `PUT|PATCH /faults`. Per-order knobs (`PUT /orders/:orderId/faults`, keyed on the
 * body's `orderId`) live in `merchant.order_faults`; a per-order knob that is set wins over the global
 * one, so `{ "failFirst": 0 }` protects an order from a global `failFirst`.
 *
 * - `failFirst: n`: the order's first n validly signed deliveries fail (HTTP `status`, default 500), the
 *   rest succeed. Counted per order (the body's `orderId`), over all its events and retries.
 * - `status`: without `failFirst`, every delivery answers this status (410 Gone, 503, 429, ...); with it,
 *   the first n do. A 2xx status is answered with an empty body (which payrecon counts as success).
 * - `retryAfterSeconds`: sets `Retry-After` on the failing answers.
 * - `delayMs`: hold every answer back this long (past the sender's 5 s timeout: a TIMEOUT for payrecon).
 * - `badBody`: a success is `200 ok thanks`, which payrecon must count as a failure.
 * - `answerJsonSuccess`: a success is `200 {"code":"SUCCESS"}` instead of `200 success`.
 * - `refuseForMs` (global only, an action): stop listening this long, so connections are refused.
 */

const MAX_DELAY_MS = 10 * 60_000;

const answerKnobs = {
  failFirst: z.int().min(0).max(10_000),
  status: z.int().min(200, 'an HTTP status is 200-599').max(599, 'an HTTP status is 200-599'),
  retryAfterSeconds: z.int().min(0).max(86_400),
  delayMs: z.int().min(0).max(MAX_DELAY_MS, `at most ${MAX_DELAY_MS}ms`),
  badBody: z.boolean(),
  answerJsonSuccess: z.boolean(),
};

export const orderFaultsSchema = z.strictObject(answerKnobs).partial();
export type OrderFaults = z.infer<typeof orderFaultsSchema>;

/** The answer knobs every delivery obeys (set globally or per order). */
export type AnswerFaults = OrderFaults;

/** A `PUT` or `PATCH /faults` body: the answer knobs, plus the `refuseForMs` action. */
export const globalFaultsInputSchema = z
  .strictObject({
    ...answerKnobs,
    refuseForMs: z.int().min(1).max(MAX_DELAY_MS, `at most ${MAX_DELAY_MS}ms`),
  })
  .partial();
export type GlobalFaultsInput = z.infer<typeof globalFaultsInputSchema>;

/** What `GET|PUT|PATCH /faults` answer. */
export interface GlobalFaultsView {
  faults: AnswerFaults;
  /** ISO time until which connections are refused; null when listening. */
  refusingUntil: string | null;
}

/** The global answer knobs of one running simulator. */
export class FaultStore {
  private current: AnswerFaults;

  constructor(initial: AnswerFaults = {}) {
    this.current = orderFaultsSchema.parse(initial);
  }

  get(): AnswerFaults {
    return { ...this.current };
  }

  /** Every knob not given goes back to none. */
  replace(faults: AnswerFaults): AnswerFaults {
    this.current = dropUndefined(faults);
    return this.get();
  }

  /** Changes only the knobs given. */
  merge(faults: AnswerFaults): AnswerFaults {
    this.current = { ...this.current, ...dropUndefined(faults) };
    return this.get();
  }
}

/** Per-order knobs as stored; a row written by hand with bad knobs counts as none. */
export function readOrderFaults(stored: unknown): OrderFaults {
  const parsed = orderFaultsSchema.safeParse(stored ?? {});
  return parsed.success ? parsed.data : {};
}

export function effectiveFaults(global: AnswerFaults, order: OrderFaults): AnswerFaults {
  return { ...global, ...dropUndefined(order) };
}

/** The body payrecon counts as success when the status is 2xx (besides an empty body and JSON SUCCESS). */
export const SUCCESS_BODY = 'success';
export const BAD_BODY = 'ok thanks';
export const JSON_SUCCESS_BODY = '{"code":"SUCCESS"}';

export interface PlannedAnswer {
  status: number;
  body: string;
  contentType: string;
  retryAfterSeconds?: number;
  delayMs: number;
}

/** How to answer the `orderDelivery`-th (1-based) validly signed delivery of an order. */
export function planAnswer(faults: AnswerFaults, orderDelivery: number): PlannedAnswer {
  const delayMs = faults.delayMs ?? 0;
  const failing =
    faults.failFirst !== undefined ? orderDelivery <= faults.failFirst : faults.status !== undefined;
  if (failing) {
    const status = faults.status ?? 500;
    const success = status >= 200 && status < 300;
    return {
      status,
      body: success ? '' : `fault injected: HTTP ${status}`,
      contentType: 'text/plain; charset=utf-8',
      retryAfterSeconds: success ? undefined : faults.retryAfterSeconds,
      delayMs,
    };
  }
  if (faults.badBody) {
    return { status: 200, body: BAD_BODY, contentType: 'text/plain; charset=utf-8', delayMs };
  }
  if (faults.answerJsonSuccess) {
    return { status: 200, body: JSON_SUCCESS_BODY, contentType: 'application/json', delayMs };
  }
  return { status: 200, body: SUCCESS_BODY, contentType: 'text/plain; charset=utf-8', delayMs };
}

/**
 * payrecon's rule for an acknowledged delivery (issue 11): a 2xx whose body is empty, `success`
 * (case-insensitive) or JSON `{"code":"SUCCESS"}`.
 */
export function isAcknowledgement(status: number, body: string): boolean {
  if (status < 200 || status >= 300) return false;
  const text = body.trim();
  if (text === '' || text.toLowerCase() === SUCCESS_BODY) return true;
  try {
    const json: unknown = JSON.parse(text);
    return typeof json === 'object' && json !== null && (json as { code?: unknown }).code === 'SUCCESS';
  } catch {
    return false;
  }
}

function dropUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
