import type { Readable } from 'node:stream';
import type { AlipaySdk } from 'alipay-sdk';
import type { RefundSnapshot, TradeSnapshot } from '../../domain';
import { isTradeStatus } from '../../domain';
import { downloadStatementFile } from '../download';
import {
  type PaymentGateway,
  ProviderReplyError,
  ProviderUnavailableError,
  type RefundRequest,
  StatementNotReadyError,
  type TradeRequest,
} from '../gateway';
import { StatementFormatError } from '../statement';
import { isBillDate, parseBillTime, type StatementFormat, type StatementLocation } from '../statement-format';
import { readAlipayTradeBill } from './bill';
import { fenToYuan, yuanToFen } from './yuan';

export interface AlipayGatewayOptions {
  appId: string;
  /** The app's RSA2 private key, PEM (PKCS#8). */
  privateKey: string;
  /** Alipay's RSA2 public key, PEM (SPKI): every reply's signature is checked with it. */
  alipayPublicKey: string;
  /** The v3 OpenAPI endpoint, e.g. https://openapi.alipay.com. */
  endpoint: string;
  /** Per request; the activity's own timeout bounds the whole call. */
  timeoutMs?: number;
  /** How long the buyer may pay: the QR code stops working then, so a closed order cannot be paid later. */
  payDeadlineMs?: number;
  /** The precreate's notify_url: where Alipay POSTs the trade's notifications (workers/receiver.ts). */
  notifyUrl?: string;
}

/**
 * The SDK, loaded on first use: it and its HTTP client (urllib, undici) would otherwise load in every
 * process that merely can choose a gateway, the CLI's --help included.
 */
const sdkModule = (): typeof import('alipay-sdk') => require('alipay-sdk');

/** The bill's download URL lives 30 s (Alipay's bill download URL query). */
const BILL_URL_LIFETIME_MS = 30_000;

/** Alipay answers these when it failed on its side: asking again may pass. */
const SYSTEM_ERRORS = new Set([
  'ACQ.SYSTEM_ERROR',
  'SYSTEM_ERROR',
  'isp.unknow-error',
  'aop.ACQ.SYSTEM_ERROR',
]);
/** The SDK's own codes for a reply whose signature did not verify: not Alipay, or not the configured key. */
const FORGED_REPLIES = new Set(['response-signature-verify-error', 'response-alipay-sn-verify-error']);
/** The bill of a day Alipay has not produced yet (T+1, around 09:00 Asia/Shanghai). */
const BILL_NOT_READY = new Set(['isp.bill_not_exist', 'BILL_NOT_EXIST', 'ACQ.BILL_NOT_EXIST']);

/** A business refusal Alipay signed: each call decides which ones it expects. */
class BusinessError {
  constructor(
    readonly code: string,
    readonly message: string,
  ) {}
}

/**
 * PaymentGateway on Alipay's v3 OpenAPI, through the official SDK (`alipay-sdk`, `curl()`): the SDK signs
 * each request with the app's key and verifies each reply with Alipay's. An order is an Alipay trade with
 * `out_trade_no` = the order id; a refund is identified by `out_request_no`.
 */
export class AlipayPaymentGateway implements PaymentGateway {
  private readonly sdk: AlipaySdk;
  private readonly endpoint: string;
  private readonly timeoutMs: number;
  private readonly payDeadlineMs: number | undefined;
  private readonly notifyUrl: string | undefined;

  constructor(options: AlipayGatewayOptions) {
    this.endpoint = options.endpoint.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.payDeadlineMs = options.payDeadlineMs;
    this.notifyUrl = options.notifyUrl;
    this.sdk = new (sdkModule().AlipaySdk)({
      appId: options.appId,
      privateKey: options.privateKey,
      keyType: 'PKCS8',
      alipayPublicKey: options.alipayPublicKey,
      endpoint: this.endpoint,
      timeout: this.timeoutMs,
      // The replies' snake_case is what the docs and the fields below name.
      camelcase: false,
    });
  }

  /** Trade precreate: Alipay answers a QR code; the trade itself exists once the buyer scans it. */
  async openTrade(request: TradeRequest): Promise<TradeSnapshot> {
    if (request.currency !== 'CNY') {
      throw new ProviderReplyError(`Alipay trades are in CNY only, not ${request.currency}`);
    }
    const body: Record<string, string> = {
      out_trade_no: request.orderId,
      total_amount: fenToYuan(request.amount),
      subject: `Order ${request.orderId}`,
      product_code: 'FACE_TO_FACE_PAYMENT',
    };
    if (this.notifyUrl) body.notify_url = this.notifyUrl;
    if (this.payDeadlineMs) body.timeout_express = `${Math.max(1, Math.ceil(this.payDeadlineMs / 60_000))}m`;
    const reply = await this.call('trade precreate', '/v3/alipay/trade/precreate', body);
    if (reply instanceof BusinessError) {
      // Opened before and paid or closed since: say what the trade is now.
      if (reply.code === 'ACQ.TRADE_HAS_SUCCESS' || reply.code === 'ACQ.TRADE_HAS_CLOSE') {
        return this.queryTrade(request.orderId);
      }
      throw refused('trade precreate', reply);
    }
    const qrCode = stringField(reply, 'qr_code');
    if (!qrCode) throw unreadable('trade precreate', 'no qr_code', reply);
    return {
      orderId: request.orderId,
      status: 'WAIT_BUYER_PAY',
      tradeNo: null,
      amount: request.amount,
      currency: 'CNY',
      paidAt: null,
      payCode: qrCode,
    };
  }

