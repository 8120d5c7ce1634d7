import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Zip, ZipDeflate } from 'fflate';
import iconv from 'iconv-lite';
import type { Sql } from '../../src/db/client';
import {
  billDayBounds,
  END_OF_DETAIL_LINE,
  feeFor,
  formatStatementRow,
  formatSummaryLine,
  isBillDate,
  PAID_ROW_STATUS,
  REFUND_ROW_STATUS,
  STATEMENT_COLUMNS,
  type StatementFormat,
  type StatementRow,
  type StatementSummary,
  shiftBillDate,
} from '../../src/provider/statement-format';
import { applySummaryDelta, type BillFaults, type ExtraPayment } from './bill-faults';

/**
 * The simulator's daily trade statement ("bill"), as src/provider/statement-format.ts lays it out: the
 * payments (by paid_at) and succeeded refunds (by settled_at) of one Asia/Shanghai day, read with a
 * cursor and written as they are read, so a day of a million rows streams with flat memory. The day's
 * faults (./bill-faults.ts) change what is written; the summary counts what was written.
 */

/** Rows per cursor batch, and so per chunk of the file. */
const CURSOR_ROWS = 5_000;
/** Where a row carried over midnight lands: just after the next day begins, by the provider's clock. */
const CARRIED_OFFSET_MS = 1_000;

export function billFileName(billDate: string, zipped: boolean): string {
  return zipped ? `${billDate}_trade_bill.zip` : `${billDate}_trade_bill.csv`;
}

export function billContentType(format: StatementFormat): string {
  return format.zipped ? 'application/zip' : `text/csv; charset=${format.encoding}`;
}

interface DbRow {
  kind: 'pay' | 'refund';
  trade_no: string;
  order_id: string;
  out_request_no: string | null;
  currency: string;
  /** bigint, as postgres.js returns it. */
  amount: string;
  /** Epoch milliseconds, as text (drizzle has the pool return timestamps as strings). */
  at_ms: string;
}

/** A trade number for an extra payment row: the date and 16 digits from the order id, stable. */
export function extraTradeNo(billDate: string, orderId: string): string {
  const digest = createHash('sha256').update(`${billDate}:${orderId}`).digest();
  const digits = (digest.readBigUInt64BE(0) % 10_000_000_000_000_000n).toString().padStart(16, '0');
  return `${billDate.replaceAll('-', '')}${digits}`;
}

function extraRow(billDate: string, extra: ExtraPayment): StatementRow {
  const noon = new Date(billDayBounds(billDate).start.getTime() + 12 * 3_600_000);
  return {
    tradeNo: extra.tradeNo ?? extraTradeNo(billDate, extra.orderId),
    orderId: extra.orderId,
    type: 'pay',
    outRequestNo: null,
    currency: extra.currency ?? 'CNY',
    amount: extra.amount,
    fee: feeFor(extra.amount),
    status: extra.status ?? PAID_ROW_STATUS,
    occurredAt: extra.time === undefined ? noon : new Date(extra.time),
  };
}

function toAmount(raw: string): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value)) throw new RangeError(`amount out of range: ${raw}`);
  return value;
}

/**
 * The bill's text in chunks of many lines, each ending with \n. `faults` are the day's, `previousFaults`
 * the day before's (whose carryToNextDay rows this day lists).
 */
