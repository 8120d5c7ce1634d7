import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/platform/config';
import {
  ProviderReplyError,
  ProviderUnavailableError,
  StatementNotReadyError,
  StatementUrlExpiredError,
} from '../src/provider/gateway';
import type { StatementEntry } from '../src/provider/statement';
import {
  StatementChecksumError,
  WechatPayGateway,
  type WechatPayStatementLocation,
} from '../src/provider/wechatpay';
import { parseYuan, readTradeBill } from '../src/provider/wechatpay/bill';
import { loadWechatPayConfig } from '../src/provider/wechatpay/config';
import {
  type FakeWechatPay,
  type FakeWechatPayFaults,
  startFakeWechatPay,
} from '../tools/providers/wechatpay/server';

/**
 * The WeChat Pay adapter (wechatpay-axios-plugin underneath) against the fake WeChat Pay of the rig on
 * loopback: both sides sign and verify with real RSA keys, each written independently of the other.
 */

const MCH_ID = '1900000109';
const APP_ID = 'wxd678efh567hg6787';
const SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
const APIV3_KEY = 'a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb';

const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
const merchantPrivatePem = merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const dir = mkdtempSync(path.join(tmpdir(), 'payrecon-wechatpay-test-'));
let fake: FakeWechatPay;
let env: Record<string, string>;
let gateway: WechatPayGateway;

const write = (name: string, content: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
};

beforeAll(async () => {
  fake = await startFakeWechatPay({
    mchId: MCH_ID,
    appId: APP_ID,
    merchantCertSerial: SERIAL,
    merchantPublicKey: merchant.publicKey,
  });
  env = {
    WECHATPAY_MCH_ID: MCH_ID,
    WECHATPAY_APP_ID: APP_ID,
    WECHATPAY_MCH_CERT_SERIAL: SERIAL,
    WECHATPAY_MCH_PRIVATE_KEY_FILE: write('apiclient_key.pem', merchantPrivatePem),
    // As a merchant downloads it from the merchant platform, with its id beside it.
    WECHATPAY_PUBLIC_KEY_FILE: write('pub_key.pem', fake.publicKeyPem),
    WECHATPAY_PUBLIC_KEY_ID: fake.publicKeyId,
    WECHATPAY_APIV3_KEY_FILE: write('apiv3.key', `${APIV3_KEY}\n`),
    WECHATPAY_NOTIFY_URL: 'https://shop.example/wechatpay/notify',
    WECHATPAY_ENDPOINT: fake.url,
  };
  gateway = new WechatPayGateway(loadWechatPayConfig(env), { timeoutMs: 1_000 });
});

afterAll(async () => {
  await fake?.close();
  rmSync(dir, { recursive: true, force: true });
});

const newOrderId = () => `ord_${randomBytes(8).toString('hex')}`;

