import { createCipheriv, createSign, type KeyObject, randomBytes } from 'node:crypto';

/**
 * The fake WeChat Pay's notifications, from WeChat Pay's published API v3 rule with Node's crypto only:
 * a JSON POST to the notify_url whose `resource` is the event's object encrypted with AEAD_AES_256_GCM
 * (key: the merchant's APIv3 key; a 12-character nonce; associated_data; base64 of ciphertext ‖ tag),
 * signed like every reply: Wechatpay-Signature = RSA-SHA256 over `timestamp\nnonce\nbody\n` with
 * WeChat Pay's key, Wechatpay-Serial its PUB_KEY_ID_…. Sent again on WeChat's ladder (15s, 15s, 30s,
 * 3m, 10m, 20m, 30m ×3, 60m, 3h ×3, 6h ×2) until any 2xx answer.
 */

/** WeChat's retry ladder: the waits after the first attempt, sixteen attempts in about 24 hours. */
export const WECHATPAY_NOTIFY_LADDER_MS = [
  15_000,
  15_000,
  30_000,
  3 * 60_000,
  10 * 60_000,
  20 * 60_000,
  30 * 60_000,
  30 * 60_000,
  30 * 60_000,
  60 * 60_000,
  3 * 3_600_000,
  3 * 3_600_000,
  3 * 3_600_000,
  6 * 3_600_000,
  6 * 3_600_000,
];

/** Fault knobs for notifications, for every notification (the fake's) or for one. */
export interface WechatNotifyFaults {
  /** Never send it: payrecon must learn of the payment by its queries. */
  drop?: boolean;
  /** Send each attempt twice (the same notification id). */
  duplicate?: boolean;
  /** Sign it with a key that is not WeChat Pay's (same serial): a forged notification. */
  forge?: boolean;
  /** Sign it correctly with a timestamp 6 minutes old: a replayed notification. */
  replayOldTimestamp?: boolean;
  /** Before the notification, send one signature probe (Wechatpay-Signature WECHATPAY/SIGNTEST/…). */
  probe?: boolean;
}

export type WechatNotifyKind = 'genuine' | 'forged' | 'stale' | 'probe';

/** One POST of a notification and what came back. */
export interface WechatNotifyAttempt {
  id: string;
  eventType: string;
  outTradeNo: string;
  /** 1 for the first try, 2 for the first retry on the ladder, ... (0 for a probe). */
  attempt: number;
  at: string;
  url: string;
  /** The HTTP status, or null when the request failed (refused, timed out). */
  status: number | null;
  /** The answer's body (its first 200 characters), or the error. */
  answer: string;
  success: boolean;
  kind: WechatNotifyKind;
}

export interface WechatNotifierOptions {
  /** WeChat Pay's key and its id; another key for forged notifications. */
  key: KeyObject;
  keyId: string;
  otherKey: KeyObject;
  /** The merchant's APIv3 key (32 bytes). */
  apiV3Key: string;
  ladderMs?: readonly number[];
  /** How long one POST may take before it counts as failed (WeChat waits 5 s). */
  timeoutMs?: number;
}

/** A WeChat-like id: EV-… notification ids, nonces of letters and digits. */
function alnum(n: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(n), (byte) => alphabet[byte % alphabet.length]).join('');
}

/** `resource` of a notification: `plain` encrypted with AEAD_AES_256_GCM under the APIv3 key. */
export function encryptResource(
  plain: unknown,
  apiV3Key: string,
  associatedData: string,
  originalType: string,
): Record<string, string> {
  const nonce = alnum(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(apiV3Key, 'utf8'), Buffer.from(nonce, 'utf8'));
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([
    cipher.update(JSON.stringify(plain), 'utf8'),
    cipher.final(),
    cipher.getAuthTag(),
  ]).toString('base64');
  return {
    original_type: originalType,
    algorithm: 'AEAD_AES_256_GCM',
    ciphertext,
    associated_data: associatedData,
    nonce,
  };
}