  async queryTrade(orderId: string): Promise<TradeSnapshot> {
    const reply = await this.call('trade query', '/v3/alipay/trade/query', { out_trade_no: orderId });
    if (reply instanceof BusinessError) {
      // A precreated trade nobody scanned yet, or no trade at all: the buyer never reached the pay page.
      if (reply.code === 'ACQ.TRADE_NOT_EXIST') return notFound(orderId);
      throw refused('trade query', reply);
    }
    return toTradeSnapshot(orderId, reply);
  }

  async closeTrade(orderId: string): Promise<TradeSnapshot> {
    const reply = await this.call('trade close', '/v3/alipay/trade/close', { out_trade_no: orderId });
    if (reply instanceof BusinessError) {
      // Nothing was scanned: there is no trade to close (the QR code expires with timeout_express).
      if (reply.code === 'ACQ.TRADE_NOT_EXIST') return notFound(orderId);
      // Paid (or closed already) meanwhile: the trade's own status says which.
      if (reply.code === 'ACQ.TRADE_STATUS_ERROR') return this.queryTrade(orderId);
      throw refused('trade close', reply);
    }
    return {
      orderId,
      status: 'TRADE_CLOSED',
      tradeNo: stringField(reply, 'trade_no'),
      amount: null,
      currency: 'CNY',
      paidAt: null,
    };
  }

  /**
   * Trade refund. The same out_request_no again refunds nothing more: Alipay answers fund_change=N, which
   * also means "not (yet) refunded by this call", so the refund query says what became of it.
   */
  async submitRefund(request: RefundRequest): Promise<RefundSnapshot> {
    const body: Record<string, string> = {
      out_trade_no: request.orderId,
      out_request_no: request.outRequestNo,
      refund_amount: fenToYuan(request.amount),
    };
    if (request.reason) body.refund_reason = request.reason;
    const reply = await this.call('trade refund', '/v3/alipay/trade/refund', body);
    if (reply instanceof BusinessError) throw refused('trade refund', reply);
    const fundChange = stringField(reply, 'fund_change');
    if (fundChange === 'Y') {
      return {
        outRequestNo: request.outRequestNo,
        status: 'SUCCESS',
        refundNo: null,
        amount: request.amount,
        failureReason: null,
      };
    }
    if (fundChange !== 'N')
      throw unreadable('trade refund', `fund_change ${JSON.stringify(fundChange)}`, reply);
    return this.queryRefund(request.orderId, request.outRequestNo);
  }

  /** Fastpay refund query: refund_status is REFUND_SUCCESS once refunded, and absent until then. */
  async queryRefund(orderId: string, outRequestNo: string): Promise<RefundSnapshot> {
    const reply = await this.call('refund query', '/v3/alipay/trade/fastpay/refund/query', {
      out_trade_no: orderId,
      out_request_no: outRequestNo,
    });
    const none: RefundSnapshot = {
      outRequestNo,
      status: 'NOT_FOUND',
      refundNo: null,
      amount: null,
      failureReason: null,
    };
    if (reply instanceof BusinessError) {
      if (reply.code === 'ACQ.TRADE_NOT_EXIST') return none;
      throw refused('refund query', reply);
    }
    const status = reply.refund_status;
    if (status === undefined || status === null || status === '') {
      // Alipay echoes the request number only for a refund it has; without one it never got it.
      return stringField(reply, 'out_request_no') === outRequestNo ? { ...none, status: 'PROCESSING' } : none;
    }
    if (status !== 'REFUND_SUCCESS')
      throw unreadable('refund query', `refund_status ${JSON.stringify(status)}`, reply);
    return {
      outRequestNo,
      status: 'SUCCESS',
      refundNo: null,
      amount: amountField('refund query', reply, 'refund_amount'),
      failureReason: null,
    };
  }

  async statementLocation(billDate: string): Promise<StatementLocation> {
    if (!isBillDate(billDate)) throw new ProviderReplyError(`not a bill date (YYYY-MM-DD): ${billDate}`);
    const reply = await this.call(
      'bill download URL query',
      '/v3/alipay/data/dataservice/bill/downloadurl/query',
      {
        bill_type: 'trade',
        bill_date: billDate,
      },
    );
    if (reply instanceof BusinessError) {
      if (BILL_NOT_READY.has(reply.code)) {
        throw new StatementNotReadyError(
          `Alipay's trade bill of ${billDate} is not ready yet (${reply.code})`,
        );
      }
      throw refused('bill download URL query', reply);
    }
    const downloadUrl = stringField(reply, 'bill_download_url');
    if (!downloadUrl) throw unreadable('bill download URL query', 'no bill_download_url', reply);
    return {
      billDate,
      downloadUrl,
      expiresAt: new Date(Date.now() + BILL_URL_LIFETIME_MS).toISOString(),
      format: { encoding: 'gbk', zipped: true },
    };
  }

