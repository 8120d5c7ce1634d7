import {
  createHash,
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomInt,
} from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import {
  applyBillFaults,
  type WechatBillFaults,
  type WechatBillPayment,
  wechatBillFaultsSchema,
} from './bill-faults';
import { WechatNotifier, type WechatNotifyAttempt, type WechatNotifyFaults } from './notifier';

/**
 * A fake WeChat Pay API v3, written from the published protocol with Node's crypto only (it imports
 * nothing of payrecon's adapter nor of wechatpay-axios-plugin, so a mistake on one side cannot hide in
 * the other). In memory; for tests on loopback.
 *
 * - Every /v3/ request must carry the merchant's `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,
 *   nonce_str=…,signature=…,timestamp=…,serial_no=…`, an RSA-SHA256 signature of
 *   `METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n` by the merchant's key: else 401 SIGN_ERROR.
 * - Every reply it can sign is signed with the key pair it made at start: Wechatpay-Timestamp,
 *   -Nonce, -Signature over `TIMESTAMP\nNONCE\nBODY\n`, and -Serial, its public key id PUB_KEY_ID_….
 * - Native orders, query and close by out_trade_no, refunds and refund query by out_refund_no, the
 *   trade bill (`bill_type=ALL`, GZIP) behind a download URL that lives 30 s, with the SHA1 of the
 *   unzipped file. The bill file itself is not signed (as at WeChat).
 * - /fake/… is the rig's control, unsigned: pay a trade or set any trade_state, settle a refund, and
 *   the fault knobs (SYSTEM_ERROR replies, hanging replies, replies signed with another key, a bill
 *   whose declared hash is wrong, a shorter download URL life, a day's bill faults: bill-faults.ts);
 *   GET /fake/calls lists every API call it answered (the bill's location and download included).
 * - With the merchant's APIv3 key (`apiV3Key`), a trade paid through the control (or a refund settled)
 *   sends an encrypted, signed notification to its notify_url on WeChat's ladder (notifier.ts), with the
 *   knobs drop, duplicate, forge, replayOldTimestamp and probe; GET /fake/notifications lists every POST.
 */

export interface FakeWechatPayOptions {
  mchId: string;
  appId: string;
  /** The merchant API certificate's serial number, as the merchant puts it in serial_no. */
  merchantCertSerial: string;
  /** The merchant's public key (its certificate's), PEM or KeyObject. */
  merchantPublicKey: string | KeyObject;
  host?: string;
  port?: number;
  /** The origin its download URLs name, when clients reach it through a proxy; default its own. */
  publicUrl?: string;
  /** WeChat Pay's own key pair (a test that signs as WeChat holds it); default one made at start. */
  wechatpayKeys?: { privateKey: KeyObject; publicKey: KeyObject };
  /** The merchant's APIv3 key (32 characters): without it the fake sends no notifications. */
  apiV3Key?: string;
  /** The waits between a notification's attempts; default WeChat's. Tests shorten it. */
  notifyLadderMs?: readonly number[];
  /** Every notification from now on (a payment or refund may override). */
  notify?: WechatNotifyFaults;
}

export interface FakeWechatPayFaults {
  /** The next n API calls answer 500 SYSTEM_ERROR. */
  systemError: number;
  /** The next n API calls get no answer for hangMs (then the socket is dropped). */
  timeout: number;
  hangMs: number;
  /** The next n replies are signed with a key that is not the one handed out (same serial). */
  rogueSignature: number;
  /** The next n bill locations declare a SHA1 that is not the file's. */
  badBillHash: number;
  /** How long a bill's download URL lives. */
  billUrlTtlMs: number;
}

/** An API call the fake answered (a request the merchant did not sign is not one). */
export interface FakeWechatPayCall {
  /** `GET /v3/bill/tradebill`, `GET /v3/billdownload/file`, … */
  call: string;
  status: number;
  /** The bill's day, for the bill's location and its download. */
  billDate: string | null;
}

