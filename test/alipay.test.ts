import { createSign, generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { unzipSync } from 'fflate';
import iconv from 'iconv-lite';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { wasPaid } from '../src/domain';
import { ConfigError, loadConfig } from '../src/platform/config';
import { AlipayPaymentGateway, createAlipayGateway } from '../src/provider/alipay';
import { fenToYuan, yuanToFen } from '../src/provider/alipay/yuan';
import {
  ProviderReplyError,
  ProviderUnavailableError,
  StatementNotReadyError,
  StatementUrlExpiredError,
} from '../src/provider/gateway';
import { HttpPaymentGateway } from '../src/provider/http';
import { createPaymentGateway } from '../src/provider/select';
import type { StatementEntry } from '../src/provider/statement';
import { type FakeAlipay, FakeAlipayControl, startFakeAlipay } from '../tools/providers/alipay/server';

/**
 * The Alipay adapter (alipay-sdk underneath) against the fake Alipay (tools/providers/alipay, written
 * from the protocol with node:crypto) on loopback: every call signed and verified with real RSA keys.
 */

const APP_ID = '2021000000000001';
const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
const merchantPrivatePem = merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const merchantPublicPem = merchant.publicKey.export({ type: 'spki', format: 'pem' }).toString();

let fake: FakeAlipay;
let control: FakeAlipayControl;
let gateway: AlipayPaymentGateway;

const gatewayWith = (overrides: Partial<ConstructorParameters<typeof AlipayPaymentGateway>[0]> = {}) =>
  new AlipayPaymentGateway({
    appId: APP_ID,
    privateKey: merchantPrivatePem,
    alipayPublicKey: fake.alipayPublicKey,
    endpoint: fake.url,
    timeoutMs: 2_000,
    ...overrides,
  });

const newOrderId = () => `ord-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  fake = await startFakeAlipay({ appId: APP_ID, merchantPublicKey: merchantPublicPem });
  control = new FakeAlipayControl(fake.url);
  gateway = gatewayWith();
});

afterEach(async () => {
  await control.setFaults({});
  await control.setClock();
});

afterAll(() => fake.close());

describe('the Alipay gateway: trades', () => {
  it('opens a trade with a QR code; it is NOT_FOUND until the buyer scans it, then WAIT_BUYER_PAY', async () => {
    const orderId = newOrderId();
    const opened = await gateway.openTrade({ orderId, amount: 1234, currency: 'CNY' });
    expect(opened).toMatchObject({ orderId, status: 'WAIT_BUYER_PAY', tradeNo: null, amount: 1234 });
    expect(opened.payCode).toMatch(/^https:\/\/qr\.alipay\.com\//);
    await expect(gateway.queryTrade(orderId)).resolves.toMatchObject({ status: 'NOT_FOUND', tradeNo: null });
    await control.scan(orderId);
    const scanned = await gateway.queryTrade(orderId);
    expect(scanned).toMatchObject({ status: 'WAIT_BUYER_PAY', amount: 1234, currency: 'CNY', paidAt: null });
    expect(scanned.tradeNo).toMatch(/^\d{28}$/);
    // Opening again is idempotent: the same QR code.
    await expect(gateway.openTrade({ orderId, amount: 1234, currency: 'CNY' })).resolves.toMatchObject({
      payCode: opened.payCode,
    });
  });

  it('reads a paid trade: TRADE_SUCCESS, its trade number, the amount in fen and the pay time', async () => {
    const orderId = newOrderId();
    await gateway.openTrade({ orderId, amount: 8888, currency: 'CNY' });
    await control.pay(orderId, new Date('2025-06-01T01:02:03Z'));
    const paid = await gateway.queryTrade(orderId);
    expect(paid).toMatchObject({
      status: 'TRADE_SUCCESS',
      amount: 8888,
      currency: 'CNY',
      paidAt: '2025-06-01T01:02:03.000Z',
      refundedAmount: null,
    });
    expect(wasPaid(paid)).toBe(true);
    // Opening a paid trade again says it is paid (ACQ.TRADE_HAS_SUCCESS, then a query).
    await expect(gateway.openTrade({ orderId, amount: 8888, currency: 'CNY' })).resolves.toMatchObject({
      status: 'TRADE_SUCCESS',
      tradeNo: paid.tradeNo,
    });
  });

  it('refuses what Alipay cannot do: another currency, the same order with another amount', async () => {
    await expect(gateway.openTrade({ orderId: newOrderId(), amount: 100, currency: 'USD' })).rejects.toThrow(
      ProviderReplyError,
    );
    const orderId = newOrderId();
    await gateway.openTrade({ orderId, amount: 100, currency: 'CNY' });
    await expect(gateway.openTrade({ orderId, amount: 101, currency: 'CNY' })).rejects.toThrow(
      /ACQ\.CONTEXT_INCONSISTENT/,
    );
  });

  it('closes an unpaid trade; a trade nobody scanned has nothing to close; a paid trade stays paid', async () => {
    const unpaid = newOrderId();
    await gateway.openTrade({ orderId: unpaid, amount: 500, currency: 'CNY' });
    await control.scan(unpaid);
    const closed = await gateway.closeTrade(unpaid);
    expect(closed).toMatchObject({ status: 'TRADE_CLOSED' });
    expect(closed.tradeNo).toMatch(/^\d{28}$/);
    await expect(gateway.queryTrade(unpaid)).resolves.toMatchObject({
      status: 'TRADE_CLOSED',
      refundedAmount: null,
    });
    expect(wasPaid(await gateway.queryTrade(unpaid))).toBe(false);
    // Closing again: ACQ.TRADE_STATUS_ERROR, and the query says closed.
    await expect(gateway.closeTrade(unpaid)).resolves.toMatchObject({ status: 'TRADE_CLOSED' });

    const neverScanned = newOrderId();
    await gateway.openTrade({ orderId: neverScanned, amount: 500, currency: 'CNY' });
    await expect(gateway.closeTrade(neverScanned)).resolves.toMatchObject({ status: 'NOT_FOUND' });

    const paid = newOrderId();
    await gateway.openTrade({ orderId: paid, amount: 500, currency: 'CNY' });
    await control.pay(paid);
    await expect(gateway.closeTrade(paid)).resolves.toMatchObject({ status: 'TRADE_SUCCESS', amount: 500 });
  });
});

describe('the Alipay gateway: refunds', () => {
  it('the same out_request_no twice is one refund; the refund query finds it; a full refund closes the trade', async () => {
    const orderId = newOrderId();
    await gateway.openTrade({ orderId, amount: 1000, currency: 'CNY' });
    await control.pay(orderId);
    await expect(gateway.queryRefund(orderId, 'rf-1')).resolves.toMatchObject({ status: 'NOT_FOUND' });
    const request = { orderId, outRequestNo: 'rf-1', amount: 400, reason: '退货' };
    await expect(gateway.submitRefund(request)).resolves.toEqual({
      outRequestNo: 'rf-1',
      status: 'SUCCESS',
      refundNo: null,
      amount: 400,
      failureReason: null,
    });
    // fund_change=N the second time: the query confirms the one refund, nothing more is refunded.
    await expect(gateway.submitRefund(request)).resolves.toMatchObject({ status: 'SUCCESS', amount: 400 });
    await expect(gateway.queryRefund(orderId, 'rf-1')).resolves.toMatchObject({
      status: 'SUCCESS',
      amount: 400,
    });
    await expect(gateway.queryTrade(orderId)).resolves.toMatchObject({ status: 'TRADE_SUCCESS' });
    // Only 600 is left: had the repeat refunded again, 600 would exceed it.
    await expect(gateway.submitRefund({ ...request, outRequestNo: 'rf-2', amount: 601 })).rejects.toThrow(
      /ACQ\.REFUND_AMT_NOT_EQUAL_TOTAL/,
    );
    await expect(
      gateway.submitRefund({ ...request, outRequestNo: 'rf-2', amount: 600 }),
    ).resolves.toMatchObject({
      status: 'SUCCESS',
    });
    const refunded = await gateway.queryTrade(orderId);
    expect(refunded).toMatchObject({ status: 'TRADE_CLOSED', refundedAmount: 1000 });
    expect(wasPaid(refunded)).toBe(true);
  });

  it('refuses for good a refund of an unpaid trade or the same out_request_no with another amount', async () => {
    const orderId = newOrderId();
    await gateway.openTrade({ orderId, amount: 1000, currency: 'CNY' });
    await control.scan(orderId);
    const unpaid = gateway.submitRefund({ orderId, outRequestNo: 'rf-1', amount: 100, reason: null });
    await expect(unpaid).rejects.toThrow(ProviderReplyError);
    await expect(unpaid).rejects.toThrow(/ACQ\.TRADE_STATUS_ERROR/);
    await control.pay(orderId);
    await gateway.submitRefund({ orderId, outRequestNo: 'rf-1', amount: 100, reason: null });
    await expect(
      gateway.submitRefund({ orderId, outRequestNo: 'rf-1', amount: 200, reason: null }),
    ).rejects.toThrow(/ACQ\.DISCORDANT_REPEAT_REQUEST/);
  });
});

describe('the Alipay gateway: the trade bill', () => {
  const BILL_DATE = '2020-03-01';

  const collect = async (entries: AsyncIterable<StatementEntry>) => {
    const all: StatementEntry[] = [];
    for await (const entry of entries) all.push(entry);
    return all;
  };

  it('locates, downloads and reads the day: yuan to exact fen, refund rows, the 合计 lines as control totals', async () => {
    const small = newOrderId();
    const large = newOrderId();
    await gateway.openTrade({ orderId: small, amount: 1, currency: 'CNY' });
    await gateway.openTrade({ orderId: large, amount: 9_999_999_999, currency: 'CNY' });
    await control.pay(small, new Date('2020-03-01T02:00:00Z'));
    await control.pay(large, new Date('2020-03-01T03:30:15Z'));
    await control.setClock(new Date('2020-03-01T04:00:00Z'));
    await gateway.submitRefund({ orderId: large, outRequestNo: 'rf-large', amount: 1234, reason: null });
    await control.setClock(new Date('2020-03-02T02:00:00Z'));

    await expect(gateway.statementLocation('2020-03-02')).rejects.toThrow(StatementNotReadyError);
    const location = await gateway.statementLocation(BILL_DATE);
    expect(location.format).toEqual({ encoding: 'gbk', zipped: true });
    const file = await gateway.downloadStatement(location);
    const entries = await collect(gateway.readStatement(file, location.format));

    const rows = entries.flatMap((entry) => (entry.kind === 'row' ? [entry.row] : []));
    expect(entries.filter((entry) => entry.kind === 'rejected')).toEqual([]);
    expect(rows).toEqual([
      expect.objectContaining({
        orderId: small,
        type: 'pay',
        amount: 1,
        fee: 0,
        currency: 'CNY',
        status: 'TRADE_SUCCESS',
        outRequestNo: null,
        occurredAt: new Date('2020-03-01T02:00:00Z'),
      }),
      expect.objectContaining({
        orderId: large,
        type: 'pay',
        amount: 9_999_999_999,
        fee: 60_000_000,
        status: 'TRADE_SUCCESS',
        occurredAt: new Date('2020-03-01T03:30:15Z'),
      }),
      expect.objectContaining({
        orderId: large,
        type: 'refund',
        amount: 1234,
        fee: -7,
        status: 'REFUND_SUCCESS',
        outRequestNo: 'rf-large',
        occurredAt: new Date('2020-03-01T04:00:00Z'),
      }),
    ]);
    expect(rows[1]?.tradeNo).toBe((await gateway.queryTrade(large)).tradeNo);
    const summaries = entries.flatMap((entry) => (entry.kind === 'summary' ? [entry.summary] : []));
    expect(summaries).toEqual([
      {
        rows: 3,
        payCount: 2,
        payAmount: 10_000_000_000,
        refundCount: 1,
        refundAmount: 1234,
        fee: 59_999_993,
      },
    ]);
  });

  it('is the real format: a zip of GBK files named in GBK, the detail header, # lines and 合计 lines', async () => {
    await control.setClock(new Date('2020-03-02T02:00:00Z'));
    const location = await gateway.statementLocation(BILL_DATE);
    const zip = new Uint8Array(await (await fetch(location.downloadUrl)).arrayBuffer());
    // Read without the adapter: entry names are GBK bytes, which fflate hands over as Latin-1.
    const files = Object.entries(unzipSync(zip)).map(
      ([name, bytes]) =>
        [iconv.decode(Buffer.from(name, 'latin1'), 'gbk'), iconv.decode(Buffer.from(bytes), 'gbk')] as const,
    );
    expect(files.map(([name]) => name)).toEqual([
      '208800000000_20200301_业务明细.csv',
      '208800000000_20200301_业务明细(汇总).csv',
    ]);
    const detail = files[0]?.[1].split('\r\n') ?? [];
    expect(detail[0]).toBe('#支付宝业务明细查询');
    expect(detail[4]).toMatch(
      /^支付宝交易号,商户订单号,业务类型,.*,订单金额（元）,商家实收（元）,.*,退款批次号\/请求号,服务费（元）,/,
    );
    expect(detail).toContain('#交易合计：2笔，商家实收：100000000.00元，商家优惠：0.00元');
    expect(detail).toContain('#退款合计：1笔，商家实收：-12.34元，商家优惠：0.00元');
  });

  it("the fake's bill faults change what the bill prints, never the trades; malformed knobs are refused", async () => {
    const day = '2020-04-01';
    const kept = newOrderId();
    const omitted = newOrderId();
    for (const orderId of [kept, omitted]) {
      await gateway.openTrade({ orderId, amount: 10_000, currency: 'CNY' });
      await control.pay(orderId, new Date('2020-04-01T02:00:00Z'));
    }
    await control.setClock(new Date('2020-04-02T02:00:00Z'));
    await expect(control.setBillFaults(day, { amountDeltas: { [kept]: 0 } })).rejects.toThrow(/HTTP 400/);
    await expect(
      control.setBillFaults(day, { extraPayments: [{ outTradeNo: 'ghost', amountFen: 1.5 }] }),
    ).rejects.toThrow(/HTTP 400/);
    await control.setBillFaults(day, {
      omitPayments: [omitted],
      extraPayments: [{ outTradeNo: 'ghost-1', amountFen: 4_200 }],
      amountDeltas: { [kept]: -1 },
      totalsDelta: { payCount: 1, fee: 5 },
    });
    const location = await gateway.statementLocation(day);
    const entries = await collect(
      gateway.readStatement(await gateway.downloadStatement(location), location.format),
    );
    const rows = entries.flatMap((entry) => (entry.kind === 'row' ? [entry.row] : []));
    expect(rows.map((row) => [row.orderId, row.type, row.amount, row.fee])).toEqual([
      [kept, 'pay', 9_999, 60],
      ['ghost-1', 'pay', 4_200, 25],
    ]);
    expect(rows[1]?.tradeNo).toMatch(/^\d{28}$/);
    // The 合计 lines print what the rows add up to, plus the delta: control totals that fail.
    expect(entries.flatMap((entry) => (entry.kind === 'summary' ? [entry.summary] : []))).toEqual([
      { rows: 3, payCount: 3, payAmount: 14_199, refundCount: 0, refundAmount: 0, fee: 90 },
    ]);
    expect(await gateway.queryTrade(omitted)).toMatchObject({ status: 'TRADE_SUCCESS', amount: 10_000 });
    expect(await gateway.queryTrade(kept)).toMatchObject({ amount: 10_000 });
    await control.setBillFaults(day, {});
    const clean = await gateway.statementLocation(day);
    const again = await collect(gateway.readStatement(await gateway.downloadStatement(clean), clean.format));
    expect(again.flatMap((entry) => (entry.kind === 'row' ? [entry.row.amount] : []))).toEqual([
      10_000, 10_000,
    ]);
  });

  it('a download URL is good for 30 s: then StatementUrlExpiredError', async () => {
    await control.setClock(new Date('2020-03-02T02:00:00Z'));
    const location = await gateway.statementLocation(BILL_DATE);
    await control.setClock(new Date('2020-03-02T02:00:31Z'));
    await expect(gateway.downloadStatement(location)).rejects.toThrow(StatementUrlExpiredError);
  });
});

describe('the Alipay gateway: signatures and outages', () => {
  it('refuses a reply signed with any key but Alipay’s: ProviderReplyError', async () => {
    const orderId = newOrderId();
    await gateway.openTrade({ orderId, amount: 100, currency: 'CNY' });
    await control.pay(orderId);
    await control.setFaults({ signWithOtherKey: true });
    await expect(gateway.queryTrade(orderId)).rejects.toThrow(ProviderReplyError);
    await expect(gateway.queryTrade(orderId)).rejects.toThrow(/signature/);
    await expect(
      gateway.submitRefund({ orderId, outRequestNo: 'rf-forged', amount: 1, reason: null }),
    ).rejects.toThrow(ProviderReplyError);
    await control.setFaults({});
    await expect(gateway.queryTrade(orderId)).resolves.toMatchObject({ status: 'TRADE_SUCCESS' });
  });

  it.each([500, 400])('ACQ.SYSTEM_ERROR (HTTP %i) may pass: ProviderUnavailableError', async (status) => {
    await control.setFaults({ systemErrors: 1, systemErrorStatus: status });
    await expect(gateway.queryTrade(newOrderId())).rejects.toThrow(ProviderUnavailableError);
    await expect(gateway.queryTrade(newOrderId())).resolves.toMatchObject({ status: 'NOT_FOUND' });
  });

  it('a timeout or a closed port may pass: ProviderUnavailableError', async () => {
    await control.setFaults({ delayMs: 1_500 });
    const impatient = gatewayWith({ timeoutMs: 300 });
    await expect(impatient.queryTrade(newOrderId())).rejects.toThrow(ProviderUnavailableError);
    const down = gatewayWith({ endpoint: 'http://127.0.0.1:1' });
    await expect(down.closeTrade(newOrderId())).rejects.toThrow(ProviderUnavailableError);
  });

  it('the fake refuses a request signed with another key, and accepts one signed by the documented rule', async () => {
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const before = fake.refusedSignatures();
    const impostor = gatewayWith({
      privateKey: stranger.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });
    await expect(impostor.queryTrade(newOrderId())).rejects.toThrow(/invalid-signature/);
    expect(fake.refusedSignatures()).toBe(before + 1);

    // Signed here with node:crypto, by the rule, without the SDK.
    const body = JSON.stringify({ out_trade_no: 'nobody' });
    const authString = `app_id=${APP_ID},nonce=${randomUUID()},timestamp=${Date.now()}`;
    const signed = (content: string) =>
      `ALIPAY-SHA256withRSA ${authString},sign=${createSign('RSA-SHA256').update(content).sign(merchant.privateKey, 'base64')}`;
    const post = (authorization: string, sent: string) =>
      fetch(`${fake.url}/v3/alipay/trade/query`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: sent,
      });
    const good = signed(`${authString}\nPOST\n/v3/alipay/trade/query\n${body}\n`);
    const accepted = await post(good, body);
    expect(accepted.status).toBe(400);
    expect(await accepted.json()).toMatchObject({ code: 'ACQ.TRADE_NOT_EXIST' });
    // The same signature over another body, or without the trailing newline of the rule: refused.
    const tampered = await post(good, JSON.stringify({ out_trade_no: 'somebody' }));
    expect(tampered.status).toBe(401);
    expect(await tampered.json()).toMatchObject({ code: 'invalid-signature' });
    const sloppy = await post(signed(`${authString}\nPOST\n/v3/alipay/trade/query\n${body}`), body);
    expect(sloppy.status).toBe(401);
    expect(fake.refusedSignatures()).toBe(before + 3);
  });
});

describe('the Alipay configuration', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'payrecon-alipay-'));
  const file = (name: string, text: string) => {
    const full = path.join(dir, name);
    writeFileSync(full, text);
    return full;
  };

  it('PAYMENT_PROVIDER defaults to the simulator, and the gateway follows it', () => {
    const config = loadConfig({});
    expect(config.PAYMENT_PROVIDER).toBe('simulator');
    expect(createPaymentGateway(config)).toBeInstanceOf(HttpPaymentGateway);
  });

  it('PAYMENT_PROVIDER=alipay names every missing variable, and a key file that is not there', () => {
    expect(() => loadConfig({ PAYMENT_PROVIDER: 'alipay' })).toThrow(ConfigError);
    expect(() => loadConfig({ PAYMENT_PROVIDER: 'alipay' })).toThrow(
      /ALIPAY_APP_ID=\(unset\).*\n.*ALIPAY_PRIVATE_KEY_FILE=\(unset\).*\n.*ALIPAY_PUBLIC_KEY_FILE=\(unset\)/,
    );
    const partial = () =>
      loadConfig({
        PAYMENT_PROVIDER: 'alipay',
        ALIPAY_APP_ID: APP_ID,
        ALIPAY_PUBLIC_KEY_FILE: file('p.pem', 'x'),
      });
    expect(partial).toThrow(/ALIPAY_PRIVATE_KEY_FILE=\(unset\)/);
    expect(partial).not.toThrow(/ALIPAY_APP_ID|ALIPAY_PUBLIC_KEY_FILE=/);
    expect(() =>
      loadConfig({ PAYMENT_PROVIDER: 'alipay', ALIPAY_PRIVATE_KEY_FILE: path.join(dir, 'none.pem') }),
    ).toThrow(/ALIPAY_PRIVATE_KEY_FILE=.*readable file/);
    expect(() => loadConfig({ PAYMENT_PROVIDER: 'paypal' })).toThrow(/PAYMENT_PROVIDER=/);
  });

  it('reads the keys from files (PEM or the platform’s bare base64), and refuses a swapped one without printing it', async () => {
    const bareBase64 = merchant.privateKey.export({ type: 'pkcs1', format: 'der' }).toString('base64');
    const config = loadConfig({
      PAYMENT_PROVIDER: 'alipay',
      ALIPAY_APP_ID: APP_ID,
      ALIPAY_PRIVATE_KEY_FILE: file('app-private.txt', bareBase64),
      ALIPAY_PUBLIC_KEY_FILE: file('alipay-public.pem', fake.alipayPublicKey),
      ALIPAY_ENDPOINT: fake.url,
    });
    const configured = createPaymentGateway(config);
    expect(configured).toBeInstanceOf(AlipayPaymentGateway);
    const orderId = newOrderId();
    await expect(configured.openTrade({ orderId, amount: 1, currency: 'CNY' })).resolves.toMatchObject({
      status: 'WAIT_BUYER_PAY',
    });

    const swapped = { ...config, ALIPAY_PUBLIC_KEY_FILE: file('swapped.pem', merchantPrivatePem) };
    expect(() => createAlipayGateway(swapped)).toThrow(/ALIPAY_PUBLIC_KEY_FILE=.*private key/);
    const garbage = { ...config, ALIPAY_PRIVATE_KEY_FILE: file('garbage.pem', 'not a key') };
    expect(() => createAlipayGateway(garbage)).toThrow(ConfigError);
    try {
      createAlipayGateway(swapped);
    } catch (error) {
      expect((error as Error).message).not.toContain(merchantPrivatePem.split('\n')[1]);
    }
  });
});

describe('yuan and fen', () => {
  it('round-trips every whole number of fen through its yuan text', () => {
    fc.assert(
      fc.property(fc.maxSafeInteger(), (fen) => {
        expect(yuanToFen(fenToYuan(fen))).toBe(fen);
      }),
    );
  });

  it('reads the digits, never a float: the answer equals the digits taken as an integer', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 89_999_999_999_999n }),
        fc.integer({ min: 0, max: 99 }),
        fc.boolean(),
        (whole, cents, negative) => {
          const text = `${negative ? '-' : ''}${whole}.${String(cents).padStart(2, '0')}`;
          const expected = (whole * 100n + BigInt(cents)) * (negative ? -1n : 1n);
          expect(BigInt(yuanToFen(text))).toBe(expected === 0n ? 0n : expected);
        },
      ),
    );
    // Where floats go wrong: 0.29 * 100 = 28.999999999999996, 1.15 * 100 = 114.99999999999999.
    expect(yuanToFen('0.29')).toBe(29);
    expect(yuanToFen('1.15')).toBe(115);
    expect(yuanToFen('0.01')).toBe(1);
    expect(yuanToFen('99999999.99')).toBe(9_999_999_999);
    expect(yuanToFen('90071992547409.91')).toBe(Number.MAX_SAFE_INTEGER);
    expect(yuanToFen('12.3')).toBe(1230);
    expect(yuanToFen('100')).toBe(10_000);
  });

  it.each(['0.001', '1e3', '', ' ', '+1', '.5', '1.', '0x10', '1,000.00', '90071992547409.92', 'NaN'])(
    'refuses %j',
    (text) => {
      expect(() => yuanToFen(text)).toThrow(RangeError);
    },
  );
});
