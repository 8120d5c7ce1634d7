import {
  createPublicKey,
  createSign,
  createVerify,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  randomUUID,
} from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BillPayment, type BillRefund, shanghaiTime, tradeBillZip, yuan } from './bill';
import { type AlipayBillFaults, alipayBillFaultsSchema, applyBillFaults, feeOf } from './bill-faults';
import { AlipayNotifier, type NotifyAttempt, type NotifyFaults, newNotifyId } from './notifier';

/**
 * A fake Alipay: the v3 OpenAPI calls payrecon makes, written from Alipay's published protocol with
 * Node's crypto only (never the adapter, never alipay-sdk), so a signing bug on one side cannot hide in
 * the other. It makes its own RSA key pair at start; verifies each request's
 *
 *   authorization: ALIPAY-SHA256withRSA app_id=…,nonce=…,timestamp=…,sign=…
 *
 * over `<auth string>\n<METHOD>\n<path and query>\n<body>\n[<app auth token>\n]` with the merchant's public
 * key, and refuses (401) a bad one; signs every reply (alipay-timestamp, alipay-nonce, alipay-signature
 * over `<timestamp>\n<nonce>\n<body>\n`). Trades, refunds and bill URLs live in memory. Business errors
 * answer HTTP 400 with `{code, message}`, as v3 does.
 *
 * The rig drives it through `/__fake/…` (no signature): scan and pay a trade, move its clock, set faults
 * (a day's bill faults too: bill-faults.ts), read a trade with its refunds, every OpenAPI call it
 * answered (/__fake/calls) and the notifications it sent (/__fake/notifications).
 *
 * A payment and a refund send an RSA2-signed `trade_status_sync` notification to the trade's notify_url
 * (the precreate's, else `notifyUrl`), again on Alipay's ladder until the answer is `success`
 * (notifier.ts); none when neither names one, as Alipay sends none.
 */

export interface FakeAlipayFaults {
  /** The next N OpenAPI calls answer ACQ.SYSTEM_ERROR, with this HTTP status (default 500). */
  systemErrors?: number;
  systemErrorStatus?: number;
  /** Every OpenAPI reply waits this long first: longer than the client's timeout is a timeout. */
  delayMs?: number;
  /** Replies are signed with a key that is not this Alipay's: a forged reply. */
  signWithOtherKey?: boolean;
  /**
   * The next N OpenAPI calls are carried out and their reply lost (the connection cut before it is
   * written): the merchant cannot tell whether a refund was taken, and asks again.
   */
  loseReplies?: number;
  /** Every notification from now on: dropped, duplicated, delayed, forged (a payment may override). */
  notify?: NotifyFaults;
}

export interface FakeAlipayOptions {
  appId: string;
  /** The merchant's app public key (PEM): what the app uploaded to the open platform. */
  merchantPublicKey: string;
  host?: string;
  port?: number;
  /** The merchant's partner id (2088…), printed on the bill and the notifications' seller_id. */
  pid?: string;
  /** This Alipay's private key; default a pair of its own, made at start. Tests that sign as Alipay pass one. */
  alipayPrivateKey?: KeyObject;
  /** Where notifications go for a trade whose precreate named no notify_url. */
  notifyUrl?: string;
  /** The waits between a notification's attempts; default Alipay's (4m, 10m, 10m, 1h, 2h, 6h, 15h). */
  notifyLadderMs?: readonly number[];
}

export interface FakeAlipay {
  url: string;
  /** This Alipay's public key (PEM): what the merchant configures as ALIPAY_PUBLIC_KEY_FILE. */
  alipayPublicKey: string;
  /** Requests refused for their signature, for tests to see. */
  refusedSignatures(): number;
  /** Every notification POST so far, oldest first. */
  notifications(): NotifyAttempt[];
  close(): Promise<void>;
}

type TradeState = 'PRECREATED' | 'WAIT_BUYER_PAY' | 'TRADE_SUCCESS' | 'TRADE_FINISHED' | 'TRADE_CLOSED';

