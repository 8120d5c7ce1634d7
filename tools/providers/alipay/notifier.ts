import { createSign, type KeyObject, randomBytes } from 'node:crypto';

/**
 * The fake Alipay's asynchronous notifications, from Alipay's published rule with Node's crypto only:
 * a form POST (application/x-www-form-urlencoded, UTF-8) to the trade's notify_url, signed RSA2 over
 * every parameter but `sign` and `sign_type`, sorted by name, joined as `k=v&k=v` with the values as they
 * are (not URL-encoded), SHA256withRSA, base64. Alipay sends it again on its ladder (4m, 10m, 10m, 1h,
 * 2h, 6h, 15h after the first try) until the answer's body is exactly `success`.
 */

/** Alipay's retry ladder: the waits after the first attempt, eight attempts in about 25 hours. */
export const ALIPAY_NOTIFY_LADDER_MS = [
  4 * 60_000,
  10 * 60_000,
  10 * 60_000,
  3_600_000,
  2 * 3_600_000,
  6 * 3_600_000,
  15 * 3_600_000,
];

/** Fault knobs for notifications, globally (the fake's faults) or for one payment. */
export interface NotifyFaults {
  /** Never send it (a lost notification): payrecon must learn of the payment by its queries. */
  drop?: boolean;
  /** Send each attempt twice (the same notify_id). */
  duplicate?: boolean;
  /** Wait this long before the first attempt. */
  delayMs?: number;
  /** Sign it with a key that is not this Alipay's: a forged notification. */
  forge?: boolean;
}

/** One POST of a notification and what came back. */
export interface NotifyAttempt {
  notifyId: string;
  outTradeNo: string;
  /** 1 for the first try, 2 for the first retry on the ladder, ... */
  attempt: number;
  at: string;
  url: string;
  /** The HTTP status, or null when the request failed (refused, timed out). */
  status: number | null;
  /** The answer's body (its first 200 characters), or the error. */
  answer: string;
  success: boolean;
  forged: boolean;
}

export interface NotifierOptions {
  /** This Alipay's private key and another one, for forged notifications. */
  key: KeyObject;
  otherKey: KeyObject;
  /** The waits between attempts; default Alipay's ladder. Tests shorten it. */
  ladderMs?: readonly number[];
  /** How long one POST may take before it counts as failed. */
  timeoutMs?: number;
}

/** The string Alipay signs: every parameter but sign and sign_type, sorted by name, `k=v` joined by `&`. */
export function notificationSignContent(params: Record<string, string>): string {
  return Object.keys(params)
    .filter((name) => name !== 'sign' && name !== 'sign_type')
    .sort()
    .map((name) => `${name}=${params[name]}`)
    .join('&');
}

/** `params` with `sign_type=RSA2` and its `sign`. */
export function signNotification(params: Record<string, string>, key: KeyObject): Record<string, string> {
  const signed = { ...params, sign_type: 'RSA2' };
  const sign = createSign('RSA-SHA256').update(notificationSignContent(signed), 'utf8').sign(key, 'base64');
  return { ...signed, sign };
}

/** A notify_id as Alipay's look: 34 characters, unique per notification, the same on each retry. */
export function newNotifyId(): string {
  return randomBytes(17).toString('hex');
}

export class AlipayNotifier {
  private readonly attempts: NotifyAttempt[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly options: NotifierOptions) {}

  /** Every attempt so far, oldest first. */
  log(): NotifyAttempt[] {
    return [...this.attempts];
  }

  /** Sends one notification (`params` without sign) to `url` as the faults say, retrying on the ladder. */
  send(url: string, params: Record<string, string>, faults: NotifyFaults = {}): void {
    if (faults.drop || this.closed) return;
    const forged = Boolean(faults.forge);
    const body = signNotification(params, forged ? this.options.otherKey : this.options.key);
    const ladder = this.options.ladderMs ?? ALIPAY_NOTIFY_LADDER_MS;
    const attempt = (n: number) => {
      const copies = faults.duplicate ? 2 : 1;
      const work = Promise.all(Array.from({ length: copies }, () => this.post(url, body, n, forged))).then(
        (answers) => {
          const wait = ladder[n - 1];
          if (answers.some(Boolean) || wait === undefined) return;
          this.later(wait, () => attempt(n + 1));
        },
      );
      this.inFlight.add(work);
      work.finally(() => this.inFlight.delete(work));
    };
    this.later(faults.delayMs ?? 0, () => attempt(1));
  }

  /** Stops retrying and waits for the POSTs in flight. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
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
    url: string,
    body: Record<string, string>,
    attempt: number,
    forged: boolean,
  ): Promise<boolean> {
    const record: NotifyAttempt = {
      notifyId: body.notify_id ?? '',
      outTradeNo: body.out_trade_no ?? '',
      attempt,
      at: new Date().toISOString(),
      url,
      status: null,
      answer: '',
      success: false,
      forged,
    };
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
        body: new URLSearchParams(body).toString(),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
      });
      const text = await response.text();
      record.status = response.status;
      record.answer = text.slice(0, 200);
      // Alipay takes nothing but the seven characters `success` as the receipt.
      record.success = text === 'success';
    } catch (error) {
      record.answer = (error as Error).message;
    }
    this.attempts.push(record);
    return record.success;
  }
}
