import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';

/**
 * Standard Webhooks verification (https://www.standardwebhooks.com), done by the `standardwebhooks`
 * library as a merchant would: `webhook-signature` holds space-separated `v1,<base64>` entries, each an
 * HMAC-SHA256 of `${webhook-id}.${webhook-timestamp}.${body}` under the base64-decoded secret. A
 * delivery is valid when any entry matches any of the merchant's secrets (a rotation signs with both).
 * The library also rejects a `webhook-timestamp` more than 5 minutes from the simulator's clock, so a
 * sender signs every attempt with the attempt's own time (the `webhook-id` stays the event's).
 */

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A `whsec_<base64>` secret whose key is at least one byte. */
export const webhookSecretSchema = z
  .string()
  .refine((raw) => raw.startsWith('whsec_') && BASE64.test(raw.slice(6)) && raw.slice(6).length % 4 === 0, {
    message: 'a secret is whsec_ followed by base64, e.g. whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  });

export const secretListSchema = z.array(webhookSecretSchema).min(1, 'at least one secret').max(10);

/** A fresh `whsec_` secret (24 random bytes, as Standard Webhooks' examples use). */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export interface SignatureHeaders {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
}

export type VerifyResult = { valid: true } | { valid: false; error: string };

/** Verifies `body` against each secret; valid if any verifies. */
export function verifyDelivery(body: Buffer, headers: SignatureHeaders, secrets: string[]): VerifyResult {
  if (!headers.id || !headers.timestamp || !headers.signature) {
    const missing = [
      headers.id ? undefined : 'webhook-id',
      headers.timestamp ? undefined : 'webhook-timestamp',
      headers.signature ? undefined : 'webhook-signature',
    ].filter(Boolean);
    return { valid: false, error: `missing header ${missing.join(', ')}` };
  }
  if (secrets.length === 0) return { valid: false, error: 'no secret is configured for this merchant' };
  const wire = {
    'webhook-id': headers.id,
    'webhook-timestamp': headers.timestamp,
    'webhook-signature': headers.signature,
  };
  let firstError = 'no matching signature found';
  for (const [index, secret] of secrets.entries()) {
    try {
      new Webhook(secret).verify(body, wire, { jsonParse: false });
      return { valid: true };
    } catch (error) {
      if (index === 0) firstError = (error as Error).message;
    }
  }
  return { valid: false, error: firstError };
}