interface Trade {
  outTradeNo: string;
  tradeNo: string;
  totalFen: number;
  subject: string;
  qrCode: string;
  state: TradeState;
  createdAt: Date;
  paidAt: Date | null;
  refundedFen: number;
  notifyUrl: string | null;
}

interface Refund {
  outTradeNo: string;
  outRequestNo: string;
  amountFen: number;
  at: Date;
}

/** One OpenAPI call the fake answered (or whose reply it lost), for the rig to assert on. */
export interface FakeAlipayCall {
  /** `POST /v3/alipay/trade/close`, … */
  call: string;
  outTradeNo: string | null;
  outRequestNo: string | null;
  /** The HTTP status answered; null when the reply was lost. */
  status: number | null;
  /** The business error's code, when the call answered one. */
  code: string | null;
}

/** A trade as the fake holds it, with its refunds (GET-like POST /__fake/trades/:outTradeNo). */
export interface FakeAlipayTrade {
  outTradeNo: string;
  tradeNo: string;
  state: TradeState;
  totalFen: number;
  refundedFen: number;
  refunds: { outRequestNo: string; amountFen: number; at: string }[];
}

class AlipayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const AUTH_SCHEME = 'ALIPAY-SHA256withRSA ';
/** How far a request's timestamp may be from now before it counts as a replay. */
const CLOCK_SKEW_MS = 5 * 60_000;
const BILL_URL_LIFETIME_MS = 30_000;
const YUAN = /^(\d{1,9})(?:\.(\d{1,2}))?$/;

