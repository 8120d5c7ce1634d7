import type { StatementLocation } from '../../src/provider/statement-format';
import {
  type HttpMethod,
  JsonHttpClient,
  type JsonReply,
  ServiceHttpError,
  ServiceUnreachableError,
} from '../lib/client';
import type { BillFaults } from './bill-faults';
import type { BillDayStats } from './bills';
import type { GlobalFaults, RefundFaults, TradeFaults } from './faults';
import type { NotificationOutcome } from './notify';
import type { RefundStats } from './refunds';
import type { RefundView, TradeView } from './routes';

/**
 * The one client of the payment simulator's HTTP API (./routes.ts), for everything in the rig that
 * drives it: the demo, the chaos run, the benchmarks, the simulator's CLI and the tests. payrecon
 * itself never uses it: it reaches the provider through src/provider (PaymentGateway).
 */

/** Nothing answered at the simulator's URL (not started, wrong PROVIDER_URL, timed out). */
export class SimulatorUnreachableError extends ServiceUnreachableError {
  override name = 'SimulatorUnreachableError';
}

/** The simulator answered with an HTTP error; `body` is its JSON (`{ error, ... }`). */
export class SimulatorHttpError extends ServiceHttpError {
  override name = 'SimulatorHttpError';
}

export type SimulatorReply<T = Record<string, unknown>> = JsonReply<T>;

/** A trade as `POST /trades` answers it. */
export interface OpenedTrade extends TradeView {
  /** false: the order already had this trade (same amount and currency). */
  created: boolean;
}

export interface PayOptions {
  /** Per-payment fault knobs on top of the trade's stored ones. */
  faults?: TradeFaults;
  /** Pay even a closed trade (a payment racing the close). */
  force?: boolean;
  /** The provider's time of the payment (ISO), default now. */
  paidAt?: string;
}

/** What `POST /trades/:orderId/pay` answers: the paid trade and what became of its notification. */
export interface PaymentReply {
  trade: TradeView;
  notification: NotificationOutcome;
}

export interface RefundRequestOptions {
  /** The shop's idempotency key: the same one again returns the same refund and never refunds twice. */
  outRequestNo: string;
  /** Minor units, more than 0. */
  amount: number;
  reason?: string | null;
  /** This refund's knobs (processingMs, fail, and its notification's drop, duplicate, delayMs, corrupt, forge). */
  faults?: RefundFaults;
}

/** What `POST /trades/:orderId/refunds` answers: the refund, and its notification if it ended at once. */
export interface RefundReply extends RefundView {
  /** false: this outRequestNo was known already, and nothing was done again. */
  created: boolean;
  notification: NotificationOutcome | null;
}

export interface SimulatorHealth {
  status: 'ok' | 'degraded';
  database: 'up' | 'down';
  broker: 'connected' | 'disconnected';
  pendingPublishes: number;
  delayedNotifications: number;
  processingRefunds: number;
}

/** A downloaded bill: the file's bytes as served (maybe zipped, maybe GBK) and its content type. */
export interface DownloadedBill {
  bytes: Buffer;
  contentType: string;
  fileName: string | null;
}

export class SimulatorClient extends JsonHttpClient<HttpMethod, SimulatorHealth> {
  constructor(url: string, options: { timeoutMs?: number } = {}) {
    super(
      url,
      {
        name: 'the payment simulator',
        startWith: 'npm run simulator',
        unreachable: SimulatorUnreachableError,
        httpError: SimulatorHttpError,
      },
      options,
    );
  }

  /** Opens the order's trade (idempotent for the same amount and currency). */
  openTrade(trade: {
    orderId: string;
    amount: number;
    currency: string;
    faults?: TradeFaults;
  }): Promise<OpenedTrade> {
    return this.ok('POST', '/trades', trade);
  }

  /** The trade as the provider's status query answers it; null when the order has none. */
  async getTrade(orderId: string): Promise<TradeView | null> {
    const path = tradePath(orderId);
    const reply = await this.request<TradeView>('GET', path);
    if (reply.status === 404) return null;
    return this.check('GET', path, reply);
  }

  /**
   * The buyer pays; resolves once the notification went as its faults say (published copies confirmed
   * by the broker). An HTTP error (404 no trade, 409 not payable, 502 paid but not published) throws
   * SimulatorHttpError with the reply's body.
   */
  pay(orderId: string, options: PayOptions = {}): Promise<PaymentReply> {
    return this.ok('POST', `${tradePath(orderId)}/pay`, options);
  }

  closeTrade(orderId: string): Promise<TradeView & { closed: boolean }> {
    return this.ok('POST', `${tradePath(orderId)}/close`);
  }

  /** Ends the trade's refund window (TRADE_SUCCESS → TRADE_FINISHED); 409 from any other status. */
  finishTrade(orderId: string): Promise<TradeView> {
    return this.ok('POST', `${tradePath(orderId)}/finish`);
  }

