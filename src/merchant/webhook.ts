import { Webhook } from 'standardwebhooks';

/**
 * Result notifications to a merchant, signed with the Standard Webhooks scheme (standardwebhooks.com)
 * through its reference library: `webhook-id` (the event id, the same on every attempt),
 * `webhook-timestamp` (seconds) and `webhook-signature`, one `v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">` per secret, space-separated while a secret is being rotated.
 */

export interface WebhookRequest {
  url: string;
  /** `whsec_...` secrets: each signs the request. */
  secrets: string[];
  /** The event id. */
  id: string;
  body: string;
  timeoutMs: number;
}

export type AttemptErrorKind = 'TIMEOUT' | 'CONNECTION_REFUSED' | 'BAD_BODY' | 'HTTP_STATUS' | 'NETWORK';

/** What one attempt found out; every outcome but DELIVERED means "try again later" unless GONE. */
export interface AttemptOutcome {
  outcome: 'DELIVERED' | 'FAILED' | 'GONE';
  startedAt: string;
  durationMs: number;
  httpStatus: number | null;
  errorKind: AttemptErrorKind | null;
  /** The merchant's Retry-After (429/503), in milliseconds. */
  retryAfterMs: number | null;
  /** The first 512 characters of the answer, for an operator. */
  responsePrefix: string | null;
}

const RESPONSE_PREFIX_CHARS = 512;

export function webhookHeaders(
  secrets: string[],
  id: string,
  body: string,
  at: Date,
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(id, at, body)).join(' '),
  };
}

/**
 * The merchant acknowledged: a 2xx whose body is empty, `success` (any case: the convention of Chinese
 * payment APIs) or JSON `{"code":"SUCCESS"}`. A 2xx with any other body is not an acknowledgement.
 */
export function isMerchantSuccess(status: number, body: string): boolean {
  if (status < 200 || status > 299) return false;
  const text = body.trim();
  if (text === '' || text.toLowerCase() === 'success') return true;
  try {
    const json = JSON.parse(text) as { code?: unknown };
    return typeof json.code === 'string' && json.code.toUpperCase() === 'SUCCESS';
  } catch {
    return false;
  }
}

/** Retry-After as seconds or an HTTP date, in milliseconds from now; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | null {
  if (!header) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** One POST, bounded by the endpoint's timeout. Never throws: every failure is an outcome. */
export async function postWebhook(request: WebhookRequest): Promise<AttemptOutcome> {
  const started = new Date();
  const done = (fields: Omit<AttemptOutcome, 'startedAt' | 'durationMs'>): AttemptOutcome => ({
    startedAt: started.toISOString(),
    durationMs: Date.now() - started.getTime(),
    ...fields,
  });
  let response: Response;
  let text: string;
  try {
    response = await fetch(request.url, {
      method: 'POST',
      headers: webhookHeaders(request.secrets, request.id, request.body, started),
      body: request.body,
      redirect: 'manual',
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    text = await response.text();
  } catch (error) {
    return done({
      outcome: 'FAILED',
      httpStatus: null,
      errorKind: networkErrorKind(error),
      retryAfterMs: null,
      responsePrefix: describe(error).slice(0, RESPONSE_PREFIX_CHARS),
    });
  }
  const prefix = text.slice(0, RESPONSE_PREFIX_CHARS);
  const common = { httpStatus: response.status, responsePrefix: prefix };
  if (isMerchantSuccess(response.status, text)) {
    return done({ outcome: 'DELIVERED', errorKind: null, retryAfterMs: null, ...common });
  }
  if (response.status === 410)
    return done({ outcome: 'GONE', errorKind: 'HTTP_STATUS', retryAfterMs: null, ...common });
  const ok = response.status >= 200 && response.status <= 299;
  return done({
    outcome: 'FAILED',
    errorKind: ok ? 'BAD_BODY' : 'HTTP_STATUS',
    retryAfterMs:
      response.status === 429 || response.status === 503
        ? retryAfterMs(response.headers.get('retry-after'))
        : null,
    ...common,
  });
}

function networkErrorKind(error: unknown): AttemptErrorKind {
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'TIMEOUT';
  const code = (error as { cause?: { code?: string } }).cause?.code;
  return code === 'ECONNREFUSED' ? 'CONNECTION_REFUSED' : 'NETWORK';
}

function describe(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const message = error instanceof Error ? error.message : String(error);
  return cause instanceof Error ? `${message}: ${cause.message}` : message;
}
