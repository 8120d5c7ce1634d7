import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProviderActivities } from '../activities/provider';
import { createOrder } from '../src/order/start';
import { noMetrics } from '../src/platform/metrics';
import { ProviderRefusedError, ProviderReplyError, ProviderUnavailableError } from '../src/provider/gateway';
import { HttpPaymentGateway } from '../src/provider/http';
import { deleteTopology, testConfig } from './support/env';
import { type Stack, startStack } from './support/stack';

/**
 * The HTTP gateway against a real HTTP server that answers what a test scripts: what a retry can fix
 * (ProviderUnavailableError) is told apart from what it cannot (ProviderReplyError), and the activity
 * turns the latter into a non-retryable failure.
 */
let server: Server;
let gateway: HttpPaymentGateway;
let answer: { status: number; body: string } = { status: 200, body: '{}' };
const requests: { method?: string; url?: string; body: string }[] = [];

const readBody = async (req: IncomingMessage) => {
  let body = '';
  for await (const chunk of req) body += chunk;
  return body;
};

beforeAll(async () => {
  server = createServer(async (req, res) => {
    requests.push({ method: req.method, url: req.url, body: await readBody(req) });
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  gateway = new HttpPaymentGateway({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const trade = (status: unknown) =>
  JSON.stringify({ orderId: 'o1', tradeNo: 'T1', status, amount: 100, currency: 'CNY', paidAt: null });

describe('the provider gateway over HTTP', () => {
  it('reads a known status, and a 404 on a query as "no such trade yet"', async () => {
    answer = { status: 200, body: trade('WAIT_BUYER_PAY') };
    await expect(gateway.queryTrade('o1')).resolves.toMatchObject({
      status: 'WAIT_BUYER_PAY',
      tradeNo: 'T1',
    });
    answer = { status: 404, body: '{"status":"NOT_FOUND"}' };
    await expect(gateway.queryTrade('o1')).resolves.toMatchObject({ status: 'NOT_FOUND', tradeNo: null });
  });

  it('a 404 on a close is the provider\'s "no such trade": nothing to close, not an unreadable answer', async () => {
    answer = { status: 404, body: '{"status":"NOT_FOUND","orderId":"o1"}' };
    await expect(gateway.closeTrade('o1')).resolves.toEqual({
      orderId: 'o1',
      status: 'NOT_FOUND',
      tradeNo: null,
      amount: null,
      currency: null,
      paidAt: null,
    });
    expect(requests.at(-1)).toMatchObject({ method: 'POST', url: '/trades/o1/close' });
  });

  it('opens a trade with a POST of the order id, amount and currency', async () => {
    answer = { status: 201, body: trade('WAIT_BUYER_PAY') };
    await expect(gateway.openTrade({ orderId: 'o1', amount: 100, currency: 'CNY' })).resolves.toMatchObject({
      tradeNo: 'T1',
    });
    expect(requests.at(-1)).toMatchObject({ method: 'POST', url: '/trades' });
    expect(JSON.parse(requests.at(-1)?.body ?? '')).toEqual({ orderId: 'o1', amount: 100, currency: 'CNY' });
  });

  it('a 5xx or a closed port may pass: ProviderUnavailableError', async () => {
    answer = { status: 503, body: '{}' };
    await expect(gateway.queryTrade('o1')).rejects.toBeInstanceOf(ProviderUnavailableError);
    const down = new HttpPaymentGateway({ baseUrl: 'http://127.0.0.1:1', timeoutMs: 1_000 });
    await expect(down.closeTrade('o1')).rejects.toBeInstanceOf(ProviderUnavailableError);
  });

  it('an unknown status, a body that is not JSON or a refused request will not pass: ProviderReplyError', async () => {
    answer = { status: 200, body: trade('TRADE_PENDING') };
    await expect(gateway.queryTrade('o1')).rejects.toThrow(/unknown trade status "TRADE_PENDING"/);
    await expect(gateway.queryTrade('o1')).rejects.toBeInstanceOf(ProviderReplyError);
    answer = { status: 200, body: '<html>' };
    await expect(gateway.closeTrade('o1')).rejects.toBeInstanceOf(ProviderReplyError);
    answer = { status: 409, body: '{"error":"amount differs"}' };
    await expect(gateway.openTrade({ orderId: 'o1', amount: 1, currency: 'CNY' })).rejects.toBeInstanceOf(
      ProviderReplyError,
    );
  });

  it('a well-typed but impossible trade answer (float amount, 4-letter currency, no date) is a ProviderReplyError', async () => {
    const paid = {
      orderId: 'o1',
      tradeNo: 'T1',
      status: 'TRADE_SUCCESS',
      amount: 100,
      currency: 'CNY',
      paidAt: '2026-01-31T08:00:00+08:00',
      refundedAmount: 0,
    };
    answer = { status: 200, body: JSON.stringify(paid) };
    await expect(gateway.queryTrade('o1')).resolves.toMatchObject({ amount: 100, paidAt: paid.paidAt });
    for (const [change, field] of [
      [{ amount: 12.5 }, 'amount'],
      [{ amount: -1 }, 'amount'],
      [{ currency: 'CNYY' }, 'currency'],
      [{ currency: 'cny' }, 'currency'],
      [{ paidAt: 'yesterday' }, 'paidAt'],
      [{ paidAt: '2026-02-31T00:00:00Z' }, 'paidAt'],
      [{ paidAt: null }, 'paidAt'],
      [{ tradeNo: '' }, 'tradeNo'],
      [{ refundedAmount: 0.5 }, 'refundedAmount'],
    ] as const) {
      answer = { status: 200, body: JSON.stringify({ ...paid, ...change }) };
      const error = await gateway.queryTrade('o1').catch((e: unknown) => e);
      expect(error, JSON.stringify(change)).toBeInstanceOf(ProviderReplyError);
      expect((error as Error).message, JSON.stringify(change)).toMatch(
        new RegExp(`unreadable trade: .*${field}`),
      );
      await expect(gateway.closeTrade('o1'), JSON.stringify(change)).rejects.toBeInstanceOf(
        ProviderReplyError,
      );
    }
    // The activity fails for good: the workflow holds the order rather than retrying a write for ever.
    answer = { status: 200, body: JSON.stringify({ ...paid, amount: 12.5 }) };
    const activities = createProviderActivities(gateway, noMetrics);
    const failure = await activities.queryTrade('o1').catch((error: unknown) => error);
    expect(failure).toMatchObject({ nonRetryable: true, type: 'ProviderReplyError' });
  });

  it('a refund request: only a refusal code the gateway knows is a refusal; a 404, an unknown code or an unreadable answer is ambiguous', async () => {
    const request = { orderId: 'o1', outRequestNo: 'o1-R1', amount: 100, reason: null };
    answer = { status: 409, body: '{"error":"trade is TRADE_FINISHED","code":"TRADE_FINISHED"}' };
    const refused = await gateway.submitRefund(request).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ProviderRefusedError);
    expect(refused).toMatchObject({ code: 'TRADE_FINISHED' });
    // A refund with this out_request_no exists already: it may have been executed, so not a refusal.
    for (const ambiguous of [
      { status: 409, body: '{"error":"another amount","code":"OUT_REQUEST_NO_REUSED"}' },
      { status: 409, body: '{"error":"no code"}' },
      { status: 404, body: '{"error":"no trade"}' },
      { status: 200, body: '<html>' },
      { status: 200, body: '{"status":"REFUND_PENDING"}' },
    ]) {
      answer = ambiguous;
      const error = await gateway.submitRefund(request).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProviderReplyError);
      expect(error).not.toBeInstanceOf(ProviderRefusedError);
    }
    const activities = createProviderActivities(gateway, noMetrics);
    answer = { status: 409, body: '{"error":"over","code":"REFUND_AMOUNT_EXCEEDED"}' };
    await expect(activities.submitRefund(request)).rejects.toMatchObject({
      nonRetryable: true,
      type: 'ProviderRefusedError',
    });
    answer = { status: 404, body: '{}' };
    await expect(activities.submitRefund(request)).rejects.toMatchObject({ type: 'ProviderReplyError' });
  });

  it('the activities fail for good on an unreadable answer, and stay retryable on an outage', async () => {
    const activities = createProviderActivities(gateway, noMetrics);
    answer = { status: 200, body: trade(42) };
    const unreadable = await activities.queryTrade('o1').catch((error: unknown) => error);
    expect(unreadable).toBeInstanceOf(ApplicationFailure);
    expect(unreadable).toMatchObject({ nonRetryable: true, type: 'ProviderReplyError' });
    answer = { status: 502, body: '{}' };
    const outage = await activities.closeTrade('o1').catch((error: unknown) => error);
    expect(outage).toBeInstanceOf(ProviderUnavailableError);
  });
});

describe('an impossible trade answer on the real worker', () => {
  const config = testConfig('provider');
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack(config, { gateway, consumer: false });
  });
  afterAll(async () => {
    await stack?.stop();
    await deleteTopology(config);
  });

  it('a paid answer of 12.5 fen holds the order for review at its deadline instead of wedging its workflow', async () => {
    const { order, workflowId } = await createOrder(
      { db: stack.db, client: stack.temporal, config: stack.config },
      { amount: 100, payWithinMs: 1_500, pollLadder: { stepsMs: [3_600_000], repeatMs: 3_600_000 } },
    );
    answer = {
      status: 200,
      body: JSON.stringify({
        orderId: order.id,
        tradeNo: 'T1',
        status: 'TRADE_SUCCESS',
        amount: 12.5,
        currency: 'CNY',
        paidAt: '2026-01-31T00:00:00Z',
      }),
    };
    // Without the gateway's check the answer's row (amount bigint) fails a local activity retried for
    // ever, and the workflow never gets past its final check.
    const result = await Promise.race([
      stack.temporal.workflow.getHandle(workflowId).result(),
      new Promise((resolve) => setTimeout(() => resolve('still running after 20 s'), 20_000)),
    ]);
    expect(result).toMatchObject({ status: 'NEEDS_REVIEW', discrepancies: ['PROVIDER_REPLY_INVALID'] });
    const [row] = await stack.sql`select status from orders where id = ${order.id}`;
    expect(row).toMatchObject({ status: 'NEEDS_REVIEW' });
    expect(requests.some((r) => r.url === `/trades/${order.id}/close`)).toBe(false);
  }, 30_000);
});