export interface FakeWechatPay {
  url: string;
  /** The WeChat Pay public key, as a merchant downloads it from the merchant platform. */
  publicKeyPem: string;
  publicKeyId: string;
  /** Every notification POST so far, oldest first. */
  notifications(): WechatNotifyAttempt[];
  close(): Promise<void>;
}

interface Trade {
  outTradeNo: string;
  appid: string;
  description: string;
  notifyUrl: string;
  total: number;
  currency: string;
  state: string;
  codeUrl: string;
  transactionId: string | null;
  successTime: Date | null;
  openid: string;
}

interface Refund {
  outRefundNo: string;
  refundId: string;
  outTradeNo: string;
  transactionId: string;
  refund: number;
  total: number;
  currency: string;
  status: string;
  reason: string | null;
  createTime: Date;
  successTime: Date | null;
}

const SHANGHAI_OFFSET_MS = 8 * 3_600_000;
/** WeChat Pay refuses a merchant request signed longer ago than this. */
const REQUEST_CLOCK_SKEW_S = 300;

export const TRADE_STATES = ['SUCCESS', 'REFUND', 'NOTPAY', 'CLOSED', 'REVOKED', 'USERPAYING', 'PAYERROR'];
export const REFUND_STATUSES = ['SUCCESS', 'CLOSED', 'PROCESSING', 'ABNORMAL'];

class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    /** false for the replies WeChat cannot sign (it could not verify the merchant) and the bill file. */
    readonly signed = true,
  ) {}
}

const error = (status: number, code: string, message: string) => new Reply(status, { code, message });

