import { parse } from 'csv-parse/sync';
import { unzipSync } from 'fflate';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../src/db/client';
import { ConfigError } from '../src/platform/config';
import {
  billDateOf,
  billDayBounds,
  END_OF_DETAIL_LINE,
  feeFor,
  PAID_ROW_STATUS,
  parseSummaryLine,
  REFUND_ROW_STATUS,
  STATEMENT_COLUMNS,
  type StatementFormat,
  type StatementRow,
  type StatementSummary,
  shiftBillDate,
  toStatementRow,
} from '../src/provider/statement-format';
import type { BillFaults } from '../tools/simulator/bill-faults';
import { extraTradeNo } from '../tools/simulator/bills';
import { seedPaidTrades } from '../tools/simulator/bulk';
import { type DownloadedBill, SimulatorClient, SimulatorHttpError } from '../tools/simulator/client';
import { loadSimulatorConfig } from '../tools/simulator/config';
import { type RunningSimulator, startSimulator } from '../tools/simulator/server';
import { newTradeNo } from '../tools/simulator/trades';
import { testConfig, uniqueSuffix } from './support/env';

/**
 * The payment simulator's daily trade statement, in-process over HTTP against the real test database:
 * what the bill lists (decoded with csv-parse, iconv-lite and fflate, read with statement-format.ts's
 * own parsers), its download URLs and their expiry, and every statement fault. Trades and refunds are
 * written straight into provider.* with the paid_at and settled_at each case needs, on bill dates in
 * March 2026 that only this file uses; rows are compared for this run's order-id prefix.
 */

const config = testConfig('simbill');
const database = createDatabase(config.DATABASE_URL, { max: 4 });
const sql = database.sql;
const FILE_PREFIX = 'simb-';
const prefix = `${FILE_PREFIX}${uniqueSuffix()}-`;
const DATES = {
  main: '2026-03-14',
  format: '2026-03-16',
  ttl: '2026-03-17',
  expireNext: '2026-03-18',
  faults: '2026-03-20',
  carry: '2026-03-21',
  restart: '2026-03-23',
  bulk: '2026-03-25',
};
/** Every day a bill of this file is read for (the days after carry too). */
const ALL_DATES = [
  ...new Set(Object.values(DATES).flatMap((date) => [shiftBillDate(date, -1), date, shiftBillDate(date, 1)])),
];

let simulator: RunningSimulator;
let client: SimulatorClient;

/** An instant given as Asia/Shanghai wall time, `2026-03-14 10:00:01.500`. */
function shanghai(wallTime: string): Date {
  return new Date(`${wallTime.replace(' ', 'T')}+08:00`);
}

/** An instant as a bill row reads it back: whole seconds. */
function toSecond(instant: Date): Date {
  return new Date(Math.floor(instant.getTime() / 1000) * 1000);
}

interface SeededTrade {
  orderId: string;
  tradeNo: string;
  paidAmount: number;
  paidAt: Date;
}

async function paidTrade(
  name: string,
  paidAt: Date,
  amount: number,
  paidAmount = amount,
): Promise<SeededTrade> {
  const orderId = `${prefix}${name}`;
  const tradeNo = newTradeNo(paidAt);
  await sql`
    insert into provider.trades (trade_no, order_id, amount, currency, status, paid_amount, paid_at)
    values (${tradeNo}, ${orderId}, ${amount}, 'CNY', 'TRADE_SUCCESS', ${paidAmount}, ${paidAt.toISOString()}::timestamptz)`;
  return { orderId, tradeNo, paidAmount, paidAt };
}

async function refund(
  trade: SeededTrade,
  outRequestNo: string,
  amount: number,
  settledAt: Date,
  status: 'SUCCESS' | 'FAILED' | 'PROCESSING' = 'SUCCESS',
): Promise<{ outRequestNo: string }> {
  const no = `${prefix}${outRequestNo}`;
  await sql`
    insert into provider.refunds
      (refund_no, order_id, out_request_no, amount, currency, status, settle_at, settled_at, executions)
    values (${`R${newTradeNo(settledAt)}`}, ${trade.orderId}, ${no}, ${amount}, 'CNY', ${status},
            ${settledAt.toISOString()}::timestamptz,
            ${status === 'PROCESSING' ? null : settledAt.toISOString()}::timestamptz,
            ${status === 'SUCCESS' ? 1 : 0})`;
  return { outRequestNo: no };
}