/** The Wechatpay-* headers of `body`, signed with `key` at `timestampS`. */
export function signedHeaders(
  body: string,
  key: KeyObject,
  keyId: string,
  timestampS = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const timestamp = String(timestampS);
  const nonce = alnum(32);
  const signature = createSign('RSA-SHA256')
    .update(`${timestamp}\n${nonce}\n${body}\n`, 'utf8')
    .sign(key, 'base64');
  return {
    'Wechatpay-Timestamp': timestamp,
    'Wechatpay-Nonce': nonce,
    'Wechatpay-Serial': keyId,
    'Wechatpay-Signature': signature,
  };
}

export class WechatNotifier {
  private readonly attempts: WechatNotifyAttempt[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(private readonly options: WechatNotifierOptions) {}

  log(): WechatNotifyAttempt[] {
    return [...this.attempts];
  }

  /** One notification of `eventType` about `plain` (a transaction or a refund), retried on the ladder. */
  send(
    url: string,
    eventType: string,
    summary: string,
    plain: { out_trade_no: string } & Record<string, unknown>,
    faults: WechatNotifyFaults = {},
  ): void {
    if (faults.drop || this.closed) return;
    const refund = eventType.startsWith('REFUND.');
    const envelope = {
      id: `EV-${alnum(20)}`,
      create_time: new Date().toISOString().replace(/\.\d{3}Z$/, '+00:00'),
      resource_type: 'encrypt-resource',
      event_type: eventType,
      summary,
      resource: encryptResource(
        plain,
        this.options.apiV3Key,
        refund ? 'refund' : 'transaction',
        refund ? 'refund' : 'transaction',
      ),
    };
    const body = JSON.stringify(envelope);
    const kind: WechatNotifyKind = faults.forge ? 'forged' : faults.replayOldTimestamp ? 'stale' : 'genuine';
    const about = { id: envelope.id, eventType, outTradeNo: plain.out_trade_no, url };
    const ladder = this.options.ladderMs ?? WECHATPAY_NOTIFY_LADDER_MS;
    const attempt = (n: number) => {
      // Signed anew at each attempt, as WeChat does: a new timestamp and nonce, the same body.
      const headers = signedHeaders(
        body,
        faults.forge ? this.options.otherKey : this.options.key,
        this.options.keyId,
        Math.floor(Date.now() / 1000) - (faults.replayOldTimestamp ? 360 : 0),
      );
      const copies = faults.duplicate ? 2 : 1;
      const work = Promise.all(
        Array.from({ length: copies }, () => this.post(about, body, headers, n, kind)),
      ).then((answers) => {
        const wait = ladder[n - 1];
        if (answers.some(Boolean) || wait === undefined) return;
        this.later(wait, () => attempt(n + 1));
      });
      this.track(work);
    };
    if (faults.probe) {
      // WeChat's probe: a body it did not sign, whose signature says so; only a merchant that verifies
      // refuses it. It is sent once.
      const probe = this.post(
        about,
        body,
        {
          ...signedHeaders(body, this.options.key, this.options.keyId),
          'Wechatpay-Signature': `WECHATPAY/SIGNTEST/${alnum(40)}`,
        },
        0,
        'probe',
      ).then(() => attempt(1));
      this.track(probe);
      return;
    }
    attempt(1);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    work.finally(() => this.inFlight.delete(work));
  }

  private later(ms: number, run: () => void): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (!this.closed) run();
    }, ms);
    this.timers.add(timer);
  }

  private async post(
    about: { id: string; eventType: string; outTradeNo: string; url: string },
    body: string,
    headers: Record<string, string>,
    attempt: number,
    kind: WechatNotifyKind,
  ): Promise<boolean> {
    if (this.closed) return true;
    const record: WechatNotifyAttempt = {
      ...about,
      attempt,
      at: new Date().toISOString(),
      status: null,
      answer: '',
      success: false,
      kind,
    };
    try {
      const response = await fetch(about.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000),
      });
      const text = await response.text();
      record.status = response.status;
      record.answer = text.slice(0, 200);
      // WeChat takes any 2xx (200 or 204) as received.
      record.success = response.status >= 200 && response.status < 300;
    } catch (error) {
      record.answer = (error as Error).message;
    }
    this.attempts.push(record);
    return record.success;
  }
}
