import type { Readable } from 'node:stream';
import { z } from 'zod';
import {
  isPaidTradeStatus,
  isTradeStatus,
  REFUND_STATUSES,
  type RefundSnapshot,
  TRADE_STATUSES,
  type TradeSnapshot,
} from '../domain';
import { downloadStatementFile } from './download';
import {
  isRefundRefusalCode,
  type PaymentGateway,
  ProviderRefusedError,
  ProviderReplyError,
  ProviderUnavailableError,
  type RefundRequest,
  StatementNotReadyError,
  type TradeRequest,
} from './gateway';
import { readStatement } from './statement';
import { isBillDate, type StatementFormat, type StatementLocation } from './statement-format';

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

  /** A 404 is the provider's "no such trade" (never opened): nothing to close, an answer like a query's. */
  closeTrade(orderId: string): Promise<TradeSnapshot> {
    return this.call('POST', orderId, `/trades/${encodeURIComponent(orderId)}/close`, undefined, true);
  }

  submitRefund(request: RefundRequest): Promise<RefundSnapshot> {
    const { orderId, ...body } = request;
    const path = `/trades/${encodeURIComponent(orderId)}/refunds`;
    return this.request('POST', path, body, false, true).then((json) =>
      toRefundSnapshot(request.outRequestNo, `POST ${path}`, json),
    );
  }

  async queryRefund(orderId: string, outRequestNo: string): Promise<RefundSnapshot> {
    const path = `/trades/${encodeURIComponent(orderId)}/refunds/${encodeURIComponent(outRequestNo)}`;
    const json = await this.request('GET', path, undefined, true);
    if (json === NOT_FOUND) {
      return { outRequestNo, status: 'NOT_FOUND', refundNo: null, amount: null, failureReason: null };
    }
    return toRefundSnapshot(outRequestNo, `GET ${path}`, json);
  }

  async statementLocation(billDate: string): Promise<StatementLocation> {
    const path = `/bills/${encodeURIComponent(billDate)}/download-url`;
    let json: unknown;
    try {
      json = await this.request('GET', path, undefined);
    } catch (error) {
      if (error instanceof ProviderReplyError && error.message.includes('BILL_NOT_READY')) {
        throw new StatementNotReadyError(`the statement of ${billDate} is not ready yet at ${this.baseUrl}`);
      }
      throw error;
    }
    return toStatementLocation(billDate, `GET ${path}`, json);
  }

  async downloadStatement(location: StatementLocation): Promise<Readable> {
    return downloadStatementFile(location, this.timeoutMs, `the ${location.billDate} statement`);
  }

  readStatement(file: Readable, format: StatementFormat) {
    return readStatement(file, format);
  }

  private async call(
    method: string,
    orderId: string,
    path: string,
    body?: unknown,
    notFoundIsAnswer = method === 'GET',
  ): Promise<TradeSnapshot> {
    const json = await this.request(method, path, body, notFoundIsAnswer);
    if (json === NOT_FOUND) {
      return { orderId, status: 'NOT_FOUND', tradeNo: null, amount: null, currency: null, paidAt: null };
    }
    return toSnapshot(orderId, `${method} ${path}`, json);
  }

  /**
   * One request; NOT_FOUND for a 404 where `notFoundIsAnswer`; the errors say retry or not. Where
   * `refusalIsAnswer`, a 409 whose body names a known refund refusal code is a ProviderRefusedError.
   */
  private async request(
    method: string,
    path: string,
    body: unknown,
    notFoundIsAnswer = false,
    refusalIsAnswer = false,
  ): Promise<unknown> {
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
    if (response.status === 404 && notFoundIsAnswer) return NOT_FOUND;
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new ProviderUnavailableError(
        `payment provider at ${this.baseUrl} answered ${what} with HTTP ${response.status}`,
      );
    }
    if (!response.ok) {
      const text = (await response.text()).slice(0, 300);
      const code = response.status === 409 && refusalIsAnswer ? refusalCode(text) : null;
      if (code) {
        throw new ProviderRefusedError(code, `payment provider refused ${what} (${code}): ${text}`);
      }
      throw new ProviderReplyError(
        `payment provider at ${this.baseUrl} refused ${what} with HTTP ${response.status}: ${text}`,
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
    return json;
  }
}

const NOT_FOUND = Symbol('not found');

