import { z } from 'zod';
import type { PaymentNoticeBody } from '../../mq/notification';
import { paymentNoticeSchema, refundNoticeSchema } from '../../mq/notification';
import type { WechatPayNotifyConfig } from './config';

/**
 * What a WeChat Pay API v3 notification (a JSON POST to the notify_url) means for payrecon:
 * - `paid`: TRANSACTION.SUCCESS, as payrecon's paid notice, to publish; answer 204 once the broker confirmed;
 * - `refund`: REFUND.SUCCESS / REFUND.CLOSED, as payrecon's refund notice (outRequestNo = out_refund_no);
 * - `nothing`: verified and ours, but nothing to publish (REFUND.ABNORMAL); answer 204 so WeChat stops;
 * - `refused`: forged, a signature probe, stale, undecryptable, not this merchant's or unreadable;
 *   never published, answered with a failure so that WeChat's retries carry a genuine one.
 */
export type WechatPayNotification =
  | { kind: 'paid'; id: string; notice: PaymentNoticeBody }
  | { kind: 'refund'; id: string; notice: z.input<typeof refundNoticeSchema> }
  | { kind: 'nothing'; id: string; why: string; orderId: string | null }
  | { kind: 'refused'; id: string | undefined; reason: WechatPayNotificationRefusal; detail: string };

export type WechatPayNotificationRefusal =
  /** Not a JSON notification of WeChat's envelope. */
  | 'UNPARSEABLE'
  /** A missing header, a signature probe (WECHATPAY/SIGNTEST/), or a signature the public key refuses. */
  | 'BAD_SIGNATURE'
  /** Wechatpay-Serial is not the configured WECHATPAY_PUBLIC_KEY_ID. */
  | 'UNKNOWN_SERIAL'
  /** Wechatpay-Timestamp more than 5 minutes from now: a replay or a wrong clock. */
  | 'STALE_TIMESTAMP'
  /** Not AEAD_AES_256_GCM, or the tag does not verify with the APIv3 key. */
  | 'UNDECRYPTABLE'
  | 'WRONG_MERCHANT'
  | 'WRONG_APP'
  /** An event_type or trade_state payrecon does not know. */
  | 'UNSUPPORTED'
  /** Verified and decrypted, but a field cannot make payrecon's notice. */
  | 'SCHEMA_VIOLATION';

/** WeChat's (and the plugin's) limit on how far a signed timestamp may be from now. */
export const WECHATPAY_CLOCK_SKEW_S = 300;
const PROBE_PREFIX = 'WECHATPAY/SIGNTEST/';

const envelopeSchema = z.object({
  id: z.string().min(1).max(64),
  create_time: z.string().optional(),
  event_type: z.string().min(1),
  resource_type: z.string().optional(),
  resource: z.object({
    algorithm: z.string(),
    ciphertext: z.string().min(1),
    associated_data: z.string().optional(),
    nonce: z.string().min(1),
    original_type: z.string().optional(),
  }),
});

/** RFC 3339 with an offset, as WeChat writes times: 2026-03-01T10:00:04+08:00. */
const wechatTime = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
const fen = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

const transactionSchema = z.object({
  mchid: z.string(),
  appid: z.string(),
  out_trade_no: z.string(),
  transaction_id: z.string().min(1),
  trade_state: z.string(),
  success_time: wechatTime,
  amount: z.object({ total: fen, currency: z.string().default('CNY') }),
});

const refundSchema = z.object({
  mchid: z.string(),
  out_trade_no: z.string(),
  out_refund_no: z.string().min(1),
  refund_id: z.string().min(1),
  refund_status: z.string(),
  success_time: wechatTime.optional(),
  amount: z.object({ refund: fen, total: fen }),
});