  /** A plain GET: the URL carries its own token, no signature. */
  async downloadStatement(location: StatementLocation): Promise<Readable> {
    return downloadStatementFile(location, this.timeoutMs, `Alipay's ${location.billDate} bill`);
  }

  readStatement(file: Readable, format: StatementFormat) {
    if (format.encoding !== 'gbk' || !format.zipped) {
      throw new StatementFormatError(
        `Alipay's trade bill is a zip of GBK files, not ${JSON.stringify(format)}`,
      );
    }
    return readAlipayTradeBill(file);
  }

  /**
   * One v3 call. Answers the reply's JSON, or the business refusal Alipay signed; throws what a retry may
   * fix (ProviderUnavailableError) apart from what it cannot (ProviderReplyError).
   */
  private async call(
    what: string,
    path: string,
    params: Record<string, string>,
  ): Promise<Record<string, unknown> | BusinessError> {
    const isGet = path.endsWith('/downloadurl/query');
    let data: unknown;
    try {
      ({ data } = await this.sdk.curl(
        isGet ? 'GET' : 'POST',
        path,
        isGet ? { query: params } : { body: params },
      ));
    } catch (error) {
      return classify(what, this.endpoint, error);
    }
    if (typeof data !== 'object' || data === null) throw unreadable(what, 'not a JSON object', data);
    return data as Record<string, unknown>;
  }
}

function classify(what: string, endpoint: string, error: unknown): BusinessError {
  if (error instanceof sdkModule().AlipayRequestError) {
    const code = error.code ?? '';
    const status = error.responseHttpStatus;
    if (FORGED_REPLIES.has(code)) {
      throw new ProviderReplyError(`Alipay's reply to ${what} failed its signature check (${code})`);
    }
    if (status === undefined) {
      // No answer at all: refused connection, reset, timeout.
      throw new ProviderUnavailableError(`Alipay at ${endpoint} did not answer ${what}: ${error.message}`);
    }
    if (status >= 500 || status === 429 || SYSTEM_ERRORS.has(code)) {
      throw new ProviderUnavailableError(
        `Alipay answered ${what} with HTTP ${status} ${code}: ${error.message}`,
      );
    }
    return new BusinessError(code, error.message);
  }
  if (error instanceof SyntaxError) {
    // The SDK parses an error reply as JSON before it looks at the status: an HTML page from a proxy or
    // load balancer in front of Alipay (a 502, a 504) ends here, and passes like any outage.
    throw new ProviderUnavailableError(`Alipay's reply to ${what} is not JSON: ${error.message}`);
  }
  throw error;
}

function refused(what: string, error: BusinessError): ProviderReplyError {
  return new ProviderReplyError(`Alipay refused ${what}: ${error.code || '(no code)'} ${error.message}`);
}

function unreadable(what: string, reason: string, reply: unknown): ProviderReplyError {
  return new ProviderReplyError(
    `Alipay answered ${what} with an unreadable reply (${reason}): ${JSON.stringify(reply).slice(0, 300)}`,
  );
}

function notFound(orderId: string): TradeSnapshot {
  return { orderId, status: 'NOT_FOUND', tradeNo: null, amount: null, currency: null, paidAt: null };
}

function stringField(reply: Record<string, unknown>, name: string): string | null {
  const value = reply[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

function amountField(what: string, reply: Record<string, unknown>, name: string): number {
  const value = reply[name];
  try {
    return yuanToFen(typeof value === 'string' ? value : '');
  } catch {
    throw unreadable(what, `${name} ${JSON.stringify(value)}`, reply);
  }
}

function toTradeSnapshot(orderId: string, reply: Record<string, unknown>): TradeSnapshot {
  const status = reply.trade_status;
  if (!isTradeStatus(status))
    throw unreadable('trade query', `trade_status ${JSON.stringify(status)}`, reply);
  const amount = amountField('trade query', reply, 'total_amount');
  const payDate = stringField(reply, 'send_pay_date');
  let paidAt: string | null = null;
  if (payDate) {
    try {
      paidAt = parseBillTime(payDate).toISOString();
    } catch {
      throw unreadable('trade query', `send_pay_date ${JSON.stringify(payDate)}`, reply);
    }
  }
  return {
    orderId,
    status,
    tradeNo: stringField(reply, 'trade_no'),
    amount,
    currency: 'CNY',
    paidAt,
    // Alipay closes a paid trade only once it is refunded in full; a closed trade with a pay date was paid.
    refundedAmount: status === 'TRADE_CLOSED' && paidAt ? amount : null,
  };
}