/** The refusal code of a refusal's body (`{"code": "TRADE_FINISHED", ...}`), when it is one payrecon knows. */
function refusalCode(text: string) {
  try {
    const code = (JSON.parse(text) as { code?: unknown } | null)?.code;
    return isRefundRefusalCode(code) ? code : null;
  } catch {
    return null;
  }
}

function toRefundSnapshot(outRequestNo: string, what: string, body: unknown): RefundSnapshot {
  const refund = (body ?? {}) as Record<string, unknown>;
  if (!(REFUND_STATUSES as readonly unknown[]).includes(refund.status)) {
    throw new ProviderReplyError(
      `payment provider answered ${what} with an unknown refund status ${JSON.stringify(refund.status)}`,
    );
  }
  return {
    outRequestNo,
    status: refund.status as RefundSnapshot['status'],
    refundNo: typeof refund.refundNo === 'string' ? refund.refundNo : null,
    amount: typeof refund.amount === 'number' ? refund.amount : null,
    failureReason: typeof refund.failureReason === 'string' ? refund.failureReason : null,
  };
}

/** Money in minor units: an integer, never a float (12.5 fen is no answer). */
const minorUnits = z.number().int().nonnegative();

/**
 * A trade answer as payrecon stores it: every field is checked here, so an answer that would fail a
 * database write later (a fractional amount, a currency that is no ISO 4217 code, a paid time that is no
 * instant) is a ProviderReplyError now, not a local activity retried for ever.
 */
const tradeAnswerSchema = z
  .object({
    status: z.enum(TRADE_STATUSES),
    tradeNo: z.string().min(1).max(64).nullish(),
    amount: minorUnits.nullish(),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, 'not an ISO 4217 code')
      .nullish(),
    paidAt: z.iso
      .datetime({ offset: true })
      .refine(isCalendarDate, 'not a day of the calendar (JavaScript would roll it over)')
      .nullish(),
    refundedAmount: minorUnits.nullish(),
  })
  .superRefine((trade, context) => {
    // A paid trade is what pays an order: it must say which trade, how much and when.
    if (!isPaidTradeStatus(trade.status)) return;
    for (const field of ['tradeNo', 'amount', 'currency', 'paidAt'] as const) {
      if (trade[field] == null) {
        context.addIssue({ code: 'custom', path: [field], message: `missing from a ${trade.status} trade` });
      }
    }
  });

/** 2026-02-31 matches the ISO pattern, and Date.parse reads it as March 3rd. */
function isCalendarDate(instant: string): boolean {
  const [year, month, day] = instant.slice(0, 10).split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
}

function toSnapshot(orderId: string, what: string, body: unknown): TradeSnapshot {
  const status = (body as { status?: unknown } | null)?.status;
  if (!isTradeStatus(status)) {
    throw new ProviderReplyError(
      `payment provider answered ${what} with an unknown trade status ${JSON.stringify(status)}`,
    );
  }
  const parsed = tradeAnswerSchema.safeParse(body);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
    throw new ProviderReplyError(`payment provider answered ${what} with an unreadable trade: ${fields}`);
  }
  const trade = parsed.data;
  return {
    orderId,
    status: trade.status,
    tradeNo: trade.tradeNo ?? null,
    amount: trade.amount ?? null,
    currency: trade.currency ?? null,
    paidAt: trade.paidAt ?? null,
    refundedAmount: trade.refundedAmount ?? null,
  };
}

function toStatementLocation(billDate: string, what: string, body: unknown): StatementLocation {
  const answer = (body ?? {}) as Record<string, unknown>;
  const format = (answer.format ?? {}) as Record<string, unknown>;
  const encoding = format.encoding;
  if (
    answer.billDate !== billDate ||
    !isBillDate(billDate) ||
    typeof answer.downloadUrl !== 'string' ||
    typeof answer.expiresAt !== 'string' ||
    (encoding !== 'utf-8' && encoding !== 'gbk') ||
    typeof format.zipped !== 'boolean'
  ) {
    throw new ProviderReplyError(
      `payment provider answered ${what} with an unreadable location: ${JSON.stringify(body).slice(0, 300)}`,
    );
  }
  return {
    billDate,
    downloadUrl: answer.downloadUrl,
    expiresAt: answer.expiresAt,
    format: { encoding, zipped: format.zipped },
  };
}
