import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { type PaymentNotice, type RefundNotice, TRADE_STATUSES } from '../domain';

/**
 * The wire form, version 1, of the "trade paid" notice the payment service publishes: JSON; the
 * HMAC-SHA256 of the exact body bytes travels in the `x-signature` header (hex). It is a PaymentNotice
 * without `source` (a message from the payment service is source mq by definition) and with `version`.
 */
export const paymentNoticeSchema = z.object({
  version: z.literal(1),
  messageId: z.string().min(1).max(128),
  orderId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'order ids are 1-64 letters, digits, _ or -'),
  tradeNo: z.string().min(1).max(64),
  status: z.enum(TRADE_STATUSES),
  amount: z.number().int().nonnegative(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code'),
  paidAt: z.iso.datetime({ offset: true }),
});

export const SIGNATURE_HEADER = 'x-signature';

/** The v1 JSON body of a notice, as the payment service publishes it (before validation). */
export type PaymentNoticeBody = z.input<typeof paymentNoticeSchema>;

/** The body that carries `notice` on the wire. */
export function paymentNoticeBody(notice: PaymentNotice): PaymentNoticeBody {
  const { source: _mq, ...fields } = notice;
  return { version: 1, ...fields };
}

export function signBody(body: Buffer | string, secret: string): string {
  return createHmac('sha256', secret).update(body).digest('hex');
}

export function hasValidSignature(body: Buffer, signature: unknown, secret: string): boolean {
  if (typeof signature !== 'string' || !/^[0-9a-f]{64}$/i.test(signature)) return false;
  const expected = Buffer.from(signBody(body, secret), 'hex');
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}

/**
 * The wire form, version 1, of the "trade refunded" notice (routing key `trade.refunded`): a RefundNotice
 * without `source`, with `version`; signed like the paid notice.
 */
export const refundNoticeSchema = z.object({
  version: z.literal(1),
  messageId: z.string().min(1).max(128),
  orderId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'order ids are 1-64 letters, digits, _ or -'),
  outRequestNo: z.string().min(1).max(128),
  refundNo: z.string().min(1).max(64),
  status: z.enum(['REFUND_SUCCESS', 'REFUND_FAILED']),
  amount: z.number().int().positive(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'ISO 4217 code'),
  refundedAt: z.iso.datetime({ offset: true }),
});

/** Why a notification can never be delivered, however often it is retried. */
export type RejectionReason =
  | 'BAD_SIGNATURE'
  | 'NOT_JSON'
  | 'SCHEMA_VIOLATION'
  | 'UNKNOWN_ORDER'
  | 'UNKNOWN_REFUND'
  | 'UNKNOWN_ROUTING_KEY';

type Parsed<T> = { ok: true; notice: T } | { ok: false; reason: RejectionReason; detail: string };
export type ParsedNotice = Parsed<PaymentNotice>;

/** Signature first (a forged body is never parsed), then JSON, then the schema. */
function parseSigned<S extends z.ZodType<{ version: 1 }>>(
  schema: S,
  body: Buffer,
  signature: unknown,
  secret: string,
): Parsed<z.infer<S>> {
  if (!hasValidSignature(body, signature, secret)) {
    return { ok: false, reason: 'BAD_SIGNATURE', detail: 'missing or wrong x-signature header' };
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (error) {
    return { ok: false, reason: 'NOT_JSON', detail: (error as Error).message };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    return { ok: false, reason: 'SCHEMA_VIOLATION', detail };
  }
  return { ok: true, notice: parsed.data };
}

export function parsePaymentNotice(body: Buffer, signature: unknown, secret: string): ParsedNotice {
  const parsed = parseSigned(paymentNoticeSchema, body, signature, secret);
  if (!parsed.ok) return parsed;
  const { version: _v1, ...fields } = parsed.notice;
  return { ok: true, notice: { ...fields, source: 'mq' } };
}

export function parseRefundNotice(body: Buffer, signature: unknown, secret: string): Parsed<RefundNotice> {
  const parsed = parseSigned(refundNoticeSchema, body, signature, secret);
  if (!parsed.ok) return parsed;
  const { version: _v1, ...fields } = parsed.notice;
  return { ok: true, notice: { ...fields, source: 'mq' } };
}
