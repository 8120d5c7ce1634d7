import type { Readable } from 'node:stream';
import { Webhook } from 'standardwebhooks';
import { Agent, type Dispatcher, request as undiciRequest } from 'undici';
import { type DestinationPolicy, RefusedDestinationError } from './destination';

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

export type AttemptErrorKind =
  | 'TIMEOUT'
  | 'CONNECTION_REFUSED'
  | 'BAD_BODY'
  | 'HTTP_STATUS'
  | 'NETWORK'
  /** The URL leads to an address the destination policy refuses (SSRF): no request was made. */
  | 'REFUSED_DESTINATION';

/** What one attempt found out; every outcome but DELIVERED means "try again later" unless GONE. */
export interface AttemptOutcome {
  /** ENDPOINT_DISABLED: the endpoint was disabled before this attempt, which made no request. */
  outcome: 'DELIVERED' | 'FAILED' | 'GONE' | 'ENDPOINT_DISABLED';
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
/** How much of an answer is read at all: enough for any acknowledgement, never a whole large body. */
export const RESPONSE_READ_BYTES = 4_096;

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
  // A number too large for a double is still "later than any ceiling": the workflow clamps it.
  if (/^\d+$/.test(header.trim())) return Math.min(Number(header.trim()) * 1000, Number.MAX_SAFE_INTEGER);
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** How a delivery reaches merchants: the destination policy and the connection pool that applies it. */
export interface MerchantTransport {
  policy: DestinationPolicy;
  dispatcher: Dispatcher;
}

/** A pool whose every new connection resolves its host through the policy's pinned lookup. */
export function merchantTransport(policy: DestinationPolicy): MerchantTransport {
  return { policy, dispatcher: new Agent({ connect: { lookup: policy.lookup } }) };
}

/**
 * One POST, bounded by the endpoint's timeout. Never throws: every failure is an outcome. Only a
 * destination the policy allows is connected to; at most RESPONSE_READ_BYTES of the answer are read.
 */
export async function postWebhook(
  request: WebhookRequest,
  transport: MerchantTransport,
): Promise<AttemptOutcome> {
  const started = new Date();
  const done = (fields: Omit<AttemptOutcome, 'startedAt' | 'durationMs'>): AttemptOutcome => ({
    startedAt: started.toISOString(),
    durationMs: Date.now() - started.getTime(),
    ...fields,
  });
  let status: number;
  let retryAfter: string | null;
  let text: string;
  try {
    transport.policy.checkUrlHost(new URL(request.url));
    // undici.request follows no redirect: a 3xx is an answer like any other, not a second destination.
    const response = await undiciRequest(request.url, {
      method: 'POST',
      headers: webhookHeaders(request.secrets, request.id, request.body, started),
      body: request.body,
      dispatcher: transport.dispatcher,
      signal: AbortSignal.timeout(request.timeoutMs),
    });
    status = response.statusCode;
    const header = response.headers['retry-after'];
    retryAfter = Array.isArray(header) ? (header[0] ?? null) : (header ?? null);
    text = await readPrefix(response.body, RESPONSE_READ_BYTES);
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
  const common = { httpStatus: status, responsePrefix: prefix };
  if (isMerchantSuccess(status, text)) {
    return done({ outcome: 'DELIVERED', errorKind: null, retryAfterMs: null, ...common });
  }
  if (status === 410)
    return done({ outcome: 'GONE', errorKind: 'HTTP_STATUS', retryAfterMs: null, ...common });
  const ok = status >= 200 && status <= 299;
  return done({
    outcome: 'FAILED',
    errorKind: ok ? 'BAD_BODY' : 'HTTP_STATUS',
    retryAfterMs: status === 429 || status === 503 ? retryAfterMs(retryAfter) : null,
    ...common,
  });
}

/** The first `limit` bytes of a body as text; the rest is never read (the stream is destroyed). */
async function readPrefix(body: Readable, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      chunks.push(buffer.subarray(0, limit - size));
      size += Math.min(buffer.length, limit - size);
      if (size >= limit) break;
    }
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).toString('utf8');
}

function networkErrorKind(error: unknown): AttemptErrorKind {
  const name = (error as { name?: string }).name;
  if (name === 'TimeoutError' || name === 'AbortError') return 'TIMEOUT';
  const codes = [(error as { code?: string }).code, (error as { cause?: { code?: string } }).cause?.code];
  if (error instanceof RefusedDestinationError || codes.includes('ERR_REFUSED_DESTINATION'))
    return 'REFUSED_DESTINATION';
  return codes.includes('ECONNREFUSED') ? 'CONNECTION_REFUSED' : 'NETWORK';
}

function describe(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const message = error instanceof Error ? error.message : String(error);
  return cause instanceof Error ? `${message}: ${cause.message}` : message;
}