function payRow(trade: SeededTrade, overrides: Partial<StatementRow> = {}): StatementRow {
  const amount = overrides.amount ?? trade.paidAmount;
  return {
    tradeNo: trade.tradeNo,
    orderId: trade.orderId,
    type: 'pay',
    outRequestNo: null,
    currency: 'CNY',
    amount,
    fee: feeFor(amount),
    status: PAID_ROW_STATUS,
    occurredAt: toSecond(trade.paidAt),
    ...overrides,
  };
}

function refundRow(trade: SeededTrade, outRequestNo: string, amount: number, settledAt: Date): StatementRow {
  return {
    tradeNo: trade.tradeNo,
    orderId: trade.orderId,
    type: 'refund',
    outRequestNo,
    currency: 'CNY',
    amount,
    fee: -feeFor(amount),
    status: REFUND_ROW_STATUS,
    occurredAt: toSecond(settledAt),
  };
}

interface ParsedBill {
  text: string;
  comments: string[];
  header: string[];
  /** Every row on the bill. */
  allRows: StatementRow[];
  /** The rows of this run's orders (and extra rows this file made up). */
  rows: StatementRow[];
  summary: StatementSummary;
}

/** The file's text: unzipped (one entry, named by the date) and decoded as its format says. */
function decodeBill(file: DownloadedBill, billDate: string, format: StatementFormat): string {
  let bytes: Uint8Array = file.bytes;
  if (format.zipped) {
    expect(file.contentType).toBe('application/zip');
    expect(file.fileName).toBe(`${billDate}_trade_bill.zip`);
    const entries = unzipSync(file.bytes);
    expect(Object.keys(entries)).toEqual([`${billDate}_trade_bill.csv`]);
    bytes = entries[`${billDate}_trade_bill.csv`] as Uint8Array;
  } else {
    expect(file.contentType).toBe(`text/csv; charset=${format.encoding}`);
    expect(file.fileName).toBe(`${billDate}_trade_bill.csv`);
  }
  return iconv.decode(Buffer.from(bytes), format.encoding);
}

/** The bill's layout as statement-format.ts documents it, checked line by line. */
function parseBill(text: string, billDate: string): ParsedBill {
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.slice(0, -1).split('\n');
  const end = lines.indexOf(END_OF_DETAIL_LINE);
  expect(end).toBeGreaterThanOrEqual(3);
  expect(lines.length).toBe(end + 2);
  const comments = lines.slice(0, 2);
  expect(comments).toEqual(['#payrecon simulator trade bill', `#bill date: ${billDate} (Asia/Shanghai)`]);
  const [header, ...records] = parse(lines.slice(2, end).join('\n'), { relax_quotes: false }) as string[][];
  expect(header).toEqual([...STATEMENT_COLUMNS]);
  const allRows = records.map((fields) => toStatementRow(fields));
  const summary = parseSummaryLine(lines[end + 1] as string);
  return {
    text,
    comments,
    header: header as string[],
    allRows,
    rows: allRows.filter((row) => row.orderId.startsWith(prefix)),
    summary,
  };
}

async function fetchBill(billDate: string): Promise<ParsedBill & { format: StatementFormat }> {
  const location = await client.billDownloadUrl(billDate);
  const file = await client.downloadBill(location.downloadUrl);
  return { ...parseBill(decodeBill(file, billDate, location.format), billDate), format: location.format };
}