export async function* billText(
  sql: Sql,
  billDate: string,
  faults: BillFaults,
  previousFaults: BillFaults,
): AsyncGenerator<string> {
  if (!isBillDate(billDate)) throw new RangeError(`not a bill date: ${billDate}`);
  const { start, end } = billDayBounds(billDate);
  const previous = billDayBounds(shiftBillDate(billDate, -1));
  const carriedAt = new Date(start.getTime() + CARRIED_OFFSET_MS).toISOString();
  // Instants as ISO text with a cast: postgres.js serializes by the server's inferred type.
  const [from, until] = [start.toISOString(), end.toISOString()];

  const omitPayments = new Set(faults.omitPayments);
  const omitRefunds = new Set(faults.omitRefunds);
  const duplicates = new Set(faults.duplicatePayments);
  const amountDeltas = new Map(Object.entries(faults.amountDeltas ?? {}));
  const statusOverrides = new Map(Object.entries(faults.statusOverrides ?? {}));
  const extras = (faults.extraPayments ?? [])
    .map((extra) => extraRow(billDate, extra))
    .sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime());
  let nextExtra = 0;

  const summary: StatementSummary = {
    rows: 0,
    payCount: 0,
    payAmount: 0,
    refundCount: 0,
    refundAmount: 0,
    fee: 0,
  };
  const write = (row: StatementRow): string => {
    summary.rows += 1;
    if (row.type === 'pay') {
      summary.payCount += 1;
      summary.payAmount += row.amount;
    } else {
      summary.refundCount += 1;
      summary.refundAmount += row.amount;
    }
    summary.fee += row.fee;
    return `${formatStatementRow(row)}\n`;
  };
  const extrasUntil = (instant: number): string => {
    let text = '';
    while (nextExtra < extras.length && (extras[nextExtra] as StatementRow).occurredAt.getTime() <= instant) {
      text += write(extras[nextExtra] as StatementRow);
      nextExtra += 1;
    }
    return text;
  };

  yield [
    '#payrecon simulator trade bill',
    `#bill date: ${billDate} (Asia/Shanghai)`,
    STATEMENT_COLUMNS.join(','),
    '',
  ].join('\n');

  // One ordered query: the day's payments (less those carried to tomorrow), yesterday's carried ones
  // at just after midnight, and the day's succeeded refunds.
  const cursor = sql<DbRow[]>`
    select kind, trade_no, order_id, out_request_no, currency, amount::text as amount,
           floor(extract(epoch from at) * 1000)::int8::text as at_ms from (
      select 'pay' as kind, trade_no, order_id, null::text as out_request_no, currency,
             coalesce(paid_amount, amount) as amount, paid_at as at
        from provider.trades
       where paid_at >= ${from}::timestamptz and paid_at < ${until}::timestamptz
         and not (order_id = any(${sql.array(faults.carryToNextDay ?? [], 25)}::text[]))
      union all
      select 'pay', trade_no, order_id, null, currency, coalesce(paid_amount, amount), ${carriedAt}::timestamptz
        from provider.trades
       where paid_at >= ${previous.start.toISOString()}::timestamptz and paid_at < ${from}::timestamptz
         and order_id = any(${sql.array(previousFaults.carryToNextDay ?? [], 25)}::text[])
      union all
      select 'refund', t.trade_no, r.order_id, r.out_request_no, r.currency, r.amount, r.settled_at
        from provider.refunds r join provider.trades t on t.order_id = r.order_id
       where r.status = 'SUCCESS' and r.settled_at >= ${from}::timestamptz and r.settled_at < ${until}::timestamptz
    ) bill
    order by at, kind, order_id, out_request_no`.cursor(CURSOR_ROWS);

  for await (const batch of cursor) {
    let text = '';
    for (const db of batch) {
      const at = new Date(toAmount(db.at_ms));
      text += extrasUntil(at.getTime());
      const amount = toAmount(db.amount);
      if (db.kind === 'refund') {
        if (db.out_request_no !== null && omitRefunds.has(db.out_request_no)) continue;
        text += write({
          tradeNo: db.trade_no,
          orderId: db.order_id,
          type: 'refund',
          outRequestNo: db.out_request_no,
          currency: db.currency,
          amount,
          fee: -feeFor(amount),
          status: REFUND_ROW_STATUS,
          occurredAt: at,
        });
        continue;
      }
      if (omitPayments.has(db.order_id)) continue;
      const printed = amount + (amountDeltas.get(db.order_id) ?? 0);
      const row: StatementRow = {
        tradeNo: db.trade_no,
        orderId: db.order_id,
        type: 'pay',
        outRequestNo: null,
        currency: db.currency,
        amount: printed,
        fee: feeFor(printed),
        status: statusOverrides.get(db.order_id) ?? PAID_ROW_STATUS,
        occurredAt: at,
      };
      text += write(row);
      if (duplicates.has(db.order_id)) text += write(row);
    }
    if (text) yield text;
  }

  yield `${extrasUntil(Number.POSITIVE_INFINITY)}${END_OF_DETAIL_LINE}\n${formatSummaryLine(applySummaryDelta(summary, faults.summaryDelta))}\n`;
}