async function control(pathname: string, body: unknown): Promise<unknown> {
  const response = await fetch(`${fake.url}${pathname}`, { method: 'POST', body: JSON.stringify(body) });
  if (!response.ok) throw new Error(`${pathname}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}
const setFaults = (faults: Partial<FakeWechatPayFaults>) => control('/fake/faults', faults);
const setTradeState = (orderId: string, tradeState: string, successTime?: string) =>
  control(`/fake/trades/${orderId}/state`, {
    trade_state: tradeState,
    ...(successTime ? { success_time: successTime } : {}),
  });
const settleRefund = (outRefundNo: string, status: string, successTime?: string) =>
  control(`/fake/refunds/${outRefundNo}/outcome`, {
    status,
    ...(successTime ? { success_time: successTime } : {}),
  });

async function paidOrder(amount: number, successTime?: string): Promise<string> {
  const orderId = newOrderId();
  await gateway.openTrade({ orderId, amount, currency: 'CNY' });
  await setTradeState(orderId, 'SUCCESS', successTime);
  return orderId;
}

async function collect(entries: AsyncIterable<StatementEntry>): Promise<StatementEntry[]> {
  const all: StatementEntry[] = [];
  for await (const entry of entries) all.push(entry);
  return all;
}

/** The Asia/Shanghai day before today: the latest bill WeChat Pay has. */
function yesterdayInShanghai(): string {
  return new Date(Date.now() + 8 * 3_600_000 - 86_400_000).toISOString().slice(0, 10);
}

describe('WeChat Pay trades', () => {
  it('opens a Native order (code_url), and the same order again answers the same code_url', async () => {
    const orderId = newOrderId();
    const first = await gateway.openNativeTrade({ orderId, amount: 1234, currency: 'CNY' });
    expect(first.codeUrl).toMatch(/^weixin:\/\/wxpay\/bizpayurl\?pr=/);
    expect(first.trade).toEqual({
      orderId,
      status: 'WAIT_BUYER_PAY',
      tradeNo: null,
      amount: null,
      currency: null,
      paidAt: null,
    });
    const again = await gateway.openNativeTrade({ orderId, amount: 1234, currency: 'CNY' });
    expect(again.codeUrl).toBe(first.codeUrl);
    // Another amount under the same out_trade_no is WeChat's "201 商户订单号重复": not retried.
    await expect(gateway.openTrade({ orderId, amount: 999, currency: 'CNY' })).rejects.toThrow(
      /INVALID_REQUEST/,
    );
    await expect(
      gateway.openTrade({ orderId: newOrderId(), amount: 1, currency: 'USD' }),
    ).rejects.toBeInstanceOf(ProviderReplyError);
  });

  it('maps every trade_state onto payrecon: REFUND was paid, USERPAYING is still open', async () => {
    const expected = {
      SUCCESS: 'TRADE_SUCCESS',
      REFUND: 'TRADE_SUCCESS',
      NOTPAY: 'WAIT_BUYER_PAY',
      USERPAYING: 'WAIT_BUYER_PAY',
      CLOSED: 'TRADE_CLOSED',
      REVOKED: 'TRADE_CLOSED',
      PAYERROR: 'TRADE_CLOSED',
    } as const;
    for (const [state, status] of Object.entries(expected)) {
      const orderId = newOrderId();
      await gateway.openTrade({ orderId, amount: 1234, currency: 'CNY' });
      await setTradeState(orderId, state, '2025-01-15T10:00:00+08:00');
      const snapshot = await gateway.queryTrade(orderId);
      expect(snapshot.status, state).toBe(status);
      if (status === 'TRADE_SUCCESS') {
        expect(snapshot, state).toMatchObject({
          amount: 1234,
          currency: 'CNY',
          paidAt: '2025-01-15T10:00:00+08:00',
        });
        expect(snapshot.tradeNo, state).toMatch(/^42\d{26}$/);
      } else {
        expect(snapshot, state).toMatchObject({ amount: null, paidAt: null });
      }
    }
    await expect(gateway.queryTrade(newOrderId())).resolves.toMatchObject({
      status: 'NOT_FOUND',
      tradeNo: null,
    });
  });

  it('an unknown trade_state is a ProviderReplyError', async () => {
    const orderId = newOrderId();
    await gateway.openTrade({ orderId, amount: 100, currency: 'CNY' });
    await setTradeState(orderId, 'ACCEPT');
    const error = await gateway.queryTrade(orderId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderReplyError);
    expect((error as Error).message).toMatch(/unknown trade_state "ACCEPT"/);
  });

  it('close: an unpaid trade is closed, a trade paid meanwhile stays paid, one never opened has nothing to close', async () => {
    const unpaid = newOrderId();
    await gateway.openTrade({ orderId: unpaid, amount: 500, currency: 'CNY' });
    await expect(gateway.closeTrade(unpaid)).resolves.toMatchObject({
      status: 'TRADE_CLOSED',
      tradeNo: null,
    });
    // Closed: opening it again is refused by WeChat and answered with its status.
    await expect(gateway.openTrade({ orderId: unpaid, amount: 500, currency: 'CNY' })).resolves.toMatchObject(
      {
        status: 'TRADE_CLOSED',
      },
    );

    const paid = await paidOrder(500);
    const snapshot = await gateway.closeTrade(paid);
    expect(snapshot).toMatchObject({ status: 'TRADE_SUCCESS', amount: 500, currency: 'CNY' });
    expect(snapshot.tradeNo).not.toBeNull();

    await expect(gateway.closeTrade(newOrderId())).resolves.toMatchObject({ status: 'NOT_FOUND' });
  });
});

describe('WeChat Pay refunds', () => {
  it('the same out_refund_no twice is one refund; its outcome is read by query', async () => {
    const orderId = await paidOrder(1000);
    const request = {
      orderId,
      outRequestNo: `rf_${randomBytes(6).toString('hex')}`,
      amount: 600,
      reason: 'returned',
    };
    const first = await gateway.submitRefund(request);
    expect(first).toMatchObject({ outRequestNo: request.outRequestNo, status: 'PROCESSING', amount: 600 });
    expect(first.refundNo).toMatch(/^50\d{27}$/);
    const second = await gateway.submitRefund(request);
    expect(second.refundNo).toBe(first.refundNo);
    // Only 600 of the 1000 was taken: the remaining 400 refunds, one fen more does not.
    const rest = await gateway.submitRefund({
      ...request,
      outRequestNo: `${request.outRequestNo}b`,
      amount: 400,
    });
    expect(rest.refundNo).not.toBe(first.refundNo);
    await expect(
      gateway.submitRefund({ ...request, outRequestNo: `${request.outRequestNo}c`, amount: 1 }),
    ).rejects.toBeInstanceOf(ProviderReplyError);
    // The trade is REFUND at WeChat now, and was paid.
    await expect(gateway.queryTrade(orderId)).resolves.toMatchObject({
      status: 'TRADE_SUCCESS',
      amount: 1000,
    });

    await settleRefund(request.outRequestNo, 'SUCCESS');
    await expect(gateway.queryRefund(orderId, request.outRequestNo)).resolves.toEqual({
      outRequestNo: request.outRequestNo,
      status: 'SUCCESS',
      refundNo: first.refundNo,
      amount: 600,
      failureReason: null,
    });
  });

  it('ABNORMAL stays PROCESSING (neither success nor refusal), CLOSED is FAILED, an unknown refund NOT_FOUND', async () => {
    const orderId = await paidOrder(800);
    const abnormal = await gateway.submitRefund({
      orderId,
      outRequestNo: `ab_${orderId}`,
      amount: 300,
      reason: null,
    });
    await settleRefund(abnormal.outRequestNo, 'ABNORMAL');
    await expect(gateway.queryRefund(orderId, abnormal.outRequestNo)).resolves.toMatchObject({
      status: 'PROCESSING',
      failureReason: null,
    });
    const closed = await gateway.submitRefund({
      orderId,
      outRequestNo: `cl_${orderId}`,
      amount: 100,
      reason: null,
    });
    await settleRefund(closed.outRequestNo, 'CLOSED');
    const snapshot = await gateway.queryRefund(orderId, closed.outRequestNo);
    expect(snapshot.status).toBe('FAILED');
    expect(snapshot.failureReason).toMatch(/closed/);
    await expect(gateway.queryRefund(orderId, 'never_asked')).resolves.toMatchObject({ status: 'NOT_FOUND' });
  });

  it('a refund of an unpaid trade is refused, not retried', async () => {
    const orderId = newOrderId();
    await gateway.openTrade({ orderId, amount: 100, currency: 'CNY' });
    await expect(
      gateway.submitRefund({ orderId, outRequestNo: `rf_${orderId}`, amount: 100, reason: null }),
    ).rejects.toBeInstanceOf(ProviderReplyError);
  });
});

describe('the WeChat Pay trade bill', () => {
  const billDate = yesterdayInShanghai();

  it('locates, downloads (SHA1 checked) and reads the day: yuan to fen exactly, backtick fields, summary totals', async () => {
    const small = await paidOrder(1234, `${billDate}T10:00:00+08:00`);
    const large = await paidOrder(123_456_789, `${billDate}T10:30:00+08:00`);
    const refund = await gateway.submitRefund({
      orderId: small,
      outRequestNo: `rf_${small}`,
      amount: 200,
      reason: null,
    });
    await settleRefund(refund.outRequestNo, 'SUCCESS', `${billDate}T11:00:00+08:00`);

    const location = (await gateway.statementLocation(billDate)) as WechatPayStatementLocation;
    expect(location).toMatchObject({
      billDate,
      hashType: 'SHA1',
      format: { encoding: 'utf-8', zipped: false },
    });
    expect(location.hashValue).toMatch(/^[0-9a-f]{40}$/);
    expect(Date.parse(location.expiresAt) - Date.now()).toBeLessThanOrEqual(30_000);
    const file = await gateway.downloadStatement(location);
    const entries = await collect(gateway.readStatement(file, location.format));

    expect(entries.filter((e) => e.kind === 'rejected')).toEqual([]);
    const rows = entries.flatMap((e) => (e.kind === 'row' ? [e.row] : []));
    const smallTrade = await gateway.queryTrade(small);
    expect(rows).toEqual([
      {
        tradeNo: smallTrade.tradeNo,
        orderId: small,
        type: 'pay',
        outRequestNo: null,
        currency: 'CNY',
        amount: 1234,
        fee: 7,
        status: 'TRADE_SUCCESS',
        occurredAt: new Date(`${billDate}T02:00:00Z`),
      },
      expect.objectContaining({ orderId: large, type: 'pay', amount: 123_456_789, fee: 740_741 }),
      {
        tradeNo: smallTrade.tradeNo,
        orderId: small,
        type: 'refund',
        outRequestNo: refund.outRequestNo,
        currency: 'CNY',
        amount: 200,
        fee: -1,
        status: 'REFUND_SUCCESS',
        occurredAt: new Date(`${billDate}T03:00:00Z`),
      },
    ]);
    expect(entries.at(-1)).toMatchObject({
      kind: 'summary',
      summary: {
        rows: 3,
        payCount: 2,
        payAmount: 1234 + 123_456_789,
        refundCount: 1,
        refundAmount: 200,
        fee: 7 + 740_741 - 1,
      },
    });
  });

  it('a bill whose SHA1 is not the declared one is refused unread, as retryable; asked again it reads', async () => {
    await paidOrder(4321, `${billDate}T12:00:00+08:00`);
    await setFaults({ badBillHash: 1 });
    const tampered = await gateway.statementLocation(billDate);
    const error = await gateway.downloadStatement(tampered).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StatementChecksumError);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toMatch(/SHA1 [0-9a-f]{40}, WeChat Pay declared [0-9a-f]{40}/);
    const again = await gateway.statementLocation(billDate);
    const entries = await collect(
      gateway.readStatement(await gateway.downloadStatement(again), again.format),
    );
    expect(entries.some((e) => e.kind === 'summary')).toBe(true);
  });

  it('an expired download URL asks for a new one; today has no bill yet', async () => {
    await paidOrder(100, `${billDate}T13:00:00+08:00`);
    await setFaults({ billUrlTtlMs: 1 });
    const location = await gateway.statementLocation(billDate);
    await setFaults({ billUrlTtlMs: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 20));
    await expect(gateway.downloadStatement(location)).rejects.toBeInstanceOf(StatementUrlExpiredError);
    const today = new Date(Date.now() + 8 * 3_600_000).toISOString().slice(0, 10);
    await expect(gateway.statementLocation(today)).rejects.toBeInstanceOf(StatementNotReadyError);
  });

  it('reads money without floats and checks the totals payrecon has no place for', async () => {
    expect(parseYuan('0.10')).toBe(10);
    expect(parseYuan('0.1')).toBe(10);
    expect(parseYuan('1234567.89')).toBe(123_456_789);
    expect(parseYuan('-0.27000')).toBe(-27);
    expect(parseYuan('0.29')).toBe(29); // 0.29 * 100 is 28.999999999999996 in floating point
    for (const bad of ['0.00600', '1e3', '', '1.2.3', '¥1.00']) expect(() => parseYuan(bad), bad).toThrow();
    const header =
      '交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注';
    const row =
      '`2026-03-01 10:00:00,`wx1,`1900000109,`0,`,`4200000001,`ord_1,`o1,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.29,`0.00,`0,`0,`0.00,`0.00,`,`,`A, B and C,`{"a":1,"b":2},`0.00000,`0.60%,`0.29,`0.00,`';
    const summary = '`1,`0.30,`0.00,`0.00,`0.00000,`0.29,`0.00';
    const bill = [
      header,
      row,
      '总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额',
      summary,
    ];
    const entries = await collect(readTradeBill(Readable.from([`${bill.join('\r\n')}\r\n`])));
    expect(entries[0]).toMatchObject({ kind: 'row', line: 2, row: { orderId: 'ord_1', amount: 29 } });
    expect(entries[1]).toMatchObject({ kind: 'summary', summary: { rows: 1, payAmount: 29 } });
    expect(entries[2]).toMatchObject({
      kind: 'rejected',
      reason: 'summary: 应结订单总金额 declares 30 fen, the readable rows add up to 29 fen',
    });
  });
});

