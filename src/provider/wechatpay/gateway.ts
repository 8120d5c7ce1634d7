import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { z } from 'zod';
import type { RefundLookupStatus, RefundSnapshot, TradeSnapshot, TradeStatus } from '../../domain';
import {
  type PaymentGateway,
  ProviderReplyError,
  ProviderUnavailableError,
  type RefundRequest,
  StatementNotReadyError,
  StatementUrlExpiredError,
  type TradeRequest,
} from '../gateway';
import type { StatementEntry } from '../statement';
import { isBillDate, type StatementFormat, type StatementLocation } from '../statement-format';
import { readTradeBill } from './bill';
import type { WechatPayConfig } from './config';

/**
 * PaymentGateway on WeChat Pay API v3, through wechatpay-axios-plugin: it signs every request
 * (WECHATPAY2-SHA256-RSA2048) and verifies every 2xx reply's Wechatpay-Signature over the raw
 * timestamp, nonce and body with the WeChat Pay public key, refusing a timestamp more than 5 minutes
 * off. Money is in fen as WeChat sends it; currency CNY (Native orders take nothing else).
 */

/** Trade states onto payrecon's vocabulary, each on purpose. */
const TRADE_STATES: Record<string, TradeStatus> = {
  SUCCESS: 'TRADE_SUCCESS',
  // Refunded (in part or in full) after being paid: it was paid, and stays refundable.
  REFUND: 'TRADE_SUCCESS',
  NOTPAY: 'WAIT_BUYER_PAY',
  // The buyer is entering a password or confirming: still open, the money has not moved.
  USERPAYING: 'WAIT_BUYER_PAY',
  CLOSED: 'TRADE_CLOSED',
  // Revoked (payment-code trades): no money moved, and it can never be paid.
  REVOKED: 'TRADE_CLOSED',
  // The payment failed (the bank refused): WeChat asks for a new order, this one cannot be paid again.
  PAYERROR: 'TRADE_CLOSED',
};

/**
 * Refund states. ABNORMAL (the money left the merchant but could not reach the buyer's account, e.g. a
 * closed bank card) is neither a success nor a refusal: it is kept PROCESSING, so the refund workflow
 * goes on asking and, when no one resolves it at WeChat (the merchant platform or the abnormal-refund
 * API), ends UNKNOWN at its deadline with a REFUND_UNCONFIRMED discrepancy for an operator. FAILED would
 * tell the shop the money is still its own, and it is not.
 */
const REFUND_STATES: Record<string, Exclude<RefundLookupStatus, 'NOT_FOUND'>> = {
  SUCCESS: 'SUCCESS',
  CLOSED: 'FAILED',
  PROCESSING: 'PROCESSING',
  ABNORMAL: 'PROCESSING',
};

/** Business error codes that a retry can fix. */
const RETRYABLE_CODES = new Set(['SYSTEM_ERROR', 'FREQUENCY_LIMITED', 'BANK_ERROR', 'NOT_ENOUGH']);

/** How long WeChat Pay says a bill's download_url is good for. */
const BILL_URL_TTL_MS = 30_000;

/** A statement location that carries the bill's SHA1, which the download is checked against. */
export interface WechatPayStatementLocation extends StatementLocation {
  hashType: 'SHA1';
  hashValue: string;
}

/** The downloaded bill's SHA1 is not the one WeChat declared: a broken download, ask again. */
export class StatementChecksumError extends ProviderUnavailableError {
  override name = 'StatementChecksumError';
}

/** What the adapter hands the reconciliation: the bill as checked, unzipped, UTF-8 CSV. */
/**
 * The SDK (and axios) is loaded when a gateway is made: processes that never use WeChat Pay, and
 * `payrecon --help`, do not load it (src/provider/select.ts imports this module in every process).
 */
const sdkModule = (): typeof import('wechatpay-axios-plugin') => require('wechatpay-axios-plugin');

const CHECKED_BILL_FORMAT: StatementFormat = { encoding: 'utf-8', zipped: false };

interface WechatPayGatewayOptions {
  /** Per request; the activity's own timeout bounds the whole call. */
  timeoutMs?: number;
}

/** The plugin's axios instance, as much of it as this adapter uses (axios is the plugin's dependency). */
interface V3Client {
  request(config: {
    method: 'GET' | 'POST';
    url: string;
    data?: unknown;
    params?: Record<string, string>;
    responseType?: 'json' | 'stream';
    timeout?: number;
  }): Promise<{ status: number; data: unknown }>;
}

