import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProviderActivities } from '../activities/provider';
import { runCli } from '../src/cli/main';
import { findOrder, insertOrder } from '../src/db/orders';
import { requestRefund } from '../src/order/refund';
import { type CreateOrderRequest, createOrder } from '../src/order/start';
import { ConfigError, loadConfig } from '../src/platform/config';
import { noMetrics } from '../src/platform/metrics';
import { createPaymentGateways, type PaymentGateways, ProviderNotEnabledError } from '../src/provider/select';
import { billDayBounds } from '../src/provider/statement-format';
import { startReconciliation } from '../src/reconciliation/start';
import { type FakeWechatPay, startFakeWechatPay } from '../tools/providers/wechatpay/server';
import { SimulatorClient } from '../tools/simulator/client';
import { type RunningSimulator, startSimulator } from '../tools/simulator/server';
import type { ReconciliationSummary } from '../workflows/reconciliation';
import { inProcessCli } from './support/cli';
import { deleteTopology, testConfig, uniqueSuffix } from './support/env';
import { startRecordingProxy } from './support/recording-proxy';
import { type Stack, startStack } from './support/stack';

/**
 * Two providers at once on the real services (Temporal dev server, Postgres, RabbitMQ): the payment
 * simulator and the fake WeChat Pay, each behind a proxy that records the requests it received. Orders
 * on each are queried, closed, paid and refunded at their own provider only, and each provider's
 * reconciliation of the day matches its own orders only.
 */

const MCH_ID = '1900000109';
const APP_ID = 'wxd678efh567hg6787';
const SERIAL = '5157F09EFDC096DE15EBE81A47057A7232F1B8E1';
const APIV3_KEY = 'a7cde1ZJB1kG2e7VfTs3jQzaWizur8Gb';
const AMOUNT = 10_000;
/** The bill date this file reconciles (no other test file uses it). */
const DAY = '2024-11-12';

const merchant = generateKeyPairSync('rsa', { modulusLength: 2048 });
const dir = mkdtempSync(path.join(tmpdir(), 'payrecon-providers-test-'));
const write = (name: string, content: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
};

/** An instant of DAY, Asia/Shanghai wall time `hh:mm:ss`. */
const at = (time: string) =>
  new Date(billDayBounds(DAY).start.getTime() + Date.parse(`1970-01-01T${time}Z`)).toISOString();