export async function startFakeWechatPay(options: FakeWechatPayOptions): Promise<FakeWechatPay> {
  const merchantKey =
    typeof options.merchantPublicKey === 'string'
      ? createPublicKey(options.merchantPublicKey)
      : options.merchantPublicKey;
  const own = options.wechatpayKeys ?? generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rogue = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyId = `PUB_KEY_ID_0114${randomDigits(28)}`;
  const trades = new Map<string, Trade>();
  const refunds = new Map<string, Refund>();
  const bills = new Map<string, { billDate: string; gzip: Buffer; expiresAt: number }>();
  const billFaults = new Map<string, WechatBillFaults>();
  const calls: FakeWechatPayCall[] = [];
  const faults: FakeWechatPayFaults = {
    systemError: 0,
    timeout: 0,
    hangMs: 10_000,
    rogueSignature: 0,
    badBillHash: 0,
    billUrlTtlMs: 30_000,
  };
  let baseUrl = '';
  const notifier = new WechatNotifier({
    key: own.privateKey,
    keyId: publicKeyId,
    otherKey: rogue.privateKey,
    apiV3Key: options.apiV3Key ?? '',
    ladderMs: options.notifyLadderMs,
  });
  const notify = (
    url: string,
    eventType: string,
    summary: string,
    plain: { out_trade_no: string } & Record<string, unknown>,
    override: unknown,
  ) => {
    if (!options.apiV3Key) return;
    const faults = { ...options.notify, ...(override as WechatNotifyFaults | undefined) };
    notifier.send(url, eventType, summary, plain, faults);
  };

  const send = (res: ServerResponse, reply: Reply) => {
    const isFile = Buffer.isBuffer(reply.body);
    const body = isFile
      ? (reply.body as Buffer)
      : reply.body === undefined
        ? Buffer.alloc(0)
        : Buffer.from(JSON.stringify(reply.body));
    const headers: Record<string, string> = {
      'Content-Type': isFile ? 'application/octet-stream' : 'application/json',
      'Request-ID': randomBytes(16).toString('hex'),
    };
    if (reply.signed) {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = randomBytes(16).toString('hex');
      const key = faults.rogueSignature > 0 ? rogue.privateKey : own.privateKey;
      if (faults.rogueSignature > 0) faults.rogueSignature--;
      const signer = createSign('RSA-SHA256');
      signer.update(`${timestamp}\n${nonce}\n${body.toString('utf8')}\n`);
      Object.assign(headers, {
        'Wechatpay-Timestamp': timestamp,
        'Wechatpay-Nonce': nonce,
        'Wechatpay-Serial': publicKeyId,
        'Wechatpay-Signature': signer.sign(key, 'base64'),
      });
    }
    res.writeHead(reply.status, headers).end(body);
  };

  /** The merchant's Authorization header, checked as WeChat Pay checks it. */
  const verifyMerchant = (req: IncomingMessage, body: string): string | null => {
    const header = req.headers.authorization ?? '';
    const scheme = 'WECHATPAY2-SHA256-RSA2048 ';
    if (!header.startsWith(scheme)) return 'Authorization is not WECHATPAY2-SHA256-RSA2048';
    const fields = new Map(
      [...header.slice(scheme.length).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]] as const),
    );
    const [mchid, nonce, signature, timestamp, serial] = [
      'mchid',
      'nonce_str',
      'signature',
      'timestamp',
      'serial_no',
    ].map((name) => fields.get(name));
    if (!mchid || !nonce || !signature || !timestamp || !serial) return 'Authorization lacks a field';
    if (mchid !== options.mchId) return 'mchid is not this merchant';
    if (serial.toUpperCase() !== options.merchantCertSerial.toUpperCase()) return 'serial_no is unknown';
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > REQUEST_CLOCK_SKEW_S)
      return 'timestamp too far off';
    const verifier = createVerify('RSA-SHA256');
    verifier.update(`${req.method}\n${req.url}\n${timestamp}\n${nonce}\n${body}\n`);
    return verifier.verify(merchantKey, signature, 'base64') ? null : 'signature does not verify';
  };

  // --- the API ----------------------------------------------------------------------------------------

  const api = (method: string, url: URL, body: string): Reply => {
    const json = (): Record<string, unknown> | null => {
      try {
        const value = JSON.parse(body) as unknown;
        return value && typeof value === 'object' ? (value as Record<string, unknown>) : null;
      } catch {
        return null;
      }
    };
    const path = url.pathname;
    let match: RegExpExecArray | null;
    if (method === 'POST' && path === '/v3/pay/transactions/native') return nativeOrder(json());
    match = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)$/.exec(path);
    if (method === 'GET' && match) {
      if (url.searchParams.get('mchid') !== options.mchId) return error(400, 'PARAM_ERROR', 'mchid 不正确');
      const trade = trades.get(decodeURIComponent(match[1] as string));
      return trade ? new Reply(200, transaction(trade)) : error(404, 'ORDER_NOT_EXIST', '订单不存在');
    }
    match = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)\/close$/.exec(path);
    if (method === 'POST' && match) return closeOrder(decodeURIComponent(match[1] as string), json());
    if (method === 'POST' && path === '/v3/refund/domestic/refunds') return createRefund(json());
    match = /^\/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(path);
    if (method === 'GET' && match) {
      const refund = refunds.get(decodeURIComponent(match[1] as string));
      return refund ? new Reply(200, refundBody(refund)) : error(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
    }
    if (method === 'GET' && path === '/v3/bill/tradebill') return tradeBill(url.searchParams);
    if (method === 'GET' && path === '/v3/billdownload/file') {
      const bill = bills.get(url.searchParams.get('token') ?? '');
      if (!bill || bill.expiresAt < Date.now()) {
        return error(400, 'INVALID_REQUEST', '下载链接已失效，请重新获取');
      }
      return new Reply(200, bill.gzip, false);
    }
    return error(404, 'NOT_FOUND', `no such API: ${method} ${path}`);
  };

  const nativeOrder = (body: Record<string, unknown> | null): Reply => {
    const amount = body?.amount as { total?: unknown; currency?: unknown } | undefined;
    const outTradeNo = body?.out_trade_no;
    if (
      !body ||
      typeof outTradeNo !== 'string' ||
      !/^[A-Za-z0-9_\-|*]{6,32}$/.test(outTradeNo) ||
      typeof body.description !== 'string' ||
      typeof body.notify_url !== 'string' ||
      typeof amount?.total !== 'number' ||
      !Number.isSafeInteger(amount.total) ||
      amount.total <= 0 ||
      (amount.currency !== undefined && amount.currency !== 'CNY')
    ) {
      return error(400, 'PARAM_ERROR', '参数错误');
    }
    if (body.mchid !== options.mchId) return error(400, 'PARAM_ERROR', 'mchid 与请求头不一致');
    if (body.appid !== options.appId) return error(400, 'APPID_MCHID_NOT_MATCH', 'appid 和 mchid 不匹配');
    const existing = trades.get(outTradeNo);
    if (existing) {
      if (existing.state === 'SUCCESS' || existing.state === 'REFUND') {
        return error(400, 'ORDERPAID', '该订单已支付');
      }
      if (existing.state === 'CLOSED') return error(400, 'ORDER_CLOSED', '订单已关闭');
      if (existing.total !== amount.total || existing.description !== body.description) {
        return error(400, 'INVALID_REQUEST', '201 商户订单号重复');
      }
      return new Reply(200, { code_url: existing.codeUrl });
    }
    const trade: Trade = {
      outTradeNo,
      appid: body.appid,
      description: body.description,
      notifyUrl: body.notify_url,
      total: amount.total,
      currency: 'CNY',
      state: 'NOTPAY',
      codeUrl: `weixin://wxpay/bizpayurl?pr=${randomBytes(6).toString('base64url')}`,
      transactionId: null,
      successTime: null,
      openid: `oFake${randomBytes(10).toString('hex')}`,
    };
    trades.set(outTradeNo, trade);
    return new Reply(200, { code_url: trade.codeUrl });
  };

  const transaction = (trade: Trade) => ({
    appid: trade.appid,
    mchid: options.mchId,
    out_trade_no: trade.outTradeNo,
    trade_type: 'NATIVE',
    trade_state: trade.state,
    trade_state_desc: trade.state,
    ...(trade.transactionId
      ? {
          transaction_id: trade.transactionId,
          bank_type: 'OTHERS',
          success_time: wechatTime(trade.successTime as Date),
          payer: { openid: trade.openid },
          amount: {
            total: trade.total,
            payer_total: trade.total,
            currency: trade.currency,
            payer_currency: trade.currency,
          },
        }
      : { amount: { payer_currency: trade.currency } }),
  });

  const closeOrder = (outTradeNo: string, body: Record<string, unknown> | null): Reply => {
    if (body?.mchid !== options.mchId) return error(400, 'PARAM_ERROR', 'mchid 不正确');
    const trade = trades.get(outTradeNo);
    if (!trade) return error(404, 'ORDER_NOT_EXIST', '订单不存在');
    if (trade.state === 'SUCCESS' || trade.state === 'REFUND') return error(400, 'ORDERPAID', '该订单已支付');
    trade.state = 'CLOSED';
    return new Reply(204, undefined);
  };

  const createRefund = (body: Record<string, unknown> | null): Reply => {
    const amount = body?.amount as { refund?: unknown; total?: unknown; currency?: unknown } | undefined;
    const outRefundNo = body?.out_refund_no;
    if (
      !body ||
      typeof outRefundNo !== 'string' ||
      typeof body.out_trade_no !== 'string' ||
      typeof amount?.refund !== 'number' ||
      typeof amount.total !== 'number' ||
      amount.currency !== 'CNY' ||
      !Number.isSafeInteger(amount.refund) ||
      amount.refund <= 0
    ) {
      return error(400, 'PARAM_ERROR', '参数错误');
    }
    const trade = trades.get(body.out_trade_no);
    if (!trade) return error(404, 'RESOURCE_NOT_EXISTS', '订单不存在');
    const existing = refunds.get(outRefundNo);
    if (existing) {
      // One refund per out_refund_no: the same request again is answered with the same refund.
      if (existing.outTradeNo !== trade.outTradeNo || existing.refund !== amount.refund) {
        return error(400, 'INVALID_REQUEST', '退款单号重复，与原退款请求不一致');
      }
      return new Reply(200, refundBody(existing));
    }
    if (trade.state !== 'SUCCESS' && trade.state !== 'REFUND') {
      return error(400, 'INVALID_REQUEST', '订单未支付，不能退款');
    }
    if (amount.total !== trade.total) return error(400, 'PARAM_ERROR', '订单金额与原订单不一致');
    const refunded = [...refunds.values()]
      .filter((r) => r.outTradeNo === trade.outTradeNo && r.status !== 'CLOSED')
      .reduce((sum, r) => sum + r.refund, 0);
    if (refunded + amount.refund > trade.total)
      return error(400, 'INVALID_REQUEST', '申请退款金额超过订单可退金额');
    const refund: Refund = {
      outRefundNo,
      refundId: `50${randomDigits(27)}`,
      outTradeNo: trade.outTradeNo,
      transactionId: trade.transactionId as string,
      refund: amount.refund,
      total: trade.total,
      currency: 'CNY',
      status: 'PROCESSING',
      reason: typeof body.reason === 'string' ? body.reason : null,
      createTime: new Date(),
      successTime: null,
    };
    refunds.set(outRefundNo, refund);
    trade.state = 'REFUND';
    return new Reply(200, refundBody(refund));
  };

  const refundBody = (refund: Refund) => ({
    refund_id: refund.refundId,
    out_refund_no: refund.outRefundNo,
    transaction_id: refund.transactionId,
    out_trade_no: refund.outTradeNo,
    channel: 'ORIGINAL',
    user_received_account: '支付用户零钱',
    ...(refund.successTime ? { success_time: wechatTime(refund.successTime) } : {}),
    create_time: wechatTime(refund.createTime),
    status: refund.status,
    funds_account: 'AVAILABLE',
    amount: {
      total: refund.total,
      refund: refund.refund,
      payer_total: refund.total,
      payer_refund: refund.refund,
      settlement_refund: refund.refund,
      settlement_total: refund.total,
      discount_refund: 0,
      currency: refund.currency,
    },
  });

  const tradeBill = (params: URLSearchParams): Reply => {
    const billDate = params.get('bill_date') ?? '';
    if (!/^\d{4}-\d{2}-\d{2}$/.test(billDate) || (params.get('bill_type') ?? 'ALL') !== 'ALL') {
      return error(400, 'PARAM_ERROR', '参数错误');
    }
    if (billDate >= shanghaiDay(new Date())) return error(400, 'STATEMENT_CREATING', '账单生成中');
    const text = tradeBillText(billDate);
    if (text === null) return error(400, 'NO_STATEMENT_EXIST', '账单文件不存在');
    const sha1 = createHash('sha1').update(text).digest('hex');
    const wrong = faults.badBillHash > 0;
    if (wrong) faults.badBillHash--;
    const token = randomBytes(24).toString('hex');
    bills.set(token, {
      billDate,
      gzip: params.get('tar_type') === 'GZIP' ? gzipSync(text) : Buffer.from(text),
      expiresAt: Date.now() + faults.billUrlTtlMs,
    });
    return new Reply(200, {
      hash_type: 'SHA1',
      hash_value: wrong ? createHash('sha1').update(`${text}tampered`).digest('hex') : sha1,
      download_url: `${options.publicUrl ?? baseUrl}/v3/billdownload/file?token=${token}`,
    });
  };

  /** The bill_type=ALL file of a day: paid trades and successful refunds, then the summary. */
  const tradeBillText = (billDate: string): string | null => {
    const rows: {
      time: Date;
      fields: string[];
      total: number;
      settlement: number;
      refund: number;
      fee: number;
    }[] = [];
    const payments: WechatBillPayment[] = [];
    for (const trade of trades.values()) {
      if (!trade.successTime || shanghaiDay(trade.successTime) !== billDate) continue;
      payments.push({
        outTradeNo: trade.outTradeNo,
        transactionId: trade.transactionId as string,
        appid: trade.appid,
        openid: trade.openid,
        description: trade.description,
        currency: trade.currency,
        paidAt: trade.successTime,
        totalFen: trade.total,
      });
    }
    const faults = billFaults.get(billDate);
    for (const payment of applyBillFaults(billDate, payments, options.appId, faults)) {
      const fee = feeOf(payment.totalFen);
      rows.push({
        time: payment.paidAt,
        total: payment.totalFen,
        settlement: payment.totalFen,
        refund: 0,
        fee,
        fields: [
          billTime(payment.paidAt),
          payment.appid,
          options.mchId,
          '0',
          '',
          payment.transactionId,
          payment.outTradeNo,
          payment.openid,
          'NATIVE',
          'SUCCESS',
          'OTHERS',
          payment.currency,
          yuan(payment.totalFen),
          '0.00',
          '0',
          '0',
          '0.00',
          '0.00',
          '',
          '',
          payment.description,
          ATTACH,
          feeYuan(fee),
          '0.60%',
          yuan(payment.totalFen),
          '0.00',
          '',
        ],
      });
    }
    for (const refund of refunds.values()) {
      if (refund.status !== 'SUCCESS' || !refund.successTime) continue;
      if (shanghaiDay(refund.successTime) !== billDate) continue;
      const trade = trades.get(refund.outTradeNo) as Trade;
      const fee = -feeOf(refund.refund);
      rows.push({
        time: refund.successTime,
        total: 0,
        settlement: 0,
        refund: refund.refund,
        fee,
        fields: [
          billTime(refund.successTime),
          trade.appid,
          options.mchId,
          '0',
          '',
          refund.transactionId,
          refund.outTradeNo,
          trade.openid,
          'NATIVE',
          'REFUND',
          'OTHERS',
          refund.currency,
          '0.00',
          '0.00',
          refund.refundId,
          refund.outRefundNo,
          yuan(refund.refund),
          '0.00',
          'ORIGINAL',
          'SUCCESS',
          trade.description,
          ATTACH,
          feeYuan(fee),
          '0.60%',
          '0.00',
          yuan(refund.refund),
          '',
        ],
      });
    }
    if (rows.length === 0) return null;
    rows.sort((a, b) => a.time.getTime() - b.time.getTime());
    const sum = (key: 'total' | 'settlement' | 'refund' | 'fee') => rows.reduce((s, r) => s + r[key], 0);
    // Summary totals that do not add up (a fault): added after they are computed from the rows.
    const delta = { rows: 0, payAmount: 0, refundAmount: 0, fee: 0, ...faults?.totalsDelta };
    const line = (fields: string[]) => `\`${fields.join(',`')}`;
    return [
      BILL_HEADER,
      ...rows.map((row) => line(row.fields)),
      BILL_SUMMARY_HEADER,
      line([
        String(rows.length + delta.rows),
        yuan(sum('settlement')),
        yuan(sum('refund')),
        '0.00',
        feeYuan(sum('fee') + delta.fee),
        yuan(sum('total') + delta.payAmount),
        yuan(sum('refund') + delta.refundAmount),
      ]),
      '',
    ].join('\r\n');
  };

  // --- the rig's control ------------------------------------------------------------------------------

  const control = (method: string, path: string, body: Record<string, unknown>): Reply => {
    let match = /^\/fake\/trades\/([^/]+)\/state$/.exec(path);
    if (method === 'POST' && match) {
      const trade = trades.get(decodeURIComponent(match[1] as string));
      const state = body.trade_state;
      if (!trade) return error(404, 'ORDER_NOT_EXIST', 'no such trade');
      // Any upper-case word: WeChat's own (TRADE_STATES) and, for a test, one it might add some day.
      if (typeof state !== 'string' || !/^[A-Z_]+$/.test(state)) {
        return error(
          400,
          'PARAM_ERROR',
          `trade_state is one of ${TRADE_STATES.join(', ')} (or another word)`,
        );
      }
      const paidNow = (state === 'SUCCESS' || state === 'REFUND') && !trade.transactionId;
      if (paidNow) {
        trade.transactionId = `42${randomDigits(26)}`;
        trade.successTime = typeof body.success_time === 'string' ? new Date(body.success_time) : new Date();
      }
      trade.state = state;
      // WeChat notifies a payment once it succeeded (TRANSACTION.SUCCESS), never the other states.
      if (paidNow) {
        notify(trade.notifyUrl, 'TRANSACTION.SUCCESS', '支付成功', transaction(trade), body.notify);
      }
      return new Reply(200, transaction(trade), false);
    }
    match = /^\/fake\/refunds\/([^/]+)\/outcome$/.exec(path);
    if (method === 'POST' && match) {
      const refund = refunds.get(decodeURIComponent(match[1] as string));
      const status = body.status;
      if (!refund) return error(404, 'RESOURCE_NOT_EXISTS', 'no such refund');
      if (typeof status !== 'string' || !REFUND_STATUSES.includes(status)) {
        return error(400, 'PARAM_ERROR', `status is one of ${REFUND_STATUSES.join(', ')}`);
      }
      refund.status = status;
      if (status === 'SUCCESS') {
        refund.successTime = typeof body.success_time === 'string' ? new Date(body.success_time) : new Date();
      }
      const trade = trades.get(refund.outTradeNo);
      if (trade && status !== 'PROCESSING') {
        notify(trade.notifyUrl, `REFUND.${status}`, '退款状态变更', refundNotification(refund), body.notify);
      }
      return new Reply(200, refundBody(refund), false);
    }
    if (method === 'POST' && path === '/fake/faults') {
      for (const [name, value] of Object.entries(body)) {
        if (!(name in faults) || typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
          return error(400, 'PARAM_ERROR', `unknown fault or not a count: ${name}`);
        }
        faults[name as keyof FakeWechatPayFaults] = value;
      }
      return new Reply(200, faults, false);
    }
    if (method === 'GET' && path === '/fake/notifications') return new Reply(200, notifier.log(), false);
    if (method === 'GET' && path === '/fake/calls') return new Reply(200, calls, false);
    match = /^\/fake\/bills\/(\d{4}-\d{2}-\d{2})\/faults$/.exec(path);
    if (method === 'POST' && match) {
      const parsed = wechatBillFaultsSchema.safeParse(body);
      if (!parsed.success) return error(400, 'PARAM_ERROR', parsed.error.message);
      billFaults.set(match[1] as string, parsed.data);
      return new Reply(200, parsed.data, false);
    }
    if (method === 'GET' && path === '/fake/public-key') {
      return new Reply(200, { id: publicKeyId, pem: publicKeyPem }, false);
    }
    return error(404, 'NOT_FOUND', `no such control: ${method} ${path}`);
  };

  /** A refund notification's resource: the refund as WeChat describes it to the merchant. */
  const refundNotification = (refund: Refund) => ({
    mchid: options.mchId,
    out_trade_no: refund.outTradeNo,
    transaction_id: refund.transactionId,
    out_refund_no: refund.outRefundNo,
    refund_id: refund.refundId,
    refund_status: refund.status,
    ...(refund.successTime ? { success_time: wechatTime(refund.successTime) } : {}),
    user_received_account: '支付用户零钱',
    amount: {
      total: refund.total,
      refund: refund.refund,
      payer_total: refund.total,
      payer_refund: refund.refund,
    },
  });

  const publicKeyPem = own.publicKey.export({ type: 'spki', format: 'pem' }).toString();

  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    try {
      if (url.pathname.startsWith('/fake/')) {
        let parsed: Record<string, unknown> = {};
        if (body) parsed = JSON.parse(body) as Record<string, unknown>;
        send(res, control(method, url.pathname, parsed));
        return;
      }
      const refused = verifyMerchant(req, body);
      // WeChat cannot sign a reply to a merchant it could not verify.
      if (refused)
        return send(res, new Reply(401, { code: 'SIGN_ERROR', message: `签名错误: ${refused}` }, false));
      if (faults.timeout > 0) {
        faults.timeout--;
        setTimeout(() => res.destroy(), faults.hangMs).unref();
        return;
      }
      if (faults.systemError > 0) {
        faults.systemError--;
        return send(res, error(500, 'SYSTEM_ERROR', '系统错误'));
      }
      const reply = api(method, url, body);
      const token = url.searchParams.get('token');
      calls.push({
        call: `${method} ${url.pathname}`,
        status: reply.status,
        billDate: url.searchParams.get('bill_date') ?? (token ? (bills.get(token)?.billDate ?? null) : null),
      });
      send(res, reply);
    } catch (failure) {
      send(res, error(500, 'SYSTEM_ERROR', `fake: ${(failure as Error).message}`));
    }
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const address = server.address() as AddressInfo;
  baseUrl = `http://${address.address}:${address.port}`;
  return {
    url: baseUrl,
    publicKeyPem,
    publicKeyId,
    notifications: () => notifier.log(),
    close: async () => {
      await notifier.close();
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

/** The rig's handle on a fake WeChat Pay over HTTP: what a buyer, WeChat's back office and a test do. */
export class FakeWechatPayControl {
  constructor(private readonly url: string) {}

  /** Sets a trade's trade_state; SUCCESS pays it, at `at` (the bill's day follows it), and notifies. */
  setTradeState(outTradeNo: string, tradeState: string, at?: Date, notify?: WechatNotifyFaults) {
    return this.request('POST', `/fake/trades/${encodeURIComponent(outTradeNo)}/state`, {
      trade_state: tradeState,
      ...(at ? { success_time: at.toISOString() } : {}),
      ...(notify ? { notify } : {}),
    });
  }

  /** Settles a refund (SUCCESS at `at`, CLOSED, ABNORMAL …) and notifies it. */
  settleRefund(outRefundNo: string, status: string, at?: Date) {
    return this.request('POST', `/fake/refunds/${encodeURIComponent(outRefundNo)}/outcome`, {
      status,
      ...(at ? { success_time: at.toISOString() } : {}),
    });
  }

  setFaults(faults: Partial<FakeWechatPayFaults>) {
    return this.request('POST', '/fake/faults', faults);
  }

  /** Replaces the faults of a day's bill (`{}`: none); they change what the bill says, never the trades. */
  setBillFaults(billDate: string, faults: WechatBillFaults) {
    return this.request('POST', `/fake/bills/${billDate}/faults`, faults);
  }

  /** Every API call answered so far, oldest first. */
  async calls(): Promise<FakeWechatPayCall[]> {
    return (await this.request('GET', '/fake/calls')) as FakeWechatPayCall[];
  }

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.url}${path}`, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`fake WeChat Pay ${path}: HTTP ${response.status} ${text}`);
    return JSON.parse(text);
  }
}

const BILL_HEADER =
  '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,' +
  '应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,' +
  '手续费,费率,订单金额,申请退款金额,费率备注';
const BILL_SUMMARY_HEADER =
  '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额';
/** A merchant's attach as shops write it: JSON, commas included, which a plain CSV split would cut. */
const ATTACH = '{"shop":"payrecon","channel":"native"}';

/** 0.6 %, rounded half up to the fen. */
function feeOf(fen: number): number {
  return Math.floor((fen * 6 + 500) / 1000);
}

/** 1234 → "12.34", -27 → "-0.27". */
function yuan(fen: number): string {
  const abs = Math.abs(fen);
  return `${fen < 0 ? '-' : ''}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Fees are printed with five decimals: 32 → "0.32000". */
function feeYuan(fen: number): string {
  return `${yuan(fen)}000`;
}

function shanghaiDay(instant: Date): string {
  return new Date(instant.getTime() + SHANGHAI_OFFSET_MS).toISOString().slice(0, 10);
}

function billTime(instant: Date): string {
  return new Date(instant.getTime() + SHANGHAI_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

/** RFC 3339 in Beijing time, as WeChat writes it: 2026-03-01T10:00:00+08:00. */
function wechatTime(instant: Date): string {
  return `${new Date(instant.getTime() + SHANGHAI_OFFSET_MS).toISOString().slice(0, 19)}+08:00`;
}

function randomDigits(n: number): string {
  return Array.from({ length: n }, () => randomInt(10)).join('');
}