/** The control totals of these rows, as the summary must state them. */
function totals(rows: StatementRow[]): StatementSummary {
  const pays = rows.filter((row) => row.type === 'pay');
  const refunds = rows.filter((row) => row.type === 'refund');
  const sum = (list: StatementRow[], pick: (row: StatementRow) => number) =>
    list.reduce((total, row) => total + pick(row), 0);
  return {
    rows: rows.length,
    payCount: pays.length,
    payAmount: sum(pays, (row) => row.amount),
    refundCount: refunds.length,
    refundAmount: sum(refunds, (row) => row.amount),
    fee: sum(rows, (row) => row.fee),
  };
}

function byTime(rows: StatementRow[]): StatementRow[] {
  return [...rows].sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime());
}

async function refusal(promise: Promise<unknown>): Promise<SimulatorHttpError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SimulatorHttpError);
  return error as SimulatorHttpError;
}

async function removeOwnData(): Promise<void> {
  // Leftovers of an earlier run of this file (killed before its cleanup) would sit on the same days.
  await sql`delete from provider.refunds where order_id like ${`${FILE_PREFIX}%`}`;
  await sql`delete from provider.trades where order_id like ${`${FILE_PREFIX}%`}`;
  await sql`delete from provider.bill_faults where bill_date = any(${ALL_DATES})`;
}

beforeAll(async () => {
  await removeOwnData();
  simulator = await startSimulator({ config, port: 0, brokerWaitMs: 1_000 });
  client = new SimulatorClient(simulator.url);
});

afterAll(async () => {
  await simulator?.close();
  await removeOwnData();
  await database.close();
});