/** The bill's bytes in `format`: encoded (UTF-8 or GBK) and, if asked, zipped as one entry. */
export async function* billBytes(
  text: AsyncIterable<string>,
  billDate: string,
  format: StatementFormat,
): AsyncGenerator<Uint8Array> {
  const encoded = encodeChunks(text, format.encoding);
  if (!format.zipped) {
    yield* encoded;
    return;
  }
  // fflate's Zip and ZipDeflate are synchronous: each push hands its output to the callback at once,
  // so the output is collected and yielded after each push (the consumer's pace is kept).
  const out: Uint8Array[] = [];
  let failure: Error | null = null;
  const zip = new Zip((error, chunk) => {
    if (error) failure = error;
    else out.push(chunk);
  });
  const entry = new ZipDeflate(billFileName(billDate, false), { level: 6 });
  zip.add(entry);
  for await (const chunk of encoded) {
    entry.push(chunk);
    if (failure) throw failure;
    yield* out.splice(0);
  }
  entry.push(new Uint8Array(0), true);
  zip.end();
  if (failure) throw failure;
  yield* out.splice(0);
}

async function* encodeChunks(text: AsyncIterable<string>, encoding: StatementFormat['encoding']) {
  for await (const chunk of text) {
    yield encoding === 'gbk' ? iconv.encode(chunk, 'gbk') : Buffer.from(chunk, 'utf8');
  }
}

// --- download tokens ----------------------------------------------------------------------------------

/** What a download URL grants: one day's bill in one format, until `expiresAt` (epoch ms). */
export interface BillGrant {
  billDate: string;
  expiresAt: number;
  format: StatementFormat;
}

/**
 * Signs and reads download tokens: self-contained (date, expiry, format) and HMAC-SHA256 signed with a
 * key derived from the simulator's secret, so a URL survives a simulator restart and cannot be forged.
 */
export class BillTokens {
  private readonly key: Buffer;

  constructor(secret: string) {
    this.key = createHmac('sha256', secret).update('payrecon-simulator bill download url').digest();
  }

  sign(grant: BillGrant): string {
    const payload = Buffer.from(
      [grant.billDate, grant.expiresAt, grant.format.encoding, grant.format.zipped ? 1 : 0].join('|'),
    ).toString('base64url');
    return `${payload}.${this.mac(payload).toString('base64url')}`;
  }

  /** The grant, or null for a token this simulator did not sign. Expiry is the caller's to check. */
  verify(token: string): BillGrant | null {
    const [payload, signature, ...rest] = token.split('.');
    if (!payload || !signature || rest.length > 0) return null;
    const expected = this.mac(payload);
    const given = Buffer.from(signature, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    const [billDate, expiresAt, encoding, zipped] = Buffer.from(payload, 'base64url')
      .toString('utf8')
      .split('|');
    if (!billDate || !isBillDate(billDate) || !/^\d+$/.test(expiresAt ?? '')) return null;
    if (encoding !== 'utf-8' && encoding !== 'gbk') return null;
    return { billDate, expiresAt: Number(expiresAt), format: { encoding, zipped: zipped === '1' } };
  }

  private mac(payload: string): Buffer {
    return createHmac('sha256', this.key).update(payload).digest();
  }
}

// --- counts -------------------------------------------------------------------------------------------

export interface BillDayStats {
  /** Download URLs handed out (born expired ones included). */
  urlRequests: number;
  /** Downloads served (started). */
  downloads: number;
  /** Downloads refused with 410 URL_EXPIRED. */
  expiredDownloads: number;
}

/** Per bill date, in memory: enough for a test to prove that a URL was asked for again. */
export class BillStats {
  private readonly days = new Map<string, BillDayStats>();

  count(billDate: string, what: keyof BillDayStats): void {
    const day = this.days.get(billDate) ?? { urlRequests: 0, downloads: 0, expiredDownloads: 0 };
    day[what] += 1;
    this.days.set(billDate, day);
  }

  get(): Record<string, BillDayStats> {
    return Object.fromEntries(
      [...this.days].sort(([a], [b]) => a.localeCompare(b)).map(([d, s]) => [d, { ...s }]),
    );
  }
}