/** The request as it came: the headers (lower-case names) and the raw body, before any JSON parse. */
export interface WechatPayNotificationRequest {
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const sdkModule = (): typeof import('wechatpay-axios-plugin') => require('wechatpay-axios-plugin');

/**
 * Reads WeChat Pay's notifications: the signature over `timestamp\nnonce\nbody\n` with the WeChat Pay
 * public key named by Wechatpay-Serial (the plugin's Rsa.verify), the 5-minute window, then the resource
 * decrypted with the APIv3 key (the plugin's Aes.AesGcm), then merchant and app. It holds no merchant
 * private key: it only verifies and decrypts.
 */
export class WechatPayNotificationReader {
  private readonly sdk = sdkModule();

  constructor(
    private readonly config: WechatPayNotifyConfig,
    private readonly now: () => number = Date.now,
  ) {}

  read(request: WechatPayNotificationRequest): WechatPayNotification {
    const header = (name: string) => {
      const value = request.headers[name];
      return typeof value === 'string' ? value : undefined;
    };
    let envelope: z.infer<typeof envelopeSchema>;
    try {
      const parsed = envelopeSchema.safeParse(JSON.parse(request.body));
      if (!parsed.success) return refuse(undefined, 'UNPARSEABLE', 'not a WeChat Pay notification envelope');
      envelope = parsed.data;
    } catch {
      return refuse(undefined, 'UNPARSEABLE', 'the body is not JSON');
    }
    const { id } = envelope;
    const timestamp = header('wechatpay-timestamp');
    const nonce = header('wechatpay-nonce');
    const signature = header('wechatpay-signature');
    const serial = header('wechatpay-serial');
    if (!timestamp || !nonce || !signature || !serial) {
      return refuse(
        id,
        'BAD_SIGNATURE',
        'a Wechatpay-Timestamp, -Nonce, -Signature or -Serial header is missing',
      );
    }
    // WeChat's probe checks that the merchant verifies signatures: it must be answered as a failure.
    if (signature.startsWith(PROBE_PREFIX)) {
      return refuse(id, 'BAD_SIGNATURE', 'a signature probe (WECHATPAY/SIGNTEST/)');
    }
    if (serial !== this.config.wechatpayPublicKeyId) {
      return refuse(
        id,
        'UNKNOWN_SERIAL',
        `Wechatpay-Serial ${serial.slice(0, 64)} is not the configured key id`,
      );
    }
    const seconds = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : Number.NaN;
    if (!(Math.abs(this.now() / 1000 - seconds) <= WECHATPAY_CLOCK_SKEW_S)) {
      return refuse(
        id,
        'STALE_TIMESTAMP',
        `Wechatpay-Timestamp ${timestamp.slice(0, 16)} is more than 5 minutes off`,
      );
    }
    let verified = false;
    try {
      verified = this.sdk.Rsa.verify(
        `${timestamp}\n${nonce}\n${request.body}\n`,
        signature,
        this.config.wechatpayPublicKey,
      );
    } catch {
      verified = false;
    }
    if (!verified) {
      return refuse(id, 'BAD_SIGNATURE', 'the signature does not verify with the WeChat Pay public key');
    }
    const { resource } = envelope;
    if (resource.algorithm !== 'AEAD_AES_256_GCM') {
      return refuse(id, 'UNDECRYPTABLE', `algorithm ${resource.algorithm.slice(0, 32)}`);
    }
    let plain: unknown;
    try {
      plain = JSON.parse(
        this.sdk.Aes.AesGcm.decrypt(
          resource.ciphertext,
          this.config.apiV3Key as never,
          resource.nonce,
          resource.associated_data ?? '',
        ),
      );
    } catch {
      return refuse(id, 'UNDECRYPTABLE', 'the resource does not decrypt with the APIv3 key (GCM tag)');
    }
    switch (envelope.event_type) {
      case 'TRANSACTION.SUCCESS':
        return this.paid(id, plain);
      case 'REFUND.SUCCESS':
      case 'REFUND.CLOSED':
      case 'REFUND.ABNORMAL':
        return this.refund(id, envelope.event_type, plain);
      default:
        return refuse(id, 'UNSUPPORTED', `event_type ${envelope.event_type.slice(0, 64)}`);
    }
  }

