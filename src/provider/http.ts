import { TRADE_STATUSES } from '../domain/index';
import { type PaymentGateway, ProviderUnavailableError, type TradeSnapshot } from './gateway';

interface HttpGatewayOptions {
  baseUrl: string;
  /** Per request; the activity's own timeout bounds the whole call. */
  timeoutMs?: number;
}

/** PaymentGateway over the payment simulator's HTTP API (src/simulator/server.ts). */
export class HttpPaymentGateway implements PaymentGateway {
  private readonly baseUrl: string;
  private readonly timeoutMs: number;

  constructor(options: HttpGatewayOptions) {
    this.baseUrl = options.baseUrl.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  queryTrade(orderId: string): Promise<TradeSnapshot> {
    return this.call('GET', orderId, `/trades/${encodeURIComponent(orderId)}`);
  }

  closeTrade(orderId: string): Promise<TradeSnapshot> {
    return this.call('POST', orderId, `/trades/${encodeURIComponent(orderId)}/close`);
  }

  private async call(method: string, orderId: string, path: string): Promise<TradeSnapshot> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ProviderUnavailableError(
        `payment provider at ${this.baseUrl} is unreachable: ${(error as Error).message}`,
      );
    }
    if (response.status === 404) {
      return { orderId, status: 'NOT_FOUND', tradeNo: null, amount: null, currency: null, paidAt: null };
    }
    if (!response.ok) {
      throw new ProviderUnavailableError(
        `payment provider at ${this.baseUrl} answered ${method} ${path} with HTTP ${response.status}`,
      );
    }
    return toSnapshot(orderId, await response.json());
  }
}

function toSnapshot(orderId: string, body: unknown): TradeSnapshot {
  const trade = body as Record<string, unknown>;
  const status = trade.status;
  if (typeof status !== 'string' || !(TRADE_STATUSES as readonly string[]).includes(status)) {
    throw new Error(`payment provider returned an unknown trade status ${JSON.stringify(status)}`);
  }
  return {
    orderId,
    status: status as TradeSnapshot['status'],
    tradeNo: typeof trade.tradeNo === 'string' ? trade.tradeNo : null,
    amount: typeof trade.amount === 'number' ? trade.amount : null,
    currency: typeof trade.currency === 'string' ? trade.currency : null,
    paidAt: typeof trade.paidAt === 'string' ? trade.paidAt : null,
  };
}
