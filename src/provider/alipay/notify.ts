import { generateKeyPairSync } from 'node:crypto';
import type { AlipaySdk } from 'alipay-sdk';
import { type PaymentNoticeBody, paymentNoticeSchema } from '../../mq/notification';
import { parseBillTime } from '../statement-format';
import { yuanToFen } from './yuan';

/**
 * What an Alipay asynchronous notification (`trade_status_sync`, POSTed to the trade's notify_url) means
 * for payrecon:
 * - `paid`: TRADE_SUCCESS / TRADE_FINISHED, as payrecon's paid notice, to publish; answer `success` once
 *   the broker confirmed it;
 * - `nothing`: true and ours, but nothing to publish (WAIT_BUYER_PAY, TRADE_CLOSED, a refund); answer
 *   `success` so Alipay stops sending it;
 * - `refused`: forged, not for this app or seller, or unreadable; never published, answer `fail`.
 */
export type AlipayNotification =
  | { kind: 'paid'; notice: PaymentNoticeBody }
  | { kind: 'nothing'; why: string; orderId: string | null }
  | { kind: 'refused'; reason: AlipayNotificationRefusal; detail: string };

export type AlipayNotificationRefusal =
  /** Not a flat form of single strings, a charset other than UTF-8. */
  | 'UNPARSEABLE'
  /** No sign, a sign_type other than RSA2, or a signature Alipay's public key does not verify. */
  | 'BAD_SIGNATURE'
  | 'WRONG_APP'
  | 'WRONG_SELLER'
  /** A notify_type or trade_status payrecon does not know. */
  | 'UNSUPPORTED'
  /** Signed by Alipay, but a field cannot make a paid notice (order id, amount, time). */
  | 'SCHEMA_VIOLATION';

export interface AlipayNotificationReaderOptions {
  appId: string;
  /** Alipay's public key, PEM (SPKI): the one the gateway checks replies with. */
  alipayPublicKey: string;
  /** When set, a notification for another seller's trade is refused. */
  sellerId?: string;
}

const sdkModule = (): typeof import('alipay-sdk') => require('alipay-sdk');

const PAID_STATUSES = new Set(['TRADE_SUCCESS', 'TRADE_FINISHED']);
const UNPAID_STATUSES = new Set(['WAIT_BUYER_PAY', 'TRADE_CLOSED']);

/** Reads Alipay's notifications: the signature with the SDK's checkNotifySignV2, then app, seller, status. */
export class AlipayNotificationReader {
  private readonly sdk: AlipaySdk;

  constructor(private readonly options: AlipayNotificationReaderOptions) {
    // The SDK's constructor insists on an app private key, which verifying never uses. The receiver faces
    // the internet, so it does not get the app's real key: a throwaway one it makes now stands in.
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.sdk = new (sdkModule().AlipaySdk)({
      appId: options.appId,
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      keyType: 'PKCS8',
      alipayPublicKey: options.alipayPublicKey,
      signType: 'RSA2',
    });
  }

  /** `form`: the POSTed application/x-www-form-urlencoded body, decoded (values as sent, unescaped). */
  read(form: unknown): AlipayNotification {
    const fields = flatForm(form);
    if (typeof fields === 'string') return refuse('UNPARSEABLE', fields);
    const charset = fields.charset?.toLowerCase();
    if (charset && charset !== 'utf-8' && charset !== 'utf8') {
      return refuse('UNPARSEABLE', `charset ${fields.charset}: only UTF-8 notifications are read`);
    }
    if (!fields.sign) return refuse('BAD_SIGNATURE', 'no sign');
    if (fields.sign_type !== undefined && fields.sign_type !== 'RSA2') {
      return refuse('BAD_SIGNATURE', `sign_type ${fields.sign_type}: only RSA2 is accepted`);
    }
    // V2: the values as received, without a second URL-decoding (which would break on a literal "%").
    if (!this.sdk.checkNotifySignV2(fields)) {
      return refuse('BAD_SIGNATURE', "the signature does not verify with Alipay's public key");
    }
    if (fields.app_id !== this.options.appId) {
      return refuse('WRONG_APP', `app_id ${String(fields.app_id)} is not this app's`);
    }
    if (this.options.sellerId && fields.seller_id !== this.options.sellerId) {
      return refuse('WRONG_SELLER', `seller_id ${String(fields.seller_id)} is not the configured seller`);
    }
    if (fields.notify_type !== 'trade_status_sync') {
      return refuse('UNSUPPORTED', `notify_type ${String(fields.notify_type)}`);
    }
    const orderId = fields.out_trade_no ?? null;
    const status = fields.trade_status ?? '';
    // A refund's notification carries the trade's status (TRADE_SUCCESS after a partial refund,
    // TRADE_CLOSED after a full one) plus out_biz_no, gmt_refund and refund_fee. It is not a second
    // payment, and it cannot be payrecon's refund notice: refund_fee is the trade's refunded total, not
    // this refund's amount, and Alipay has no refund number. The refund workflow's query settles it.
    if (fields.out_biz_no || fields.gmt_refund) {
      return { kind: 'nothing', why: `refund notification (trade ${status})`, orderId };
    }
    if (UNPAID_STATUSES.has(status)) return { kind: 'nothing', why: `trade ${status}`, orderId };
    if (!PAID_STATUSES.has(status)) return refuse('UNSUPPORTED', `trade_status ${JSON.stringify(status)}`);
    return this.paidNotice(fields);
  }

  private paidNotice(fields: Record<string, string>): AlipayNotification {
    let amount: number;
    let paidAt: string;
    try {
      amount = yuanToFen(fields.total_amount ?? '');
      // Asia/Shanghai wall time, `YYYY-MM-DD HH:mm:ss`, as in the bill.
      paidAt = parseBillTime(fields.gmt_payment ?? '').toISOString();
    } catch (error) {
      return refuse('SCHEMA_VIOLATION', (error as Error).message);
    }
    const notice: PaymentNoticeBody = {
      version: 1,
      // notify_id is the same on each of Alipay's retries: a notification published twice is one message.
      messageId: `alipay-${fields.notify_id ?? ''}`,
      orderId: fields.out_trade_no ?? '',
      tradeNo: fields.trade_no ?? '',
      status: fields.trade_status as PaymentNoticeBody['status'],
      amount,
      currency: 'CNY',
      paidAt,
    };
    if (!fields.notify_id) return refuse('SCHEMA_VIOLATION', 'no notify_id');
    const checked = paymentNoticeSchema.safeParse(notice);
    if (!checked.success) {
      return refuse(
        'SCHEMA_VIOLATION',
        checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      );
    }
    return { kind: 'paid', notice };
  }
}

function refuse(reason: AlipayNotificationRefusal, detail: string): AlipayNotification {
  return { kind: 'refused', reason, detail };
}

/** The form as one string per name; a repeated name or anything else is a reason (a string). */
function flatForm(form: unknown): Record<string, string> | string {
  if (typeof form !== 'object' || form === null || Array.isArray(form)) return 'no form body';
  const fields: Record<string, string> = {};
  for (const [name, value] of Object.entries(form)) {
    if (typeof value !== 'string') return `parameter ${name} is given more than once`;
    fields[name] = value;
  }
  if (Object.keys(fields).length === 0) return 'an empty form';
  return fields;
}