/** What an axios error carries that this adapter reads. */
interface HttpFailure {
  isAxiosError?: boolean;
  code?: string;
  message: string;
  response?: { status: number; data: unknown };
}

/** WeChat's out_trade_no: 6 to 32 of letters, digits and _-|*. */
const OUT_TRADE_NO = /^[A-Za-z0-9_\-|*]{6,32}$/;
/** WeChat's out_refund_no: 1 to 64 of letters, digits and _-|*@. */
const OUT_REFUND_NO = /^[A-Za-z0-9_\-|*@]{1,64}$/;

export class WechatPayGateway implements PaymentGateway {
  private readonly client: V3Client;
  private readonly timeoutMs: number;

  constructor(
    private readonly config: WechatPayConfig,
    options: WechatPayGatewayOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 5_000;
    // The plugin reads its settings from one object, and its public key mode is the `certs` entry keyed
    // by PUB_KEY_ID_…; baseURL points it at WECHATPAY_ENDPOINT (the fake in tests) instead of its default.
    const settings = {
      mchid: config.mchId,
      serial: config.merchantCertSerial,
      privateKey: config.merchantPrivateKey,
      certs: { [config.wechatpayPublicKeyId]: config.wechatpayPublicKey },
      baseURL: `${config.endpoint}/`,
      timeout: this.timeoutMs,
    };
    this.client = sdkModule().Decorator.jsonBased(settings) as unknown as V3Client;
  }

  async openTrade(request: TradeRequest): Promise<TradeSnapshot> {
    return (await this.openNativeTrade(request)).trade;
  }

  /**
   * A Native order: the code_url is what the buyer scans. Opening the same order again with the same
   * amount gives the same code_url; one that was paid or closed meanwhile answers its status instead.
   */
  async openNativeTrade(request: TradeRequest): Promise<{ trade: TradeSnapshot; codeUrl: string | null }> {
    checkOutTradeNo(request.orderId);
    if (request.currency !== 'CNY') {
      throw new ProviderReplyError(`WeChat Pay Native orders are in CNY only, not ${request.currency}`);
    }
    if (!Number.isSafeInteger(request.amount) || request.amount <= 0) {
      throw new ProviderReplyError(`an order amount must be a positive number of fen, not ${request.amount}`);
    }
    const what = `open ${request.orderId}`;
    let data: unknown;
    try {
      ({ data } = await this.call(what, {
        method: 'POST',
        url: 'v3/pay/transactions/native',
        data: {
          appid: this.config.appId,
          mchid: this.config.mchId,
          description: `Order ${request.orderId}`,
          out_trade_no: request.orderId,
          notify_url: this.config.notifyUrl,
          amount: { total: request.amount, currency: 'CNY' },
        },
      }));
    } catch (error) {
      if (error instanceof WechatPayError && (error.code === 'ORDERPAID' || error.code === 'ORDER_CLOSED')) {
        return { trade: await this.queryTrade(request.orderId), codeUrl: null };
      }
      throw error;
    }
    const codeUrl = (data as { code_url?: unknown } | null)?.code_url;
    if (typeof codeUrl !== 'string' || codeUrl === '') {
      throw new ProviderReplyError(`WeChat Pay answered ${what} without a code_url`);
    }
    // WeChat numbers a trade (transaction_id) only once it is paid: until then there is none to carry.
    return {
      trade: {
        orderId: request.orderId,
        status: 'WAIT_BUYER_PAY',
        tradeNo: null,
        amount: null,
        currency: null,
        paidAt: null,
      },
      codeUrl,
    };
  }

  async queryTrade(orderId: string): Promise<TradeSnapshot> {
    checkOutTradeNo(orderId);
    const what = `query ${orderId}`;
    try {
      const { data } = await this.call(what, {
        method: 'GET',
        url: `v3/pay/transactions/out-trade-no/${encodeURIComponent(orderId)}`,
        params: { mchid: this.config.mchId },
      });
      return toTradeSnapshot(orderId, what, data);
    } catch (error) {
      if (error instanceof WechatPayError && error.code === 'ORDER_NOT_EXIST') return notFound(orderId);
      throw error;
    }
  }

