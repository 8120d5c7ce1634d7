import { isTradeStatus, type TradeSnapshot } from '../domain';
import {
  type PaymentGateway,
  ProviderReplyError,
  ProviderUnavailableError,
  type TradeRequest,
} from './gateway';

interface HttpGatewayOptions {
  baseUrl: string;
  /** Per request; the activity's own timeout bounds the whole call. */
  timeoutMs?: number;
}

/** PaymentGateway over the payment simulator's HTTP API (tools/simulator/server.ts). */
export class HttpPaymentGateway implements PaymentGateway {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(options: HttpGatewayOptions) {
    this.baseUrl = options.baseUrl.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  openTrade(request: TradeRequest): Promise<TradeSnapshot> {
    return this.call('POST', request.orderId, '/trades', request);
  }

  queryTrade(orderId: string): Promise<TradeSnapshot> {
    return this.call('GET', orderId, `/trades/${encodeURIComponent(orderId)}`);
  }

  closeTrade(orderId: string): Promise<TradeSnapshot> {
    return this.call('POST', orderId, `/trades/${encodeURIComponent(orderId)}/close`);
  }

  private async call(method: string, orderId: string, path: string, body?: unknown): Promise<TradeSnapshot> {
    const what = `${method} ${path}`;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        ...(body === undefined
          ? {}
          : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ProviderUnavailableError(
        `payment provider at ${this.baseUrl} is unreachable: ${(error as Error).message}`,
      );
    }
    if (response.status === 404 && method === 'GET') {
      return { orderId, status: 'NOT_FOUND', tradeNo: null, amount: null, currency: null, paidAt: null };
    }
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new ProviderUnavailableError(
        `payment provider at ${this.baseUrl} answered ${what} with HTTP ${response.status}`,
      );
    }
    if (!response.ok) {
      throw new ProviderReplyError(
        `payment provider at ${this.baseUrl} refused ${what} with HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`,
      );
    }
    let json: unknown;
    try {
      json = await response.json();
    } catch (error) {
      throw new ProviderReplyError(
        `payment provider answered ${what} with a body that is not JSON: ${(error as Error).message}`,
      );
    }
    return toSnapshot(orderId, what, json);
  }
}

function toSnapshot(orderId: string, what: string, body: unknown): TradeSnapshot {
  const trade = (body ?? {}) as Record<string, unknown>;
  if (!isTradeStatus(trade.status)) {
    throw new ProviderReplyError(
      `payment provider answered ${what} with an unknown trade status ${JSON.stringify(trade.status)}`,
    );
  }
  return {
    orderId,
    status: trade.status,
    tradeNo: typeof trade.tradeNo === 'string' ? trade.tradeNo : null,
    amount: typeof trade.amount === 'number' ? trade.amount : null,
    currency: typeof trade.currency === 'string' ? trade.currency : null,
    paidAt: typeof trade.paidAt === 'string' ? trade.paidAt : null,
  };
}
