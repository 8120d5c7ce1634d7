import { describeError } from '../../src/cli/context';
import type { GlobalFaults, TradeFaults } from './faults';
import type { NotificationOutcome } from './notify';
import type { TradeView } from './routes';

/**
 * The one client of the payment simulator's HTTP API (./routes.ts), for everything in the rig that
 * drives it: the demo, the chaos run, the benchmarks, the simulator's CLI and the tests. payrecon
 * itself never uses it: it reaches the provider through src/provider (PaymentGateway).
 */

const DEFAULT_TIMEOUT_MS = 30_000;

/** Nothing answered at the simulator's URL (not started, wrong PROVIDER_URL, timed out). */
export class SimulatorUnreachableError extends Error {
  override name = 'SimulatorUnreachableError';
}

/** The simulator answered with an HTTP error; `body` is its JSON (`{ error, ... }`). */
export class SimulatorHttpError extends Error {
  override name = 'SimulatorHttpError';
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    message: string,
  ) {
    super(message);
  }
}

export interface SimulatorReply<T = Record<string, unknown>> {
  status: number;
  body: T;
}

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
}

/** What `POST /trades/:orderId/pay` answers: the paid trade and what became of its notification. */
export interface PaymentReply {
  trade: TradeView;
  notification: NotificationOutcome;
}

export interface SimulatorHealth {
  status: 'ok' | 'degraded';
  database: 'up' | 'down';
  broker: 'connected' | 'disconnected';
  pendingPublishes: number;
  delayedNotifications: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH';

export class SimulatorClient {
  readonly url: string;
  private readonly timeoutMs: number;

  constructor(url: string, options: { timeoutMs?: number } = {}) {
    this.url = url.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * One request, whatever HTTP status it gets (a body that is not JSON comes back as `{ error: text }`).
   * Throws SimulatorUnreachableError, naming the URL, when nothing answers.
   */
  async request<T = Record<string, unknown>>(
    method: Method,
    path: string,
    body?: unknown,
  ): Promise<SimulatorReply<T>> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause ?? error;
      throw new SimulatorUnreachableError(
        `the payment simulator is not reachable at ${this.url} (start it with: npm run simulator): ${describeError(cause)}`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { error: text.slice(0, 500) };
    }
    return { status: response.status, body: parsed as T };
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

  /** Replaces the trade's stored fault knobs. */
  setTradeFaults(orderId: string, faults: TradeFaults): Promise<{ orderId: string; faults: TradeFaults }> {
    return this.ok('PUT', `${tradePath(orderId)}/faults`, faults);
  }

  getFaults(): Promise<GlobalFaults> {
    return this.ok('GET', '/faults');
  }

  /** Global fault rates: `replace` resets every knob not given, `merge` changes only the ones given. */
  setFaults(faults: Partial<GlobalFaults>, mode: 'replace' | 'merge' = 'replace'): Promise<GlobalFaults> {
    return this.ok(mode === 'replace' ? 'PUT' : 'PATCH', '/faults', faults);
  }

  health(): Promise<SimulatorReply<SimulatorHealth>> {
    return this.request('GET', '/health');
  }

  /** Polls /health until the simulator answers 200; an abort (e.g. its process exited) ends the wait. */
  async waitUntilUp(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      try {
        if ((await this.health()).status === 200) return;
      } catch (error) {
        if (!(error instanceof SimulatorUnreachableError)) throw error;
      }
      if (Date.now() >= until) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new SimulatorUnreachableError(
      `the payment simulator did not answer at ${this.url} within ${timeoutMs / 1000}s`,
    );
  }

  private async ok<T>(method: Method, path: string, body?: unknown): Promise<T> {
    return this.check(method, path, await this.request<T>(method, path, body));
  }

  private check<T>(method: Method, path: string, reply: SimulatorReply<T>): T {
    if (reply.status >= 200 && reply.status < 300) return reply.body;
    const body = reply.body as Record<string, unknown>;
    const detail = typeof body.error === 'string' ? body.error : JSON.stringify(body);
    throw new SimulatorHttpError(
      reply.status,
      body,
      `the payment simulator answered ${method} ${path} with HTTP ${reply.status}: ${detail}`,
    );
  }
}

function tradePath(orderId: string): string {
  return `/trades/${encodeURIComponent(orderId)}`;
}