  /**
   * Close answers 204 and nothing else, so the trade is queried afterwards: a trade paid meanwhile
   * (ORDERPAID) says so, one never opened (ORDER_NOT_EXIST) is NOT_FOUND, one closed is TRADE_CLOSED.
   */
  async closeTrade(orderId: string): Promise<TradeSnapshot> {
    checkOutTradeNo(orderId);
    try {
      await this.call(`close ${orderId}`, {
        method: 'POST',
        url: `v3/pay/transactions/out-trade-no/${encodeURIComponent(orderId)}/close`,
        data: { mchid: this.config.mchId },
      });
    } catch (error) {
      const settled = ['ORDERPAID', 'ORDER_CLOSED', 'ORDER_NOT_EXIST'];
      if (!(error instanceof WechatPayError && settled.includes(error.code))) throw error;
    }
    return this.queryTrade(orderId);
  }

  /**
   * A refund by out_refund_no: WeChat keeps one refund per out_refund_no, so asking again returns the
   * same refund. It wants the order's total beside the refund, which the query gives.
   */
  async submitRefund(request: RefundRequest): Promise<RefundSnapshot> {
    checkOutTradeNo(request.orderId);
    checkOutRefundNo(request.outRequestNo);
    const trade = await this.queryTrade(request.orderId);
    if (trade.status === 'NOT_FOUND' || trade.amount === null) {
      throw new ProviderReplyError(
        `WeChat Pay has no paid trade for ${request.orderId} (${trade.status}): nothing to refund`,
      );
    }
    const what = `refund ${request.outRequestNo} of ${request.orderId}`;
    const { data } = await this.call(what, {
      method: 'POST',
      url: 'v3/refund/domestic/refunds',
      data: {
        out_trade_no: request.orderId,
        out_refund_no: request.outRequestNo,
        ...(request.reason ? { reason: request.reason.slice(0, 80) } : {}),
        notify_url: this.config.notifyUrl,
        amount: { refund: request.amount, total: trade.amount, currency: 'CNY' },
      },
    });
    return toRefundSnapshot(request.outRequestNo, what, data);
  }

  async queryRefund(_orderId: string, outRequestNo: string): Promise<RefundSnapshot> {
    checkOutRefundNo(outRequestNo);
    const what = `query refund ${outRequestNo}`;
    try {
      const { data } = await this.call(what, {
        method: 'GET',
        url: `v3/refund/domestic/refunds/${encodeURIComponent(outRequestNo)}`,
      });
      return toRefundSnapshot(outRequestNo, what, data);
    } catch (error) {
      if (error instanceof WechatPayError && error.code === 'RESOURCE_NOT_EXISTS') {
        return { outRequestNo, status: 'NOT_FOUND', refundNo: null, amount: null, failureReason: null };
      }
      throw error;
    }
  }

  /**
   * The day's trade bill (all trades and refunds), gzipped. STATEMENT_CREATING: not out yet (after
   * 10:00 the next day). NO_STATEMENT_EXIST: WeChat has no bill for the day (no trade, or not out yet),
   * also asked again later: payrecon has no "empty day" answer yet.
   */
  async statementLocation(billDate: string): Promise<WechatPayStatementLocation> {
    if (!isBillDate(billDate)) throw new ProviderReplyError(`not a bill date (YYYY-MM-DD): ${billDate}`);
    const what = `trade bill of ${billDate}`;
    let data: unknown;
    try {
      ({ data } = await this.call(what, {
        method: 'GET',
        url: 'v3/bill/tradebill',
        params: { bill_date: billDate, bill_type: 'ALL', tar_type: 'GZIP' },
      }));
    } catch (error) {
      if (
        error instanceof WechatPayError &&
        (error.code === 'STATEMENT_CREATING' || error.code === 'NO_STATEMENT_EXIST')
      ) {
        throw new StatementNotReadyError(`WeChat Pay has no trade bill of ${billDate} yet (${error.code})`);
      }
      throw error;
    }
    const parsed = billLocationSchema.safeParse(data);
    if (!parsed.success) {
      throw new ProviderReplyError(`WeChat Pay answered ${what} with an unreadable location`);
    }
    const downloadUrl = parsed.data.download_url;
    if (!this.isOwnEndpoint(downloadUrl)) {
      // The download is signed with the merchant's key: it goes to WeChat Pay's own host only.
      throw new ProviderReplyError(`WeChat Pay answered ${what} with a download URL on another host`);
    }
    return {
      billDate,
      downloadUrl,
      expiresAt: new Date(Date.now() + BILL_URL_TTL_MS).toISOString(),
      format: CHECKED_BILL_FORMAT,
      hashType: 'SHA1',
      hashValue: parsed.data.hash_value.toLowerCase(),
    };
  }