export async function startFakeAlipay(options: FakeAlipayOptions): Promise<FakeAlipay> {
  const own = options.alipayPrivateKey
    ? { privateKey: options.alipayPrivateKey, publicKey: createPublicKey(options.alipayPrivateKey) }
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const merchantKey = options.merchantPublicKey;
  const pid = options.pid ?? '208800000000';
  const trades = new Map<string, Trade>();
  const refunds = new Map<string, Refund>();
  const bills = new Map<string, { zip: Uint8Array; expiresAt: number }>();
  const billFaults = new Map<string, AlipayBillFaults>();
  const calls: FakeAlipayCall[] = [];
  let faults: FakeAlipayFaults = {};
  let clockOffsetMs = 0;
  let refused = 0;
  let sequence = 0;
  const now = () => new Date(Date.now() + clockOffsetMs);
  const notifier = new AlipayNotifier({
    key: own.privateKey,
    otherKey: other.privateKey,
    ladderMs: options.notifyLadderMs,
  });

  /** A trade_status_sync notification about `trade`, plus `extra` (a refund's fields). */
  const notify = (trade: Trade, extra: Record<string, string>, override?: NotifyFaults) => {
    const target = trade.notifyUrl ?? options.notifyUrl;
    if (!target) return;
    const params: Record<string, string> = {
      notify_time: shanghaiTime(now()),
      notify_type: 'trade_status_sync',
      notify_id: newNotifyId(),
      charset: 'utf-8',
      version: '1.0',
      app_id: options.appId,
      auth_app_id: options.appId,
      trade_no: trade.tradeNo,
      out_trade_no: trade.outTradeNo,
      buyer_id: '2088102177846880',
      buyer_logon_id: 'buy***@example.com',
      seller_id: pid,
      trade_status: trade.state,
      total_amount: yuan(trade.totalFen),
      receipt_amount: yuan(trade.totalFen),
      invoice_amount: yuan(trade.totalFen),
      buyer_pay_amount: yuan(trade.totalFen),
      subject: trade.subject,
      gmt_create: shanghaiTime(trade.createdAt),
      ...(trade.paidAt ? { gmt_payment: shanghaiTime(trade.paidAt) } : {}),
      fund_bill_list: JSON.stringify([{ amount: yuan(trade.totalFen), fundChannel: 'ALIPAYACCOUNT' }]),
      ...extra,
    };
    notifier.send(target, params, { ...faults.notify, ...override });
  };

  const sign = (content: string, key: KeyObject) =>
    createSign('RSA-SHA256').update(content, 'utf8').sign(key, 'base64');

  const reply = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    const timestamp = String(Date.now());
    const nonce = randomUUID().replaceAll('-', '');
    const key = faults.signWithOtherKey ? other.privateKey : own.privateKey;
    res
      .writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'alipay-trace-id': randomBytes(12).toString('hex'),
        'alipay-timestamp': timestamp,
        'alipay-nonce': nonce,
        'alipay-signature': sign(`${timestamp}\n${nonce}\n${text}\n`, key),
      })
      .end(text);
  };

  /** The merchant's signature, as Alipay checks it; throws the 401 it answers. */
  const verifyMerchant = (req: IncomingMessage, body: string) => {
    const header = req.headers.authorization ?? '';
    if (!header.startsWith(AUTH_SCHEME)) throw new AlipayError(401, 'invalid-signature', '缺少签名');
    const rest = header.slice(AUTH_SCHEME.length);
    const at = rest.lastIndexOf(',sign=');
    if (at < 0) throw new AlipayError(401, 'invalid-signature', '缺少签名');
    const authString = rest.slice(0, at);
    const signature = rest.slice(at + ',sign='.length);
    const params = new Map(
      authString
        .split(',')
        .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
    );
    if (params.get('app_id') !== options.appId) {
      throw new AlipayError(401, 'invalid-app-id', `无效的AppID参数: ${params.get('app_id') ?? ''}`);
    }
    const timestamp = Number(params.get('timestamp'));
    if (
      !params.get('nonce') ||
      !Number.isSafeInteger(timestamp) ||
      Math.abs(Date.now() - timestamp) > CLOCK_SKEW_MS
    ) {
      throw new AlipayError(401, 'invalid-timestamp', '请求时间戳或随机串无效');
    }
    const token = req.headers['alipay-app-auth-token'];
    const content = `${authString}\n${req.method}\n${req.url}\n${body}\n${typeof token === 'string' ? `${token}\n` : ''}`;
    if (!createVerify('RSA-SHA256').update(content, 'utf8').verify(merchantKey, signature, 'base64')) {
      throw new AlipayError(
        401,
        'invalid-signature',
        '验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配',
      );
    }
  };

  const newTradeNo = (at: Date) =>
    `${shanghaiTime(at).slice(0, 10).replaceAll('-', '')}22001${String(++sequence).padStart(15, '0')}`;

  const fen = (value: unknown, name: string): number => {
    const match = typeof value === 'string' ? YUAN.exec(value) : null;
    const amount = match ? Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0')) : 0;
    if (!match || amount <= 0 || amount > 10_000_000_000) {
      throw new AlipayError(400, 'ACQ.INVALID_PARAMETER', `参数无效: ${name}`);
    }
    return amount;
  };

  const required = (body: Record<string, unknown>, name: string): string => {
    const value = body[name];
    if (typeof value !== 'string' || value === '') {
      throw new AlipayError(400, 'ACQ.INVALID_PARAMETER', `参数无效: ${name}`);
    }
    return value;
  };

  /** A trade the buyer reached: precreated and not scanned is no trade yet. */
  const existing = (outTradeNo: string): Trade => {
    const trade = trades.get(outTradeNo);
    if (!trade || trade.state === 'PRECREATED')
      throw new AlipayError(400, 'ACQ.TRADE_NOT_EXIST', '交易不存在');
    return trade;
  };

  const openApi: Record<string, (body: Record<string, unknown>, query: URLSearchParams) => unknown> = {
    'POST /v3/alipay/trade/precreate': (body) => {
      const outTradeNo = required(body, 'out_trade_no');
      const totalFen = fen(body.total_amount, 'total_amount');
      const subject = required(body, 'subject');
      const trade = trades.get(outTradeNo);
      if (trade) {
        if (trade.totalFen !== totalFen)
          throw new AlipayError(400, 'ACQ.CONTEXT_INCONSISTENT', '交易信息被篡改');
        if (trade.state === 'TRADE_SUCCESS' || trade.state === 'TRADE_FINISHED') {
          throw new AlipayError(400, 'ACQ.TRADE_HAS_SUCCESS', '交易已被支付');
        }
        if (trade.state === 'TRADE_CLOSED') throw new AlipayError(400, 'ACQ.TRADE_HAS_CLOSE', '交易已经关闭');
        return { out_trade_no: outTradeNo, qr_code: trade.qrCode };
      }
      const created: Trade = {
        outTradeNo,
        tradeNo: newTradeNo(now()),
        totalFen,
        subject,
        qrCode: `https://qr.alipay.com/bax0${randomBytes(10).toString('hex')}`,
        state: 'PRECREATED',
        createdAt: now(),
        paidAt: null,
        refundedFen: 0,
        notifyUrl: typeof body.notify_url === 'string' && body.notify_url ? body.notify_url : null,
      };
      trades.set(outTradeNo, created);
      return { out_trade_no: outTradeNo, qr_code: created.qrCode };
    },

    'POST /v3/alipay/trade/query': (body) => {
      const trade = existing(required(body, 'out_trade_no'));
      return {
        trade_no: trade.tradeNo,
        out_trade_no: trade.outTradeNo,
        buyer_logon_id: 'buy***@example.com',
        trade_status: trade.state,
        total_amount: yuan(trade.totalFen),
        ...(trade.paidAt ? { send_pay_date: shanghaiTime(trade.paidAt) } : {}),
      };
    },

    'POST /v3/alipay/trade/close': (body) => {
      const trade = existing(required(body, 'out_trade_no'));
      if (trade.state !== 'WAIT_BUYER_PAY')
        throw new AlipayError(400, 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
      trade.state = 'TRADE_CLOSED';
      return { trade_no: trade.tradeNo, out_trade_no: trade.outTradeNo };
    },

    'POST /v3/alipay/trade/refund': (body) => {
      const trade = existing(required(body, 'out_trade_no'));
      const amountFen = fen(body.refund_amount, 'refund_amount');
      // Without out_request_no Alipay takes the trade number: one refund per trade.
      const outRequestNo = typeof body.out_request_no === 'string' ? body.out_request_no : trade.outTradeNo;
      const key = `${trade.outTradeNo}\n${outRequestNo}`;
      const answer = (fundChange: 'Y' | 'N', at: Date) => ({
        trade_no: trade.tradeNo,
        out_trade_no: trade.outTradeNo,
        buyer_logon_id: 'buy***@example.com',
        fund_change: fundChange,
        refund_fee: yuan(trade.refundedFen),
        gmt_refund_pay: shanghaiTime(at),
      });
      const before = refunds.get(key);
      if (before) {
        if (before.amountFen !== amountFen) {
          throw new AlipayError(400, 'ACQ.DISCORDANT_REPEAT_REQUEST', '请求信息不一致');
        }
        return answer('N', before.at);
      }
      if (trade.state !== 'TRADE_SUCCESS')
        throw new AlipayError(400, 'ACQ.TRADE_STATUS_ERROR', '交易状态不合法');
      if (trade.refundedFen + amountFen > trade.totalFen) {
        throw new AlipayError(400, 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', '退款金额超限');
      }
      const refund = { outTradeNo: trade.outTradeNo, outRequestNo, amountFen, at: now() };
      refunds.set(key, refund);
      trade.refundedFen += amountFen;
      if (trade.refundedFen === trade.totalFen) trade.state = 'TRADE_CLOSED';
      // refund_fee is the trade's refunded total so far, not this refund's amount (Alipay's rule).
      notify(trade, {
        out_biz_no: outRequestNo,
        refund_fee: yuan(trade.refundedFen),
        gmt_refund: `${shanghaiTime(refund.at)}.000`,
      });
      return answer('Y', refund.at);
    },

    'POST /v3/alipay/trade/fastpay/refund/query': (body) => {
      const trade = existing(required(body, 'out_trade_no'));
      const outRequestNo = required(body, 'out_request_no');
      const refund = refunds.get(`${trade.outTradeNo}\n${outRequestNo}`);
      // Alipay answers success for a refund it does not know, with no refund fields at all.
      if (!refund) return { trade_no: trade.tradeNo, out_trade_no: trade.outTradeNo };
      return {
        trade_no: trade.tradeNo,
        out_trade_no: trade.outTradeNo,
        out_request_no: outRequestNo,
        total_amount: yuan(trade.totalFen),
        refund_amount: yuan(refund.amountFen),
        refund_status: 'REFUND_SUCCESS',
        gmt_refund_pay: shanghaiTime(refund.at),
      };
    },

    'GET /v3/alipay/data/dataservice/bill/downloadurl/query': (_body, query) => {
      const billDate = query.get('bill_date') ?? '';
      if (query.get('bill_type') !== 'trade' || !/^\d{4}-\d{2}-\d{2}$/.test(billDate)) {
        throw new AlipayError(400, 'isv.invalid-arguments', '参数无效');
      }
      // Bills come T+1: only a day before today (Asia/Shanghai) has one.
      if (billDate >= shanghaiTime(now()).slice(0, 10)) {
        throw new AlipayError(400, 'isp.bill_not_exist', '账单不存在');
      }
      const inDay = (at: Date | null) => at !== null && shanghaiTime(at).startsWith(billDate);
      const payments: BillPayment[] = [...trades.values()]
        .filter((trade) => trade.paidAt && inDay(trade.paidAt))
        .map((trade) => ({
          tradeNo: trade.tradeNo,
          outTradeNo: trade.outTradeNo,
          subject: trade.subject,
          createdAt: trade.createdAt,
          paidAt: trade.paidAt as Date,
          totalFen: trade.totalFen,
          feeFen: feeOf(trade.totalFen),
        }));
      const refundRows: BillRefund[] = [...refunds.values()]
        .filter((refund) => inDay(refund.at))
        .map((refund) => {
          const trade = trades.get(refund.outTradeNo) as Trade;
          return {
            tradeNo: trade.tradeNo,
            outTradeNo: trade.outTradeNo,
            outRequestNo: refund.outRequestNo,
            subject: trade.subject,
            createdAt: trade.createdAt,
            refundedAt: refund.at,
            totalFen: trade.totalFen,
            refundFen: refund.amountFen,
            feeFen: -feeOf(refund.amountFen),
          };
        });
      const token = randomBytes(16).toString('hex');
      const faulted = applyBillFaults(billDate, { payments, refunds: refundRows }, billFaults.get(billDate));
      bills.set(token, {
        zip: tradeBillZip({ pid, billDate, exportedAt: now(), ...faulted }),
        expiresAt: now().getTime() + BILL_URL_LIFETIME_MS,
      });
      const day = billDate.replaceAll('-', '');
      return {
        bill_download_url: `${url}/downloadBillFile.resource?bizType=trade&fileType=csv.zip&bizDates=${day}&token=${token}`,
      };
    },
  };

  const control = (path: string, body: Record<string, unknown>): unknown => {
    const shown = /^\/__fake\/trades\/([^/]+)$/.exec(path);
    if (shown) {
      const found = trades.get(decodeURIComponent(shown[1] ?? ''));
      if (!found) throw new AlipayError(404, 'NOT_FOUND', 'no such trade');
      return {
        outTradeNo: found.outTradeNo,
        tradeNo: found.tradeNo,
        state: found.state,
        totalFen: found.totalFen,
        refundedFen: found.refundedFen,
        refunds: [...refunds.values()]
          .filter((refund) => refund.outTradeNo === found.outTradeNo)
          .map((refund) => ({
            outRequestNo: refund.outRequestNo,
            amountFen: refund.amountFen,
            at: refund.at.toISOString(),
          })),
      } satisfies FakeAlipayTrade;
    }
    const bill = /^\/__fake\/bills\/(\d{4}-\d{2}-\d{2})\/faults$/.exec(path);
    if (bill) {
      const parsed = alipayBillFaultsSchema.safeParse(body);
      if (!parsed.success) throw new AlipayError(400, 'INVALID_FAULTS', parsed.error.message);
      billFaults.set(bill[1] ?? '', parsed.data);
      return parsed.data;
    }
    if (path === '/__fake/calls') return calls;
    const trade = /^\/__fake\/trades\/([^/]+)\/(scan|pay)$/.exec(path);
    if (trade) {
      const found = trades.get(decodeURIComponent(trade[1] ?? ''));
      if (!found) throw new AlipayError(404, 'NOT_FOUND', 'no such trade');
      if (found.state === 'PRECREATED') found.state = 'WAIT_BUYER_PAY';
      if (trade[2] === 'pay') {
        if (found.state !== 'WAIT_BUYER_PAY')
          throw new AlipayError(409, 'NOT_PAYABLE', `trade is ${found.state}`);
        found.state = 'TRADE_SUCCESS';
        found.paidAt = typeof body.at === 'string' ? new Date(body.at) : now();
        notify(found, {}, body.notify as NotifyFaults | undefined);
      }
      return { trade_no: found.tradeNo, trade_status: found.state };
    }
    if (path === '/__fake/notifications') return notifier.log();
    if (path === '/__fake/clock') {
      clockOffsetMs = typeof body.now === 'string' ? Date.parse(body.now) - Date.now() : 0;
      return { now: now().toISOString() };
    }
    if (path === '/__fake/faults') {
      faults = body as FakeAlipayFaults;
      return faults;
    }
    throw new AlipayError(404, 'NOT_FOUND', path);
  };

  const server: Server = createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const target = new URL(req.url ?? '/', 'http://fake');
    let logged: FakeAlipayCall | null = null;
    try {
      if (target.pathname === '/downloadBillFile.resource') {
        const bill = bills.get(target.searchParams.get('token') ?? '');
        // A signed link past its time answers 403, like the file store behind Alipay's bill URLs.
        if (!bill || bill.expiresAt < now().getTime()) {
          res.writeHead(403, { 'content-type': 'text/plain' }).end('Request has expired');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/zip' }).end(Buffer.from(bill.zip));
        return;
      }
      const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      if (target.pathname.startsWith('/__fake/')) {
        // Computed before writeHead: a refusal must still find the headers unsent.
        const answer = JSON.stringify(control(target.pathname, body));
        res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
        return;
      }
      const name = `${req.method} ${target.pathname}`;
      const call = openApi[name];
      if (!call) throw new AlipayError(400, 'invalid-method', '不存在的方法名');
      verifyMerchant(req, text);
      logged = {
        call: name,
        outTradeNo: typeof body.out_trade_no === 'string' ? body.out_trade_no : null,
        outRequestNo: typeof body.out_request_no === 'string' ? body.out_request_no : null,
        status: null,
        code: null,
      };
      calls.push(logged);
      if (faults.delayMs) await new Promise((resolve) => setTimeout(resolve, faults.delayMs));
      if (faults.systemErrors && faults.systemErrors > 0) {
        faults.systemErrors--;
        throw new AlipayError(faults.systemErrorStatus ?? 500, 'ACQ.SYSTEM_ERROR', '系统错误');
      }
      const answer = call(body, target.searchParams);
      if (faults.loseReplies && faults.loseReplies > 0) {
        // Done, and the answer never reaches the merchant.
        faults.loseReplies--;
        req.socket.destroy();
        return;
      }
      logged.status = 200;
      reply(res, 200, answer);
    } catch (error) {
      if (error instanceof AlipayError) {
        if (error.status === 401) refused++;
        if (res.headersSent) return;
        if (target.pathname.startsWith('/__fake/')) {
          res
            .writeHead(error.status, { 'content-type': 'application/json' })
            .end(JSON.stringify({ code: error.code, message: error.message }));
        } else {
          if (logged) Object.assign(logged, { status: error.status, code: error.code });
          reply(res, error.status, { code: error.code, message: error.message });
        }
        return;
      }
      if (!res.headersSent) reply(res, 500, { code: 'isp.unknow-error', message: (error as Error).message });
    }
  });
  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
  const address = server.address() as AddressInfo;
  const url = `http://${address.address}:${address.port}`;
  return {
    url,
    alipayPublicKey: own.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    refusedSignatures: () => refused,
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

/** The rig's handle on a fake Alipay over HTTP: what a buyer and the clock do. */
export class FakeAlipayControl {
  constructor(private readonly url: string) {}

  /** The buyer scans the QR code: the trade now exists (WAIT_BUYER_PAY). */
  scan(outTradeNo: string) {
    return this.post(`/__fake/trades/${encodeURIComponent(outTradeNo)}/scan`, {});
  }

  /**
   * The buyer pays, now or at a given instant (the bill's day follows it); `notify` overrides the
   * notification faults for this payment.
   */
  pay(outTradeNo: string, at?: Date, notify?: NotifyFaults) {
    return this.post(`/__fake/trades/${encodeURIComponent(outTradeNo)}/pay`, {
      ...(at ? { at: at.toISOString() } : {}),
      ...(notify ? { notify } : {}),
    });
  }

  /** The notifications the fake has POSTed, each attempt with its answer. */
  async notifications(): Promise<NotifyAttempt[]> {
    return (await this.post('/__fake/notifications', {})) as NotifyAttempt[];
  }

  /** The fake's clock (bills, URL expiry, payment and refund times); undefined: the real one. */
  setClock(now?: Date) {
    return this.post('/__fake/clock', now ? { now: now.toISOString() } : {});
  }

  setFaults(faults: FakeAlipayFaults) {
    return this.post('/__fake/faults', faults);
  }

  /** The trade as the fake holds it: its state, refunded total and refunds. */
  async trade(outTradeNo: string): Promise<FakeAlipayTrade> {
    return (await this.post(`/__fake/trades/${encodeURIComponent(outTradeNo)}`, {})) as FakeAlipayTrade;
  }

  /** Every OpenAPI call answered so far (a refused signature is not one), oldest first. */
  async calls(): Promise<FakeAlipayCall[]> {
    return (await this.post('/__fake/calls', {})) as FakeAlipayCall[];
  }

  /** Replaces the faults of a day's bill (`{}`: none); they change what the bill says, never the trades. */
  setBillFaults(billDate: string, faults: AlipayBillFaults) {
    return this.post(`/__fake/bills/${billDate}/faults`, faults);
  }

  private async post(path: string, body: unknown): Promise<unknown> {
    const response = await fetch(`${this.url}${path}`, { method: 'POST', body: JSON.stringify(body) });
    const text = await response.text();
    if (!response.ok) throw new Error(`fake Alipay ${path}: HTTP ${response.status} ${text}`);
    return JSON.parse(text);
  }
}

/**
 * Standalone: FAKE_ALIPAY_APP_ID, FAKE_ALIPAY_MERCHANT_PUBLIC_KEY_FILE, FAKE_ALIPAY_PORT (8092),
 * FAKE_ALIPAY_NOTIFY_URL (optional: notifications for trades without a notify_url); writes its
 * own public key to FAKE_ALIPAY_PUBLIC_KEY_OUT for payrecon's ALIPAY_PUBLIC_KEY_FILE.
 */
async function main() {
  const env = process.env;
  const keyFile = env.FAKE_ALIPAY_MERCHANT_PUBLIC_KEY_FILE;
  const out = env.FAKE_ALIPAY_PUBLIC_KEY_OUT;
  if (!env.FAKE_ALIPAY_APP_ID || !keyFile || !out) {
    throw new Error(
      'set FAKE_ALIPAY_APP_ID, FAKE_ALIPAY_MERCHANT_PUBLIC_KEY_FILE and FAKE_ALIPAY_PUBLIC_KEY_OUT',
    );
  }
  const fake = await startFakeAlipay({
    appId: env.FAKE_ALIPAY_APP_ID,
    merchantPublicKey: readFileSync(keyFile, 'utf8'),
    port: Number(env.FAKE_ALIPAY_PORT ?? 8092),
    notifyUrl: env.FAKE_ALIPAY_NOTIFY_URL,
  });
  writeFileSync(out, fake.alipayPublicKey);
  console.log(`fake Alipay at ${fake.url} (its public key in ${out})`);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`fake Alipay failed: ${(error as Error).message}`);
    process.exit(1);
  });
}
