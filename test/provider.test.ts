import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProviderActivities } from '../activities/provider';
import { noMetrics } from '../src/platform/metrics';
import { ProviderRefusedError, ProviderReplyError, ProviderUnavailableError } from '../src/provider/gateway';
import { HttpPaymentGateway } from '../src/provider/http';

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