  /**
   * The bill file is not signed: the SHA1 of the unzipped file must be the hash_value of the signed
   * location reply, checked before anything reads it. The unzipped bill goes to a temporary file as it
   * is hashed (flat memory for a long day), and the stream handed back deletes it when it closes.
   */
  async downloadStatement(location: StatementLocation): Promise<Readable> {
    const { hashType, hashValue } = location as Partial<WechatPayStatementLocation>;
    if (hashType !== 'SHA1' || typeof hashValue !== 'string') {
      throw new ProviderReplyError('a WeChat Pay statement location without its SHA1 cannot be checked');
    }
    const url = new URL(location.downloadUrl);
    if (!this.isOwnEndpoint(url.href)) {
      throw new ProviderReplyError('a WeChat Pay statement location on another host');
    }
    const what = `download of the ${location.billDate} trade bill`;
    let body: Readable;
    try {
      ({ data: body } = (await this.call(what, {
        method: 'GET',
        url: `${url.pathname.slice(new URL(`${this.config.endpoint}/`).pathname.length)}`,
        params: Object.fromEntries(url.searchParams),
        responseType: 'stream',
      })) as { data: Readable });
    } catch (error) {
      // A token past its 30 s (or unknown to WeChat) answers a 4xx: ask for a new URL.
      if (
        error instanceof WechatPayError &&
        error.status >= 400 &&
        error.status < 500 &&
        error.status !== 401
      ) {
        throw new StatementUrlExpiredError(`the ${what} was refused (${error.code}): ask for a new URL`);
      }
      throw error;
    }
    const dir = await mkdtemp(path.join(tmpdir(), 'payrecon-wechatpay-bill-'));
    const file = path.join(dir, 'tradebill.csv');
    const sha1 = createHash('sha1');
    try {
      await pipeline(
        body,
        createGunzip(),
        new Transform({
          transform(chunk: Buffer, _encoding, done) {
            sha1.update(chunk);
            done(null, chunk);
          },
        }),
        createWriteStream(file),
      );
    } catch (error) {
      await rm(dir, { recursive: true, force: true });
      throw new ProviderUnavailableError(`the ${what} broke off or is no gzip: ${(error as Error).message}`);
    }
    const actual = sha1.digest('hex');
    if (actual !== hashValue) {
      await rm(dir, { recursive: true, force: true });
      throw new StatementChecksumError(
        `the ${what} has SHA1 ${actual}, WeChat Pay declared ${hashValue}: refused unread, ask again`,
      );
    }
    const stream = createReadStream(file);
    stream.once('close', () => void rm(dir, { recursive: true, force: true }));
    return stream;
  }

  readStatement(file: Readable, _format: StatementFormat): AsyncIterable<StatementEntry> {
    return readTradeBill(file);
  }

  private isOwnEndpoint(candidate: string): boolean {
    try {
      const url = new URL(candidate);
      const own = new URL(`${this.config.endpoint}/`);
      return url.origin === own.origin && url.pathname.startsWith(own.pathname);
    } catch {
      return false;
    }
  }

  /** One signed call; its failure sorted into the gateway's two errors (WechatPayError is a reply one). */
  private async call(what: string, request: Parameters<V3Client['request']>[0]) {
    try {
      return await this.client.request(request);
    } catch (error) {
      throw await classify(what, error as HttpFailure);
    }
  }
}

/** A business error WeChat Pay answered (a 4xx with its code) that a retry will not fix. */
export class WechatPayError extends ProviderReplyError {
  override name = 'WechatPayError';
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
  ) {
    super(message);
  }
}

async function classify(what: string, failure: HttpFailure): Promise<Error> {
  if (!failure.isAxiosError) return failure as unknown as Error;
  const response = failure.response;
  // The plugin's own verdicts on a 2xx reply: its signature, serial or timestamp does not check out.
  if (failure.code?.startsWith('EV3_RES_')) {
    return new ProviderReplyError(
      `WeChat Pay's reply to ${what} is refused: ${failure.code}: ${failure.message}`,
    );
  }
  if (!response) {
    return new ProviderUnavailableError(
      `WeChat Pay did not answer ${what}: ${failure.code ?? failure.message}`,
    );
  }
  const body = await errorBody(response.data);
  const code = typeof body?.code === 'string' ? body.code : `HTTP_${response.status}`;
  const message = typeof body?.message === 'string' ? body.message.slice(0, 200) : '';
  const text = `WeChat Pay answered ${what} with HTTP ${response.status} ${code}${message ? `: ${message}` : ''}`;
  if (response.status >= 500 || response.status === 429 || RETRYABLE_CODES.has(code)) {
    return new ProviderUnavailableError(text);
  }
  return new WechatPayError(text, response.status, code);
}