  /**
   * Requests a refund (idempotent by outRequestNo). 409 (SimulatorHttpError) when the trade is not
   * refundable, the amount exceeds what is left, or the outRequestNo was used for another amount; 404
   * when the order has no trade.
   */
  refund(orderId: string, request: RefundRequestOptions): Promise<RefundReply> {
    return this.ok('POST', `${tradePath(orderId)}/refunds`, request);
  }

  /** A refund by its outRequestNo; null when the provider does not know it. */
  async getRefund(orderId: string, outRequestNo: string): Promise<RefundView | null> {
    const path = `${tradePath(orderId)}/refunds/${encodeURIComponent(outRequestNo)}`;
    const reply = await this.request<RefundView>('GET', path);
    if (reply.status === 404) return null;
    return this.check('GET', path, reply);
  }

  /** The order's refunds, oldest first. */
  async listRefunds(orderId: string): Promise<RefundView[]> {
    return (await this.ok<{ refunds: RefundView[] }>('GET', `${tradePath(orderId)}/refunds`)).refunds;
  }

  /**
   * Refund counts of one order (or of every order): a refund executed twice shows as `maxExecutions` > 1
   * or `executions` > `succeeded`.
   */
  refundStats(orderId?: string): Promise<RefundStats> {
    const query = orderId === undefined ? '' : `?orderId=${encodeURIComponent(orderId)}`;
    return this.ok('GET', `/refunds/stats${query}`);
  }

  /** Replaces the trade's stored fault knobs. */
  setTradeFaults(orderId: string, faults: TradeFaults): Promise<{ orderId: string; faults: TradeFaults }> {
    return this.ok('PUT', `${tradePath(orderId)}/faults`, faults);
  }

  /**
   * Where to download the day's trade statement (YYYY-MM-DD, Asia/Shanghai), until `expiresAt`. A
   * future day throws SimulatorHttpError 409 with `body.code` BILL_NOT_READY; a bad date 400.
   */
  billDownloadUrl(billDate: string): Promise<StatementLocation> {
    return this.ok('GET', `/bills/${encodeURIComponent(billDate)}/download-url`);
  }

  /**
   * The file at a download URL, raw. An expired URL throws SimulatorHttpError 410 (`body.code`
   * URL_EXPIRED), an unknown one 404.
   */
  async downloadBill(downloadUrl: string): Promise<DownloadedBill> {
    let response: Response;
    try {
      response = await fetch(downloadUrl, { signal: AbortSignal.timeout(120_000) });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause ?? error;
      throw new SimulatorUnreachableError(`the bill download at ${downloadUrl} failed: ${String(cause)}`);
    }
    if (!response.ok) {
      const text = await response.text();
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(text) as Record<string, unknown>;
      } catch {
        body = { error: text.slice(0, 500) };
      }
      throw new SimulatorHttpError(
        response.status,
        body,
        `the bill download answered HTTP ${response.status}: ${typeof body.error === 'string' ? body.error : text.slice(0, 200)}`,
      );
    }
    const disposition = response.headers.get('content-disposition') ?? '';
    return {
      bytes: Buffer.from(await response.arrayBuffer()),
      contentType: response.headers.get('content-type') ?? '',
      fileName: /filename="([^"]+)"/.exec(disposition)?.[1] ?? null,
    };
  }

  /** Replaces the day's statement faults (400 SimulatorHttpError with the reason on bad input). */
  async setBillFaults(billDate: string, faults: BillFaults): Promise<BillFaults> {
    return (await this.ok<{ faults: BillFaults }>('PUT', billFaultsPath(billDate), faults)).faults;
  }

  async getBillFaults(billDate: string): Promise<BillFaults> {
    return (await this.ok<{ faults: BillFaults }>('GET', billFaultsPath(billDate))).faults;
  }

  /** Clears one day's statement faults, or every day's. */
  async clearBillFaults(billDate?: string): Promise<void> {
    await this.ok('DELETE', billDate === undefined ? '/bills/faults' : billFaultsPath(billDate));
  }

  /** Per bill date: download URLs handed out, downloads served, downloads refused as expired. */
  billStats(): Promise<Record<string, BillDayStats>> {
    return this.ok('GET', '/bills/stats');
  }

  getFaults(): Promise<GlobalFaults> {
    return this.ok('GET', '/faults');
  }

  /** Global fault rates: `replace` resets every knob not given, `merge` changes only the ones given. */
  setFaults(faults: Partial<GlobalFaults>, mode: 'replace' | 'merge' = 'replace'): Promise<GlobalFaults> {
    return this.ok(mode === 'replace' ? 'PUT' : 'PATCH', '/faults', faults);
  }
}

function billFaultsPath(billDate: string): string {
  return `/bills/${encodeURIComponent(billDate)}/faults`;
}

function tradePath(orderId: string): string {
  return `/trades/${encodeURIComponent(orderId)}`;
}