describe('payment simulator: the daily trade statement', () => {
  it("lists the day's payments and succeeded refunds in time order, and a summary that adds up", async () => {
    const day = DATES.main;
    const first = await paidTrade('main-first', shanghai(`${day} 00:00:00.000`), 1_000);
    const short = await paidTrade('main-short', shanghai(`${day} 10:00:01.600`), 2_599, 2_598);
    const last = await paidTrade('main-last', shanghai(`${day} 23:59:59.999`), 12_345);
    const before = await paidTrade('main-before', shanghai(`${shiftBillDate(day, -1)} 23:59:59.999`), 777);
    const after = await paidTrade('main-after', shanghai(`${shiftBillDate(day, 1)} 00:00:00.000`), 888);
    await sql`insert into provider.trades (trade_no, order_id, amount, currency)
              values (${newTradeNo()}, ${`${prefix}main-unpaid`}, 500, 'CNY')`;
    const r1 = await refund(short, 'main-r1', 200, shanghai(`${day} 11:00:00`));
    await refund(first, 'main-failed', 100, shanghai(`${day} 12:00:00`), 'FAILED');
    await refund(first, 'main-processing', 100, shanghai(`${day} 12:30:00`), 'PROCESSING');
    const late = await refund(last, 'main-late', 300, shanghai(`${shiftBillDate(day, 1)} 01:00:00`));
    const old = await refund(before, 'main-old', 777, shanghai(`${day} 08:00:00`));

    const bill = await fetchBill(day);
    expect(bill.format).toEqual({ encoding: 'utf-8', zipped: false });
    expect(bill.rows).toEqual([
      payRow(first),
      refundRow(before, old.outRequestNo, 777, shanghai(`${day} 08:00:00`)),
      payRow(short),
      refundRow(short, r1.outRequestNo, 200, shanghai(`${day} 11:00:00`)),
      payRow(last),
    ]);
    // What the buyer paid, not what the trade cost.
    expect(bill.text).toContain(
      `${short.tradeNo},${short.orderId},交易,,CNY,25.98,0.16,TRADE_SUCCESS,${day} 10:00:01`,
    );
    expect(bill.text).toContain(`,${r1.outRequestNo},CNY,-2.00,-0.01,REFUND_SUCCESS,${day} 11:00:00`);
    expect(bill.summary).toEqual(totals(bill.allRows));

    const previous = await fetchBill(shiftBillDate(day, -1));
    expect(previous.rows).toEqual([payRow(before)]);
    const next = await fetchBill(shiftBillDate(day, 1));
    expect(next.rows).toEqual([
      payRow(after),
      refundRow(last, late.outRequestNo, 300, shanghai(`${shiftBillDate(day, 1)} 01:00:00`)),
    ]);
    for (const other of [previous, next]) expect(other.summary).toEqual(totals(other.allRows));
  });

  it('serves GBK and zipped bills with the same rows', async () => {
    const day = DATES.format;
    const trade = await paidTrade('format-1', shanghai(`${day} 09:30:00`), 4_200);
    const plain = await fetchBill(day);
    expect(plain.rows).toEqual([payRow(trade)]);

    await client.setBillFaults(day, { encoding: 'gbk' });
    const location = await client.billDownloadUrl(day);
    expect(location.format).toEqual({ encoding: 'gbk', zipped: false });
    const file = await client.downloadBill(location.downloadUrl);
    expect(file.contentType).toBe('text/csv; charset=gbk');
    // The header is GBK bytes (two per character), not UTF-8.
    expect(file.bytes.includes(iconv.encode(STATEMENT_COLUMNS.join(','), 'gbk'))).toBe(true);
    expect(file.bytes.includes(Buffer.from('交易号', 'utf8'))).toBe(false);
    const gbk = parseBill(decodeBill(file, day, location.format), day);
    expect(gbk.header).toEqual([...STATEMENT_COLUMNS]);
    expect(gbk.allRows).toEqual(plain.allRows);
    expect(gbk.text).toBe(plain.text);

    await client.setBillFaults(day, { encoding: 'gbk', zipped: true });
    const zipped = await fetchBill(day);
    expect(zipped.format).toEqual({ encoding: 'gbk', zipped: true });
    expect(zipped.text).toBe(plain.text);

    await client.setBillFaults(day, { zipped: true });
    const utf8Zipped = await fetchBill(day);
    expect(utf8Zipped.format).toEqual({ encoding: 'utf-8', zipped: true });
    expect(utf8Zipped.text).toBe(plain.text);
  });

  it('a URL past its lifetime answers 410 URL_EXPIRED; a fresh one works; stats count both', async () => {
    const day = DATES.ttl;
    await paidTrade('ttl-1', shanghai(`${day} 13:00:00`), 1_500);
    const defaultLocation = await client.billDownloadUrl(day);
    const lifetime = Date.parse(defaultLocation.expiresAt) - Date.now();
    expect(lifetime).toBeGreaterThan(25_000);
    expect(lifetime).toBeLessThanOrEqual(30_000);
    expect(defaultLocation.downloadUrl.startsWith(`${simulator.url}/bills/download/`)).toBe(true);

    await client.setBillFaults(day, { urlTtlMs: 300 });
    const short = await client.billDownloadUrl(day);
    expect(Date.parse(short.expiresAt) - Date.now()).toBeLessThanOrEqual(300);
    await new Promise((resolve) => setTimeout(resolve, 400));
    const expired = await refusal(client.downloadBill(short.downloadUrl));
    expect(expired.status).toBe(410);
    expect(expired.body).toMatchObject({ code: 'URL_EXPIRED', billDate: day });

    const fresh = await client.billDownloadUrl(day);
    const bill = parseBill(decodeBill(await client.downloadBill(fresh.downloadUrl), day, fresh.format), day);
    expect(bill.rows).toHaveLength(1);
    expect((await client.billStats())[day]).toEqual({ urlRequests: 3, downloads: 1, expiredDownloads: 1 });
  });

  it('expireNextUrls: the next n URLs are born expired, then they work again', async () => {
    const day = DATES.expireNext;
    await paidTrade('expire-1', shanghai(`${day} 13:00:00`), 1_500);
    await client.setBillFaults(day, { expireNextUrls: 2 });
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const location = await client.billDownloadUrl(day);
      expect(Date.parse(location.expiresAt)).toBeLessThanOrEqual(Date.now());
      const error = await refusal(client.downloadBill(location.downloadUrl));
      expect(error.status).toBe(410);
      expect(error.body.code).toBe('URL_EXPIRED');
    }
    expect(await client.getBillFaults(day)).toEqual({ expireNextUrls: 0 });
    const bill = await fetchBill(day);
    expect(bill.rows).toHaveLength(1);
    expect((await client.billStats())[day]).toEqual({ urlRequests: 3, downloads: 1, expiredDownloads: 2 });
  });

  it('every statement fault changes the bill, never the trades; the summary counts what is written', async () => {
    const day = DATES.faults;
    const omitted = await paidTrade('f-omit', shanghai(`${day} 01:00:00`), 1_000);
    const delta = await paidTrade('f-delta', shanghai(`${day} 02:00:00`), 10_000);
    const status = await paidTrade('f-status', shanghai(`${day} 03:00:00`), 3_000);
    const doubled = await paidTrade('f-dup', shanghai(`${day} 04:00:00`), 4_000);
    const plain = await paidTrade('f-plain', shanghai(`${day} 13:00:00`), 5_000);
    const kept = await refund(plain, 'f-kept', 1_000, shanghai(`${day} 14:00:00`));
    const dropped = await refund(plain, 'f-dropped', 500, shanghai(`${day} 15:00:00`));
    const ghost = `${prefix}f-ghost`;
    const ghost2 = `${prefix}f-ghost2`;
    const faults: BillFaults = {
      omitPayments: [omitted.orderId],
      extraPayments: [
        { orderId: ghost, amount: 999, tradeNo: 'GHOST0001', time: `${day}T05:00:00+08:00` },
        { orderId: ghost2, amount: 123 },
      ],
      amountDeltas: { [delta.orderId]: -1 },
      statusOverrides: { [status.orderId]: 'TRADE_CLOSED' },
      duplicatePayments: [doubled.orderId],
      omitRefunds: [dropped.outRequestNo],
      summaryDelta: { payAmount: 100, rows: 1 },
    };
    expect(await client.setBillFaults(day, faults)).toEqual(faults);
    expect(await client.getBillFaults(day)).toEqual(faults);

    const bill = await fetchBill(day);
    const expected = [
      payRow(delta, { amount: 9_999, fee: feeFor(9_999) }),
      payRow(status, { status: 'TRADE_CLOSED' }),
      payRow(doubled),
      payRow(doubled),
      payRow({ orderId: ghost, tradeNo: 'GHOST0001', paidAmount: 999, paidAt: shanghai(`${day} 05:00:00`) }),
      payRow({
        orderId: ghost2,
        tradeNo: extraTradeNo(day, ghost2),
        paidAmount: 123,
        paidAt: shanghai(`${day} 12:00:00`),
      }),
      payRow(plain),
      refundRow(plain, kept.outRequestNo, 1_000, shanghai(`${day} 14:00:00`)),
    ];
    expect(bill.rows).toEqual(expected);
    expect(byTime(bill.rows)).toEqual(bill.rows);
    const computed = totals(bill.allRows);
    expect(bill.summary).toEqual({
      ...computed,
      payAmount: computed.payAmount + 100,
      rows: computed.rows + 1,
    });

    // The trades are what they were: only the statement lies.
    const trades = await sql`select order_id, status, paid_amount from provider.trades
                             where order_id = any(${[omitted.orderId, delta.orderId, status.orderId]}) order by order_id`;
    expect(trades.map((t) => [t.status, Number(t.paid_amount)])).toEqual([
      ['TRADE_SUCCESS', 10_000],
      ['TRADE_SUCCESS', 1_000],
      ['TRADE_SUCCESS', 3_000],
    ]);

    await client.clearBillFaults(day);
    expect(await client.getBillFaults(day)).toEqual({});
    const clean = await fetchBill(day);
    expect(clean.rows.map((row) => row.orderId)).toEqual([
      omitted.orderId,
      delta.orderId,
      status.orderId,
      doubled.orderId,
      plain.orderId,
      plain.orderId,
      plain.orderId,
    ]);
  });

  it("carryToNextDay moves a payment row to the next day's bill, just after midnight", async () => {
    const day = DATES.carry;
    const nextDay = shiftBillDate(day, 1);
    const edge = await paidTrade('carry-edge', shanghai(`${day} 23:59:59.800`), 6_600);
    const stays = await paidTrade('carry-stays', shanghai(`${day} 12:00:00`), 1_100);
    const tomorrow = await paidTrade('carry-tomorrow', shanghai(`${nextDay} 00:00:00.500`), 2_200);
    await client.setBillFaults(day, { carryToNextDay: [edge.orderId] });

    const today = await fetchBill(day);
    expect(today.rows).toEqual([payRow(stays)]);
    expect(today.summary).toEqual(totals(today.allRows));
    const next = await fetchBill(nextDay);
    expect(next.rows).toEqual([
      payRow(tomorrow),
      payRow(edge, { occurredAt: shanghai(`${nextDay} 00:00:01`) }),
    ]);
    expect(next.summary).toEqual(totals(next.allRows));
    expect(next.text).toContain(
      `${edge.tradeNo},${edge.orderId},交易,,CNY,66.00,0.40,TRADE_SUCCESS,${nextDay} 00:00:01`,
    );
  });

  it('refuses bad input: bad dates 400, future days 409 BILL_NOT_READY, bad faults 400, forged tokens 404', async () => {
    const today = billDateOf(new Date());
    const location = await client.billDownloadUrl(today);
    expect(location.billDate).toBe(today);
    const notReady = await refusal(client.billDownloadUrl(shiftBillDate(today, 1)));
    expect(notReady.status).toBe(409);
    expect(notReady.body).toMatchObject({ code: 'BILL_NOT_READY', billDate: shiftBillDate(today, 1) });

    for (const bad of ['2026-02-30', '20260314', 'yesterday', '2026-3-14']) {
      const error = await refusal(client.billDownloadUrl(bad));
      expect(error.status).toBe(400);
      expect(error.body.code).toBe('INVALID_BILL_DATE');
      expect(String(error.body.error)).toContain('not a bill date');
    }

    const day = DATES.faults;
    const badFaults: [unknown, string][] = [
      [{ omitPayment: ['x'] }, 'omitPayment'],
      [{ omitPayments: ['bad id!'] }, 'order ids are 1-64'],
      [{ extraPayments: [{ orderId: 'x', amount: -1 }] }, 'extraPayments.0.amount'],
      [{ extraPayments: [{ orderId: 'x', amount: 1.5 }] }, 'integers in minor units'],
      [
        { extraPayments: [{ orderId: 'x', amount: 1, time: '2026-03-21T00:00:00+08:00' }] },
        'is not on 2026-03-20',
      ],
      [{ amountDeltas: { x: 0 } }, 'a delta is not 0'],
      [{ statusOverrides: { x: 'paid, really' } }, 'statusOverrides.x'],
      [{ summaryDelta: { total: 1 } }, 'summaryDelta'],
      [{ urlTtlMs: 0 }, 'urlTtlMs'],
      [{ encoding: 'latin1' }, 'encoding'],
      [{ zipped: 'yes' }, 'zipped'],
      [[1], '(body)'],
    ];
    for (const [faults, message] of badFaults) {
      const error = await refusal(client.setBillFaults(day, faults as BillFaults));
      expect({ faults, status: error.status }).toEqual({ faults, status: 400 });
      expect(String(error.body.error)).toContain(message);
    }
    expect((await refusal(client.setBillFaults('2026-13-01', {}))).status).toBe(400);

    const [payload, signature] = new URL(location.downloadUrl).pathname.split('/').at(-1)?.split('.') ?? [];
    const forged = Buffer.from(
      Buffer.from(payload as string, 'base64url')
        .toString()
        .replace(today, '2020-01-01'),
    ).toString('base64url');
    for (const token of [`${forged}.${signature}`, 'nonsense', `${payload}.AAAA`]) {
      const error = await refusal(client.downloadBill(`${simulator.url}/bills/download/${token}`));
      expect(error.status).toBe(404);
      expect(error.body.code).toBe('NOT_FOUND');
    }
  });

  it('faults and download URLs survive a simulator restart; DELETE /bills/faults clears every day', async () => {
    const day = DATES.restart;
    const trade = await paidTrade('restart-1', shanghai(`${day} 08:00:00`), 3_300);
    await client.setBillFaults(day, { omitPayments: [trade.orderId], zipped: true });
    await client.setBillFaults(shiftBillDate(day, 1), { duplicatePayments: ['x'] });
    const location = await client.billDownloadUrl(day);

    const second = await startSimulator({ config, port: 0, brokerWaitMs: 1_000 });
    try {
      const other = new SimulatorClient(second.url);
      expect(await other.getBillFaults(day)).toEqual({ omitPayments: [trade.orderId], zipped: true });
      const url = location.downloadUrl.replace(simulator.url, second.url);
      const bill = parseBill(decodeBill(await other.downloadBill(url), day, location.format), day);
      expect(bill.rows).toEqual([]);

      await other.clearBillFaults();
      expect(await client.getBillFaults(day)).toEqual({});
      expect(await client.getBillFaults(shiftBillDate(day, 1))).toEqual({});
      expect((await fetchBill(day)).rows).toEqual([payRow(trade)]);
    } finally {
      await second.close();
    }
  });

  it('streams a day of 100,000 trades seeded in one statement', async () => {
    const day = DATES.bulk;
    const bulkPrefix = `${prefix}bulk-`;
    const { start, end } = billDayBounds(day);
    const seeded = await seedPaidTrades(sql, { count: 100_000, billDate: day, prefix: bulkPrefix });
    expect(seeded).toEqual({ inserted: 100_000 });
    expect(await seedPaidTrades(sql, { count: 10, billDate: day, prefix: bulkPrefix })).toEqual({
      inserted: 0,
    });
    const [span] =
      await sql`select min(paid_at) as first, max(paid_at) as last, count(distinct trade_no)::int as numbers
                             from provider.trades where order_id like ${`${bulkPrefix}%`}`;
    expect(new Date(span?.first).getTime()).toBe(start.getTime());
    expect(new Date(span?.last).getTime()).toBeLessThan(end.getTime());
    expect(span?.numbers).toBe(100_000);

    const bill = await fetchBill(day);
    expect(bill.rows).toHaveLength(100_000);
    expect(bill.rows[0]).toMatchObject({ orderId: `${bulkPrefix}1`, amount: 1_001, occurredAt: start });
    expect(bill.rows.at(-1)).toMatchObject({
      orderId: `${bulkPrefix}100000`,
      amount: 1_000 + (100_000 % 9_000),
    });
    expect(bill.summary).toEqual(totals(bill.allRows));
    expect(byTime(bill.rows)).toEqual(bill.rows);
  });
});