/** An error reply's `{code, message}`, also when the call asked for a stream. */
async function errorBody(data: unknown): Promise<{ code?: unknown; message?: unknown } | null> {
  let value = data;
  if (value && typeof (value as Readable).pipe === 'function') {
    let text = '';
    try {
      for await (const chunk of value as Readable) {
        text += chunk;
        if (text.length > 4_096) break;
      }
      value = JSON.parse(text);
    } catch {
      return null;
    }
  }
  return value && typeof value === 'object' ? (value as { code?: unknown; message?: unknown }) : null;
}

function checkOutTradeNo(orderId: string): void {
  if (!OUT_TRADE_NO.test(orderId)) {
    throw new ProviderReplyError(`${JSON.stringify(orderId)} cannot be a WeChat Pay out_trade_no`);
  }
}

function checkOutRefundNo(outRequestNo: string): void {
  if (!OUT_REFUND_NO.test(outRequestNo)) {
    throw new ProviderReplyError(`${JSON.stringify(outRequestNo)} cannot be a WeChat Pay out_refund_no`);
  }
}

function notFound(orderId: string): TradeSnapshot {
  return { orderId, status: 'NOT_FOUND', tradeNo: null, amount: null, currency: null, paidAt: null };
}

const fen = z.number().int().nonnegative();
const instant = z.iso.datetime({ offset: true });

const transactionSchema = z.object({
  trade_state: z.string(),
  transaction_id: z.string().min(1).max(64).optional(),
  success_time: instant.optional(),
  amount: z
    .object({
      total: fen.optional(),
      currency: z
        .string()
        .regex(/^[A-Z]{3}$/)
        .optional(),
    })
    .optional(),
});

function toTradeSnapshot(orderId: string, what: string, body: unknown): TradeSnapshot {
  const parsed = transactionSchema.safeParse(body);
  if (!parsed.success) {
    throw new ProviderReplyError(`WeChat Pay answered ${what} with an unreadable transaction`);
  }
  const trade = parsed.data;
  const status = TRADE_STATES[trade.trade_state];
  if (!status) {
    throw new ProviderReplyError(
      `WeChat Pay answered ${what} with an unknown trade_state ${JSON.stringify(trade.trade_state)}`,
    );
  }
  const paid = status === 'TRADE_SUCCESS';
  if (paid) {
    // A paid trade pays an order: it must say which trade, how much, in what and when.
    const missing = (
      [
        ['transaction_id', trade.transaction_id],
        ['amount.total', trade.amount?.total],
        ['amount.currency', trade.amount?.currency],
        ['success_time', trade.success_time],
      ] as const
    )
      .filter(([, value]) => value === undefined)
      .map(([name]) => name);
    if (missing.length > 0) {
      throw new ProviderReplyError(
        `WeChat Pay answered ${what} with a ${trade.trade_state} trade without ${missing.join(', ')}`,
      );
    }
  }
  return {
    orderId,
    status,
    tradeNo: trade.transaction_id ?? null,
    amount: paid ? (trade.amount?.total ?? null) : null,
    currency: paid ? (trade.amount?.currency ?? null) : null,
    paidAt: paid ? (trade.success_time ?? null) : null,
  };
}

const refundSchema = z.object({
  refund_id: z.string().min(1).max(64),
  out_refund_no: z.string(),
  status: z.string(),
  amount: z.object({ refund: fen }),
});

function toRefundSnapshot(outRequestNo: string, what: string, body: unknown): RefundSnapshot {
  const parsed = refundSchema.safeParse(body);
  if (!parsed.success) {
    throw new ProviderReplyError(`WeChat Pay answered ${what} with an unreadable refund`);
  }
  const refund = parsed.data;
  if (refund.out_refund_no !== outRequestNo) {
    throw new ProviderReplyError(`WeChat Pay answered ${what} with refund ${refund.out_refund_no}`);
  }
  const status = REFUND_STATES[refund.status];
  if (!status) {
    throw new ProviderReplyError(
      `WeChat Pay answered ${what} with an unknown refund status ${JSON.stringify(refund.status)}`,
    );
  }
  return {
    outRequestNo,
    status,
    refundNo: refund.refund_id,
    amount: refund.amount.refund,
    failureReason: status === 'FAILED' ? `WeChat Pay closed the refund (${refund.status})` : null,
  };
}

const billLocationSchema = z.object({
  hash_type: z.literal('SHA1'),
  hash_value: z.string().regex(/^[0-9a-fA-F]{40}$/),
  download_url: z.string().min(1),
});