describe('the simulator and WeChat Pay at once, on the real services', () => {
  const suffix = uniqueSuffix();
  let fake: FakeWechatPay;
  let simulator: RunningSimulator;
  let simulatorProxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let wechatProxy: Awaited<ReturnType<typeof startRecordingProxy>>;
  let gateways: PaymentGateways;
  let stack: Stack;
  let n = 0;
  let env: Record<string, string>;
  const { cli } = inProcessCli(runCli, () => stack.config);
  const orderId = (provider: string) => `pv${suffix}${provider.slice(0, 2)}${++n}`;

  /** DAY belongs to this file: what earlier runs left on it is removed first, on both sides. */
  const clearDay = async () => {
    const { start, end } = billDayBounds(DAY);
    const [from, to] = [start.toISOString(), end.toISOString()];
    await stack.sql.begin(async (tx) => {
      await tx`delete from provider.refunds where order_id in (
        select order_id from provider.trades where paid_at >= ${from} and paid_at < ${to})`;
      await tx`delete from provider.trades where paid_at >= ${from} and paid_at < ${to}`;
      await tx`delete from provider.bill_faults where bill_date = ${DAY}`;
      await tx`delete from refunds where order_id in (select id from orders where paid_at >= ${from} and paid_at < ${to})`;
      await tx`delete from orders where paid_at >= ${from} and paid_at < ${to}`;
      for (const like of ['simulator-pv%', 'wechatpay-pv%']) {
        await tx`delete from reconciliation_statement_rows where statement_id in (
          select id from reconciliation_statements where provider like ${like})`;
        await tx`delete from reconciliation_statement_chunks where statement_id in (
          select id from reconciliation_statements where provider like ${like})`;
        await tx`delete from reconciliation_statements where provider like ${like}`;
        await tx`delete from reconciliation_breaks where provider like ${like}`;
        await tx`delete from reconciliation_runs where provider like ${like}`;
      }
    });
  };

  beforeAll(async () => {
    // payrecon reaches the fake through the proxy, the bill download too (its URL names the proxy).
    wechatProxy = await startRecordingProxy();
    fake = await startFakeWechatPay({
      mchId: MCH_ID,
      appId: APP_ID,
      merchantCertSerial: SERIAL,
      merchantPublicKey: merchant.publicKey,
      publicUrl: wechatProxy.url,
    });
    wechatProxy.forwardTo(fake.url);
    env = {
      PAYMENT_PROVIDER: 'simulator',
      PAYMENT_PROVIDERS: 'simulator,wechatpay',
      WECHATPAY_MCH_ID: MCH_ID,
      WECHATPAY_APP_ID: APP_ID,
      WECHATPAY_MCH_CERT_SERIAL: SERIAL,
      WECHATPAY_MCH_PRIVATE_KEY_FILE: write(
        'apiclient_key.pem',
        merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      ),
      WECHATPAY_PUBLIC_KEY_FILE: write('pub_key.pem', fake.publicKeyPem),
      WECHATPAY_PUBLIC_KEY_ID: fake.publicKeyId,
      WECHATPAY_APIV3_KEY_FILE: write('apiv3.key', APIV3_KEY),
      WECHATPAY_NOTIFY_URL: 'https://shop.example/wechatpay/notify',
      WECHATPAY_ENDPOINT: wechatProxy.url,
      REFUND_LADDER: '1s',
      REFUND_REPEAT: '1s',
    };
    const base = testConfig('providers', env);
    simulator = await startSimulator({ port: 0, config: base });
    simulatorProxy = await startRecordingProxy(simulator.url);
    const config = { ...base, PROVIDER_URL: simulatorProxy.url };
    gateways = createPaymentGateways(config, { ...process.env, ...env });
    stack = await startStack(config, { gateway: gateways });
    await clearDay();
  });

  afterAll(async () => {
    if (stack) await clearDay();
    await stack?.stop();
    await simulator?.close();
    await simulatorProxy?.close();
    await wechatProxy?.close();
    await fake?.close();
    if (stack) await deleteTopology(stack.config);
    rmSync(dir, { recursive: true, force: true });
  });

  const create = (provider: 'simulator' | 'wechatpay', request: Partial<CreateOrderRequest> = {}) =>
    createOrder(
      { db: stack.db, client: stack.temporal, config: stack.config, gateway: gateways },
      {
        orderId: orderId(provider),
        amount: AMOUNT,
        currency: 'CNY',
        ...(provider === 'simulator' ? {} : { provider }),
        ...request,
      },
    );
  const resultOf = (workflowId: string) => stack.temporal.workflow.getHandle(workflowId).result();
  /** The paths a proxy saw that name `id`. */
  const naming = (requests: { method: string; path: string }[], id: string) =>
    requests.filter((r) => r.path.includes(id)).map((r) => `${r.method} ${r.path.split('?')[0]}`);

  let simPaid: string;
  let wxPaid: string;

  it('each order is opened, queried and closed at its own provider: no request crossed', async () => {
    const fast = { payWithinMs: 3_000, pollLadder: { stepsMs: [1_000], repeatMs: 1_000 } };
    const sim = await create('simulator', fast);
    const wx = await create('wechatpay', fast);
    expect(sim.tradeError).toBeNull();
    expect(wx.tradeError).toBeNull();
    expect(await findOrder(stack.db, sim.order.id)).toMatchObject({ provider: 'simulator' });
    expect(await findOrder(stack.db, wx.order.id)).toMatchObject({ provider: 'wechatpay' });

    const [simResult, wxResult] = await Promise.all([resultOf(sim.workflowId), resultOf(wx.workflowId)]);
    expect(simResult).toMatchObject({ status: 'CLOSED' });
    expect(wxResult).toMatchObject({ status: 'CLOSED' });
    expect(await findOrder(stack.db, sim.order.id)).toMatchObject({ status: 'CLOSED' });
    expect(await findOrder(stack.db, wx.order.id)).toMatchObject({ status: 'CLOSED' });

    // Each provider heard of its own order only: opened, queried, closed.
    const simHeard = naming(simulatorProxy.requests, sim.order.id);
    expect(simHeard).toContain(`GET /trades/${sim.order.id}`);
    expect(simHeard).toContain(`POST /trades/${sim.order.id}/close`);
    expect(naming(simulatorProxy.requests, wx.order.id)).toEqual([]);
    const wxHeard = naming(wechatProxy.requests, wx.order.id);
    expect(wxHeard).toContain(`GET /v3/pay/transactions/out-trade-no/${wx.order.id}`);
    expect(wxHeard).toContain(`POST /v3/pay/transactions/out-trade-no/${wx.order.id}/close`);
    expect(naming(wechatProxy.requests, sim.order.id)).toEqual([]);
    // The trade itself was opened at WeChat Pay (its id is in the body, not the path).
    expect(wechatProxy.requests).toContainEqual({ method: 'POST', path: '/v3/pay/transactions/native' });
    expect(await simulatorClient().getTrade(wx.order.id)).toBeNull();
  });

  const simulatorClient = () => new SimulatorClient(simulator.url);

  it('an order on each is paid and refunded at its own provider', async () => {
    const sim = await create('simulator');
    await simulatorClient().pay(sim.order.id, { paidAt: at('10:00:00') });
    const wx = await create('wechatpay', { pollLadder: { stepsMs: [500], repeatMs: 500 } });
    await fakeControl(`/fake/trades/${wx.order.id}/state`, {
      trade_state: 'SUCCESS',
      success_time: at('11:00:00'),
    });
    expect(await resultOf(sim.workflowId)).toMatchObject({ status: 'PAID' });
    expect(await resultOf(wx.workflowId)).toMatchObject({ status: 'PAID' });
    expect(await findOrder(stack.db, wx.order.id)).toMatchObject({
      status: 'PAID',
      paidAt: new Date(at('11:00:00')),
    });

    const deps = { db: stack.db, client: stack.temporal, config: stack.config };
    const simRefund = await requestRefund(deps, { orderId: sim.order.id, amount: AMOUNT / 2 });
    const wxRefund = await requestRefund(deps, { orderId: wx.order.id, amount: AMOUNT / 2 });
    // WeChat Pay answers PROCESSING; the refund goes through at WeChat, and the query finds it.
    await eventuallyOk(() =>
      fakeControl(`/fake/refunds/${wxRefund.refund.outRequestNo}/outcome`, {
        status: 'SUCCESS',
        success_time: at('15:00:00'),
      }),
    );
    expect(await resultOf(simRefund.workflowId)).toMatchObject({ phase: 'SUCCEEDED' });
    expect(await resultOf(wxRefund.workflowId)).toMatchObject({ phase: 'SUCCEEDED' });
    const refunded = await stack.sql<{ order_id: string; status: string }[]>`
      select order_id, status from refunds where order_id in (${sim.order.id}, ${wx.order.id}) order by order_id`;
    expect(refunded.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);

    // The simulator took its refund by order path; WeChat Pay by out_refund_no; neither saw the other's.
    expect(naming(simulatorProxy.requests, sim.order.id)).toContain(`POST /trades/${sim.order.id}/refunds`);
    expect(naming(simulatorProxy.requests, wx.order.id)).toEqual([]);
    expect(naming(simulatorProxy.requests, wxRefund.refund.outRequestNo)).toEqual([]);
    expect(wechatProxy.requests).toContainEqual({ method: 'POST', path: '/v3/refund/domestic/refunds' });
    expect(naming(wechatProxy.requests, wxRefund.refund.outRequestNo)).toContain(
      `GET /v3/refund/domestic/refunds/${wxRefund.refund.outRequestNo}`,
    );
    expect(naming(wechatProxy.requests, sim.order.id)).toEqual([]);
    expect(naming(wechatProxy.requests, simRefund.refund.outRequestNo)).toEqual([]);

    // Both refunds happened "on DAY" on every side (the rig moves the clock, not the status).
    await stack.sql`update provider.refunds set settled_at = ${at('15:00:00')} where out_request_no = ${simRefund.refund.outRequestNo}`;
    await stack.sql`update refunds set settled_at = ${at('15:00:05')} where id in (${simRefund.refund.id}, ${wxRefund.refund.id})`;
    simPaid = sim.order.id;
    wxPaid = wx.order.id;
  });

  it("each provider's reconciliation of the day sees its own orders and refunds only", async () => {
    expect(simPaid && wxPaid).toBeTruthy();
    const run = async (provider: string) => {
      const handle = await startReconciliation(
        stack.temporal,
        { ...stack.config, RECON_PROVIDER: `${provider}-pv${suffix}` },
        DAY,
      );
      expect(handle.workflowId).toBe(`reconciliation-${provider}-pv${suffix}-${DAY}`);
      return (await handle.result()) as ReconciliationSummary;
    };
    // The simulator's statement also lists a payment for the WeChat Pay order: another provider's word
    // about an order that is not its own.
    await simulatorClient().setBillFaults(DAY, { extraPayments: [{ orderId: wxPaid, amount: AMOUNT }] });
    const sim = await run('simulator');
    // WeChat Pay's day through the operator's command, with the same environment as the worker.
    const wxRun = await cli(['recon', 'run', '--provider', `wechatpay-pv${suffix}`, DAY, '--json'], env);
    expect(wxRun.code, wxRun.stderr).toBe(0);
    const { workflowId, summary: wx } = JSON.parse(wxRun.stdout) as {
      workflowId: string;
      summary: ReconciliationSummary;
    };
    expect(workflowId).toBe(`reconciliation-wechatpay-pv${suffix}-${DAY}`);
    expect(wx.provider).toBe(`wechatpay-pv${suffix}`);
    for (const summary of [sim, wx]) {
      // One payment and one refund each side, matched: had either run seen the other provider's order,
      // it would count it as ours and report it missing at its provider.
      expect(summary.ours).toEqual({
        payCount: 1,
        payAmount: AMOUNT,
        refundCount: 1,
        refundAmount: AMOUNT / 2,
      });
      expect(summary.theirs).toMatchObject({ refundCount: 1 });
      expect(summary.matchedPayments).toBe(1);
      expect(summary.statement.controlTotalsOk).toBe(true);
    }
    expect(wx.theirs).toMatchObject({ payCount: 1, payAmount: AMOUNT });
    expect(wx.breaks).toEqual({});
    // The simulator's row for the WeChat Pay order is a break of the simulator's day, not a payment of
    // that order: no order of ours at the simulator, so nothing is handed to its workflow.
    expect(sim.theirs).toMatchObject({ payCount: 2, payAmount: 2 * AMOUNT });
    expect(sim.breaks).toEqual({ MISSING_LOCALLY: { OPEN: 1 } });
    expect(sim.healing).toEqual({});
    const breaks = await stack.sql`
      select provider, kind, ref, ours, heal_action from reconciliation_breaks
      where provider in (${`simulator-pv${suffix}`}, ${`wechatpay-pv${suffix}`})`;
    expect(breaks).toEqual([
      {
        provider: `simulator-pv${suffix}`,
        kind: 'MISSING_LOCALLY',
        ref: wxPaid,
        ours: null,
        heal_action: null,
      },
    ]);
    expect(await findOrder(stack.db, wxPaid)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      settledBy: 'poll',
    });

    // A provider this shop has not enabled has no day to reconcile, nor orders to open.
    const alipayRun = await cli(['recon', 'run', '--provider', 'alipay', DAY], env);
    expect(alipayRun.code).toBe(2);
    expect(alipayRun.stderr).toContain(
      'provider alipay: not enabled here (PAYMENT_PROVIDERS: simulator, wechatpay)',
    );
    const alipayOrder = await cli(['order', 'create', '--amount', '100', '--provider', 'alipay'], env);
    expect(alipayOrder.code).toBe(2);
    expect(alipayOrder.stderr).toContain(
      'payment provider alipay is not enabled (PAYMENT_PROVIDERS: simulator, wechatpay)',
    );
    // Each statement came from its own provider.
    expect(wechatProxy.requests.filter((r) => r.path.startsWith('/v3/bill/tradebill'))).not.toEqual([]);
    expect(wechatProxy.requests.some((r) => r.path.startsWith('/v3/billdownload/file'))).toBe(true);
    expect(simulatorProxy.requests.some((r) => r.path.startsWith(`/bills/${DAY}`))).toBe(true);
  });

  async function fakeControl(pathname: string, body: unknown) {
    const response = await fetch(`${fake.url}${pathname}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(`${pathname}: ${response.status} ${await response.text()}`);
    return response.json();
  }
});

/** Retries `call` until it succeeds (the refund reaches the fake a moment after its workflow starts). */
async function eventuallyOk<T>(call: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

describe('several providers: configuration and refusals', () => {
  const wechatEnv = () => {
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyDir = mkdtempSync(path.join(tmpdir(), 'payrecon-providers-config-'));
    const file = (name: string, content: string) => {
      const full = path.join(keyDir, name);
      writeFileSync(full, content);
      return full;
    };
    return {
      keyDir,
      env: {
        WECHATPAY_MCH_ID: MCH_ID,
        WECHATPAY_APP_ID: APP_ID,
        WECHATPAY_MCH_CERT_SERIAL: SERIAL,
        WECHATPAY_MCH_PRIVATE_KEY_FILE: file(
          'k.pem',
          keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        ),
        WECHATPAY_PUBLIC_KEY_FILE: file(
          'p.pem',
          keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
        ),
        WECHATPAY_PUBLIC_KEY_ID: 'PUB_KEY_ID_0114232134912410000000000000',
        WECHATPAY_APIV3_KEY_FILE: file('v3.key', APIV3_KEY),
        WECHATPAY_NOTIFY_URL: 'https://shop.example/wechatpay/notify',
      } as Record<string, string>,
    };
  };

  it('PAYMENT_PROVIDERS with wechatpay and a missing WECHATPAY_* variable fails at start, naming it', () => {
    const { keyDir, env } = wechatEnv();
    try {
      const complete = loadConfig({ PAYMENT_PROVIDERS: 'simulator,wechatpay', ...env });
      expect(complete.PAYMENT_PROVIDERS).toEqual(['simulator', 'wechatpay']);
      expect(complete.PAYMENT_PROVIDER).toBe('simulator');
      expect(createPaymentGateways(complete, env).enabled).toEqual(['simulator', 'wechatpay']);

      const { WECHATPAY_PUBLIC_KEY_ID: _, ...missing } = env;
      const start = () => loadConfig({ PAYMENT_PROVIDERS: 'simulator,wechatpay', ...missing });
      expect(start).toThrow(ConfigError);
      expect(start).toThrow(/WECHATPAY_PUBLIC_KEY_ID/);
      // PAYMENT_PROVIDER=wechatpay alone needs them as much.
      expect(() => loadConfig({ PAYMENT_PROVIDER: 'wechatpay', ...missing })).toThrow(
        /WECHATPAY_PUBLIC_KEY_ID/,
      );
      // Without wechatpay enabled, nothing of it is asked for.
      expect(loadConfig({}).PAYMENT_PROVIDERS).toBeUndefined();
      // The provider of new orders and of the reconciliation must be enabled; an unknown one is named.
      expect(() =>
        loadConfig({ PAYMENT_PROVIDER: 'wechatpay', PAYMENT_PROVIDERS: 'simulator', ...env }),
      ).toThrow(
        /PAYMENT_PROVIDER=wechatpay: the provider of new orders must be one of PAYMENT_PROVIDERS \(simulator\)/,
      );
      expect(() => loadConfig({ PAYMENT_PROVIDERS: 'simulator,paypal' })).toThrow(/PAYMENT_PROVIDERS=/);
      expect(() => loadConfig({ RECON_PROVIDER: 'wechatpay' })).toThrow(/RECON_PROVIDER=wechatpay/);
      expect(loadConfig({ PAYMENT_PROVIDER: 'wechatpay', ...env }).RECON_PROVIDER).toBe('wechatpay');
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  });

  it('an order naming a provider not enabled is refused before anything is written; one already stored fails its provider call for good, naming it', async () => {
    const config = testConfig('providers-refusal');
    const stack = await startStack(config);
    try {
      const id = `pvr${uniqueSuffix()}`;
      await expect(
        createOrder(
          { db: stack.db, client: stack.temporal, config, gateway: createPaymentGateways(config) },
          { orderId: id, amount: 100, provider: 'alipay' },
        ),
      ).rejects.toThrow(
        new ProviderNotEnabledError('payment provider alipay is not enabled (PAYMENT_PROVIDERS: simulator)'),
      );
      await expect(
        createOrder(
          { db: stack.db, client: stack.temporal, config },
          { orderId: id, amount: 100, provider: 'paypal' },
        ),
      ).rejects.toThrow(/unknown payment provider "paypal"/);
      expect(await findOrder(stack.db, id)).toBeUndefined();

      // A row of a provider this worker has no gateway for (PAYMENT_PROVIDERS changed since, say).
      await insertOrder(stack.db, {
        id,
        amount: 100,
        currency: 'CNY',
        provider: 'alipay',
        payDeadline: new Date(Date.now() + 60_000),
      });
      const activities = createProviderActivities(createPaymentGateways(config), noMetrics, stack.db);
      const failure = await activities.queryTrade(id).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({
        nonRetryable: true,
        type: 'ProviderNotEnabledError',
        message: `order ${id}: payment provider "alipay" is not enabled here (PAYMENT_PROVIDERS: simulator)`,
      });
      await stack.sql`delete from orders where id = ${id}`;
    } finally {
      await stack.stop();
      await deleteTopology(config);
    }
  });
});