  private paid(id: string, plain: unknown): WechatPayNotification {
    const parsed = transactionSchema.safeParse(plain);
    if (!parsed.success) return refuse(id, 'SCHEMA_VIOLATION', issues(parsed.error));
    const trade = parsed.data;
    if (trade.mchid !== this.config.mchId) {
      return refuse(id, 'WRONG_MERCHANT', `mchid ${trade.mchid.slice(0, 32)} is not this merchant`);
    }
    if (trade.appid !== this.config.appId) {
      return refuse(id, 'WRONG_APP', `appid ${trade.appid.slice(0, 32)} is not the configured AppID`);
    }
    if (trade.trade_state !== 'SUCCESS') {
      return refuse(
        id,
        'UNSUPPORTED',
        `TRANSACTION.SUCCESS with trade_state ${trade.trade_state.slice(0, 32)}`,
      );
    }
    const notice: PaymentNoticeBody = {
      version: 1,
      // The notification id is the same on each of WeChat's retries: the consumer dedupes on it.
      messageId: `wechatpay-${id}`,
      orderId: trade.out_trade_no,
      tradeNo: trade.transaction_id,
      status: 'TRADE_SUCCESS',
      amount: trade.amount.total,
      currency: trade.amount.currency,
      paidAt: new Date(trade.success_time).toISOString(),
    };
    const checked = paymentNoticeSchema.safeParse(notice);
    if (!checked.success) return refuse(id, 'SCHEMA_VIOLATION', issues(checked.error));
    return { kind: 'paid', id, notice };
  }

  private refund(id: string, event: string, plain: unknown): WechatPayNotification {
    const parsed = refundSchema.safeParse(plain);
    if (!parsed.success) return refuse(id, 'SCHEMA_VIOLATION', issues(parsed.error));
    const refund = parsed.data;
    if (refund.mchid !== this.config.mchId) {
      return refuse(id, 'WRONG_MERCHANT', `mchid ${refund.mchid.slice(0, 32)} is not this merchant`);
    }
    // ABNORMAL: the money left the merchant but did not reach the buyer. Neither success nor failure:
    // the refund stays open, as the gateway's query says, and its workflow's deadline decides.
    if (event === 'REFUND.ABNORMAL' || refund.refund_status === 'ABNORMAL') {
      return { kind: 'nothing', id, why: 'refund ABNORMAL (still open)', orderId: refund.out_trade_no };
    }
    const success = event === 'REFUND.SUCCESS';
    if (refund.refund_status !== (success ? 'SUCCESS' : 'CLOSED')) {
      return refuse(
        id,
        'SCHEMA_VIOLATION',
        `${event} with refund_status ${refund.refund_status.slice(0, 32)}`,
      );
    }
    if (success && !refund.success_time)
      return refuse(id, 'SCHEMA_VIOLATION', 'REFUND.SUCCESS without success_time');
    const notice = {
      version: 1 as const,
      messageId: `wechatpay-${id}`,
      orderId: refund.out_trade_no,
      outRequestNo: refund.out_refund_no,
      refundNo: refund.refund_id,
      status: success ? ('REFUND_SUCCESS' as const) : ('REFUND_FAILED' as const),
      // amount.refund is this refund's own amount in fen (amount.total is the order's).
      amount: refund.amount.refund,
      currency: 'CNY',
      // A closed refund carries no success_time: the notice's instant is when payrecon read it.
      refundedAt: new Date(refund.success_time ?? this.now()).toISOString(),
    };
    const checked = refundNoticeSchema.safeParse(notice);
    if (!checked.success) return refuse(id, 'SCHEMA_VIOLATION', issues(checked.error));
    return { kind: 'refund', id, notice };
  }
}

function refuse(
  id: string | undefined,
  reason: WechatPayNotificationRefusal,
  detail: string,
): WechatPayNotification {
  return { kind: 'refused', id, reason, detail };
}

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
}