describe('WeChat Pay signatures and errors', () => {
  it('a reply signed with another key is refused: ProviderReplyError', async () => {
    const orderId = await paidOrder(100);
    await setFaults({ rogueSignature: 1 });
    const error = await gateway.queryTrade(orderId).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderReplyError);
    expect((error as Error).message).toMatch(/EV3_RES_HEADER_SIGNATURE_DIGEST/);
    await expect(gateway.queryTrade(orderId)).resolves.toMatchObject({ status: 'TRADE_SUCCESS' });
  });

  it('SYSTEM_ERROR and a timeout may pass: ProviderUnavailableError', async () => {
    await setFaults({ systemError: 1 });
    const error = await gateway.queryTrade(newOrderId()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toMatch(/HTTP 500 SYSTEM_ERROR/);
    await setFaults({ timeout: 1, hangMs: 3_000 });
    const started = Date.now();
    await expect(gateway.queryTrade(newOrderId())).rejects.toBeInstanceOf(ProviderUnavailableError);
    expect(Date.now() - started).toBeLessThan(2_500);
    const down = new WechatPayGateway(
      loadWechatPayConfig({ ...env, WECHATPAY_ENDPOINT: 'http://127.0.0.1:1' }),
    );
    await expect(down.queryTrade(newOrderId())).rejects.toBeInstanceOf(ProviderUnavailableError);
  });

  it('the fake refuses a request the merchant did not sign, or signed over another body (401 SIGN_ERROR)', async () => {
    const body = JSON.stringify({ mchid: MCH_ID });
    const pathname = `/v3/pay/transactions/out-trade-no/${newOrderId()}/close`;
    const authorization = (signed: string) => {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const nonce = randomBytes(16).toString('hex');
      const signature = createSign('RSA-SHA256')
        .update(`POST\n${pathname}\n${timestamp}\n${nonce}\n${signed}\n`)
        .sign(merchant.privateKey, 'base64');
      return `WECHATPAY2-SHA256-RSA2048 mchid="${MCH_ID}",nonce_str="${nonce}",signature="${signature}",timestamp="${timestamp}",serial_no="${SERIAL}"`;
    };
    const post = (headers: Record<string, string>) =>
      fetch(`${fake.url}${pathname}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    // Signed by hand from the protocol: accepted (the trade does not exist, a signed 404).
    const good = await post({ authorization: authorization(body) });
    expect(good.status).toBe(404);
    expect(good.headers.get('wechatpay-serial')).toBe(fake.publicKeyId);
    for (const headers of [{}, { authorization: authorization(`${body} `) }] as Record<string, string>[]) {
      const refused = await post(headers);
      expect(refused.status).toBe(401);
      expect(await refused.json()).toMatchObject({ code: 'SIGN_ERROR' });
      expect(refused.headers.get('wechatpay-signature')).toBeNull();
    }
    // A merchant key that is not the one WeChat Pay has: the adapter gets 401 and does not retry.
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const impostor = new WechatPayGateway(
      loadWechatPayConfig({
        ...env,
        WECHATPAY_MCH_PRIVATE_KEY_FILE: write(
          'other_key.pem',
          stranger.export({ type: 'pkcs8', format: 'pem' }).toString(),
        ),
      }),
    );
    const error = await impostor.queryTrade(newOrderId()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderReplyError);
    expect((error as Error).message).toMatch(/HTTP 401 SIGN_ERROR/);
  });
});

describe('WeChat Pay configuration', () => {
  const failure = (overrides: Record<string, string | undefined>) => {
    try {
      loadWechatPayConfig({ ...env, ...overrides });
    } catch (error) {
      return error as Error;
    }
    throw new Error('expected a ConfigError');
  };
  const keyLines = merchantPrivatePem.split('\n').filter((line) => line.length > 40);

  it('names each missing or malformed variable', () => {
    const missing = failure({ WECHATPAY_PUBLIC_KEY_ID: undefined, WECHATPAY_APIV3_KEY_FILE: undefined });
    expect(missing).toBeInstanceOf(ConfigError);
    expect(missing.message).toMatch(/WECHATPAY_PUBLIC_KEY_ID=\(unset\)/);
    expect(missing.message).toMatch(/WECHATPAY_APIV3_KEY_FILE=\(unset\)/);
    expect(failure({ WECHATPAY_PUBLIC_KEY_ID: '7132D72A03E93CDD' }).message).toMatch(
      /WECHATPAY_PUBLIC_KEY_ID=.*PUB_KEY_ID_/,
    );
    expect(failure({ WECHATPAY_MCH_ID: 'merchant' }).message).toMatch(/WECHATPAY_MCH_ID/);
    expect(failure({ WECHATPAY_ENDPOINT: 'ftp://x' }).message).toMatch(/WECHATPAY_ENDPOINT/);
    expect(loadWechatPayConfig({ ...env, WECHATPAY_ENDPOINT: undefined }).endpoint).toBe(
      'https://api.mch.weixin.qq.com',
    );
  });

  it('checks the key files and never prints a key', () => {
    const errors = [
      // Keys swapped between files: each names its variable, neither prints what it read.
      failure({
        WECHATPAY_PUBLIC_KEY_FILE: env.WECHATPAY_APIV3_KEY_FILE,
        WECHATPAY_MCH_PRIVATE_KEY_FILE: env.WECHATPAY_PUBLIC_KEY_FILE,
      }),
      failure({ WECHATPAY_APIV3_KEY_FILE: env.WECHATPAY_MCH_PRIVATE_KEY_FILE }),
      failure({ WECHATPAY_APIV3_KEY_FILE: write('short.key', APIV3_KEY.slice(0, 31)) }),
      failure({ WECHATPAY_MCH_PRIVATE_KEY_FILE: path.join(dir, 'absent.pem') }),
    ];
    expect(errors[0]?.message).toMatch(/WECHATPAY_PUBLIC_KEY_FILE: the file does not hold an RSA public key/);
    expect(errors[0]?.message).toMatch(
      /WECHATPAY_MCH_PRIVATE_KEY_FILE: the file does not hold an RSA private key/,
    );
    expect(errors[1]?.message).toMatch(/WECHATPAY_APIV3_KEY_FILE: the APIv3 key must be 32 bytes/);
    expect(errors[2]?.message).toMatch(/must be 32 bytes, the file holds 31/);
    expect(errors[3]?.message).toMatch(/WECHATPAY_MCH_PRIVATE_KEY_FILE: the file cannot be read \(ENOENT\)/);
    // A loaded configuration that ends up in a log line shows no key either.
    const printed =
      inspect(loadWechatPayConfig(env), { depth: 10 }) + JSON.stringify(loadWechatPayConfig(env));
    const bytes = [...Buffer.from(APIV3_KEY)];
    // As text, as inspect prints a Buffer, as JSON prints one.
    for (const form of [APIV3_KEY, bytes.map((b) => b.toString(16)).join(' '), bytes.join(',')]) {
      expect(printed).not.toContain(form.slice(0, 20));
    }
    for (const line of keyLines) expect(printed).not.toContain(line);
    for (const error of errors) {
      expect(error).toBeInstanceOf(ConfigError);
      expect(error?.message).not.toContain(APIV3_KEY.slice(0, 31));
      for (const line of keyLines) expect(error?.message).not.toContain(line);
      expect(error?.message).not.toContain('BEGIN');
    }
  });
});