describe('payment simulator: statement settings from the environment', () => {
  it('reads SIMULATOR_BILL_URL_TTL, SIMULATOR_BILL_ENCODING and SIMULATOR_BILL_ZIPPED, and names bad ones', () => {
    expect(loadSimulatorConfig({}).bills).toEqual({
      urlTtlMs: 30_000,
      format: { encoding: 'utf-8', zipped: false },
    });
    expect(
      loadSimulatorConfig({
        SIMULATOR_BILL_URL_TTL: '5s',
        SIMULATOR_BILL_ENCODING: 'gbk',
        SIMULATOR_BILL_ZIPPED: 'true',
      }).bills,
    ).toEqual({ urlTtlMs: 5_000, format: { encoding: 'gbk', zipped: true } });
    expect(loadSimulatorConfig({ SIMULATOR_BILL_URL_TTL: '1500' }).bills.urlTtlMs).toBe(1_500);
    for (const [name, value, message] of [
      ['SIMULATOR_BILL_URL_TTL', 'soon', 'is not a duration'],
      ['SIMULATOR_BILL_URL_TTL', '2d', 'is not a duration'],
      ['SIMULATOR_BILL_ENCODING', 'latin1', 'must be utf-8 or gbk'],
      ['SIMULATOR_BILL_ZIPPED', 'yes', 'must be true or false'],
    ] as const) {
      expect(() => loadSimulatorConfig({ [name]: value })).toThrow(ConfigError);
      expect(() => loadSimulatorConfig({ [name]: value })).toThrow(message);
    }
  });
});
