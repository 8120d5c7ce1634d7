/**
 * The provider's daily trade statement (对账单, "trade bill"), as the simulator serves it and
 * payrecon's gateway reads it. Modelled on the trade bills of common Chinese payment APIs: one CSV per
 * day of the Asia/Shanghai calendar, available T+1 behind a download URL that expires soon (30 s at
 * Alipay), optionally zipped, GBK or UTF-8, `#` comment lines around a header row and one row per
 * trade or refund, and a summary with the day's counts and totals at the end.
 *
 * ```
 * #payrecon simulator trade bill
 * #bill date: 2026-12-01 (Asia/Shanghai)
 * 交易号,商户订单号,业务类型,退款请求号,币种,金额,服务费,状态,完成时间
 * 2026120110000001,ord-1,交易,,CNY,12.34,0.07,TRADE_SUCCESS,2026-12-01 10:00:01
 * 2026120110000001,ord-1,退款,rf-1,CNY,-2.00,-0.01,REFUND_SUCCESS,2026-12-01 11:00:00
 * #end of detail
 * #summary:rows=2;pay_count=1;pay_amount=12.34;refund_count=1;refund_amount=2.00;fee=0.06
 * ```
 *
 * Money on the bill is in major units with two decimals (as the bills print it); payrecon turns it into
 * integer minor units by parsing the text (`parseMajorUnits`), never through a float. Refund rows carry
 * negative amounts and fees; the summary's refund_amount is positive, fee is the signed sum. Times are
 * local Asia/Shanghai wall time (UTC+8, no daylight saving) without an offset. Pure: no I/O.
 */

export const STATEMENT_TIME_ZONE = 'Asia/Shanghai';
/** Asia/Shanghai is UTC+8 all year. */
const SHANGHAI_OFFSET_MS = 8 * 3_600_000;

/** The header row's columns, in order. */
export const STATEMENT_COLUMNS = [
  '交易号', // provider trade number
  '商户订单号', // the shop's order id
  '业务类型', // 交易 (payment) | 退款 (refund)
  '退款请求号', // the shop's out_request_no of a refund; empty on a payment row
  '币种', // ISO 4217
  '金额', // major units, two decimals, negative on refund rows
  '服务费', // the provider's fee, major units, negative (given back) on refund rows
  '状态', // TRADE_SUCCESS on payment rows, REFUND_SUCCESS on refund rows (a fault may say otherwise)
  '完成时间', // Asia/Shanghai wall time, YYYY-MM-DD HH:mm:ss
] as const;

export const ROW_TYPE_LABELS = { pay: '交易', refund: '退款' } as const;
export type StatementRowType = keyof typeof ROW_TYPE_LABELS;
export const PAID_ROW_STATUS = 'TRADE_SUCCESS';
export const REFUND_ROW_STATUS = 'REFUND_SUCCESS';

export const END_OF_DETAIL_LINE = '#end of detail';
export const SUMMARY_PREFIX = '#summary:';

/** One row of the bill, in payrecon's units. */
export interface StatementRow {
  tradeNo: string;
  orderId: string;
  type: StatementRowType;
  /** The refund's out_request_no; null on payment rows. */
  outRequestNo: string | null;
  currency: string;
  /** Minor units, positive for both payments and refunds (the row type says which). */
  amount: number;
  /** Minor units, signed as on the bill. */
  fee: number;
  status: string;
  /** The instant the provider completed it. */
  occurredAt: Date;
}

/** The bill's own control totals, in minor units (refundAmount positive, fee signed). */
export interface StatementSummary {
  rows: number;
  payCount: number;
  payAmount: number;
  refundCount: number;
  refundAmount: number;
  fee: number;
}

export interface StatementFormat {
  encoding: 'utf-8' | 'gbk';
  zipped: boolean;
}

/** What the provider answers when asked for a day's bill: where to download it, and until when. */
export interface StatementLocation {
  /** YYYY-MM-DD, an Asia/Shanghai calendar day. */
  billDate: string;
  downloadUrl: string;
  expiresAt: string;
  format: StatementFormat;
}

// --- money --------------------------------------------------------------------------------------------

/** 1234 → "12.34", -5 → "-0.05". Two-decimal currencies (the bill's convention). */
export function formatMajorUnits(minor: number): string {
  if (!Number.isSafeInteger(minor)) throw new RangeError(`not an integer amount: ${minor}`);
  const sign = minor < 0 ? '-' : '';
  const abs = Math.abs(minor);
  return `${sign}${Math.trunc(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

const MAJOR_UNITS = /^(-?)(\d{1,15})(?:\.(\d{1,2}))?$/;

/** "12.34" → 1234, "-0.5" → -50, by the text alone; anything else (3 decimals, "1e3", "") throws. */
export function parseMajorUnits(text: string): number {
  const match = MAJOR_UNITS.exec(text.trim());
  if (!match) throw new RangeError(`not an amount with at most two decimals: ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = ''] = match;
  const minor = Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
  if (!Number.isSafeInteger(minor)) throw new RangeError(`amount out of range: ${text}`);
  return sign === '-' && minor !== 0 ? -minor : minor;
}

/** The provider's fee on a payment: 0.6 %, rounded half up (as the simulator charges it). */
export function feeFor(amount: number): number {
  return Math.floor((amount * 6 + 500) / 1000);
}

// --- time ---------------------------------------------------------------------------------------------

const BILL_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** True for a real calendar date written YYYY-MM-DD. */
export function isBillDate(text: string): boolean {
  if (!BILL_DATE.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().startsWith(text);
}

/** The Asia/Shanghai day [start, end) as UTC instants. */
export function billDayBounds(billDate: string): { start: Date; end: Date } {
  if (!isBillDate(billDate)) throw new RangeError(`not a date (YYYY-MM-DD): ${billDate}`);
  const start = new Date(Date.parse(`${billDate}T00:00:00Z`) - SHANGHAI_OFFSET_MS);
  return { start, end: new Date(start.getTime() + 86_400_000) };
}

/** The Asia/Shanghai calendar day of an instant. */
export function billDateOf(instant: Date): string {
  return new Date(instant.getTime() + SHANGHAI_OFFSET_MS).toISOString().slice(0, 10);
}

/** The day before or after a bill date. */
export function shiftBillDate(billDate: string, days: number): string {
  const { start } = billDayBounds(billDate);
  return billDateOf(new Date(start.getTime() + days * 86_400_000));
}

/** An instant as the bill prints it: Asia/Shanghai wall time, `YYYY-MM-DD HH:mm:ss`. */
export function formatBillTime(instant: Date): string {
  return new Date(instant.getTime() + SHANGHAI_OFFSET_MS).toISOString().slice(0, 19).replace('T', ' ');
}

const BILL_TIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})$/;

export function parseBillTime(text: string): Date {
  const match = BILL_TIME.exec(text.trim());
  const instant = match ? Date.parse(`${match[1]}T${match[2]}Z`) - SHANGHAI_OFFSET_MS : Number.NaN;
  if (Number.isNaN(instant))
    throw new RangeError(`not a time (YYYY-MM-DD HH:mm:ss): ${JSON.stringify(text)}`);
  return new Date(instant);
}

// --- lines --------------------------------------------------------------------------------------------

/** The bill's lines for one row, as the provider writes it (fields never contain commas or quotes). */
export function formatStatementRow(row: StatementRow): string {
  const sign = row.type === 'refund' ? -1 : 1;
  return [
    row.tradeNo,
    row.orderId,
    ROW_TYPE_LABELS[row.type],
    row.outRequestNo ?? '',
    row.currency,
    formatMajorUnits(sign * row.amount),
    formatMajorUnits(row.fee),
    row.status,
    formatBillTime(row.occurredAt),
  ].join(',');
}

export function formatSummaryLine(summary: StatementSummary): string {
  return (
    `${SUMMARY_PREFIX}rows=${summary.rows};pay_count=${summary.payCount};` +
    `pay_amount=${formatMajorUnits(summary.payAmount)};refund_count=${summary.refundCount};` +
    `refund_amount=${formatMajorUnits(summary.refundAmount)};fee=${formatMajorUnits(summary.fee)}`
  );
}

export function parseSummaryLine(line: string): StatementSummary {
  if (!line.startsWith(SUMMARY_PREFIX)) throw new RangeError(`not a summary line: ${line.slice(0, 80)}`);
  const fields = new Map(
    line
      .slice(SUMMARY_PREFIX.length)
      .split(';')
      .map((pair) => pair.split('=', 2) as [string, string | undefined]),
  );
  const count = (key: string): number => {
    const value = fields.get(key);
    if (value === undefined || !/^\d+$/.test(value))
      throw new RangeError(`summary: ${key} is missing or not a count`);
    return Number(value);
  };
  const money = (key: string): number => {
    const value = fields.get(key);
    if (value === undefined) throw new RangeError(`summary: ${key} is missing`);
    return parseMajorUnits(value);
  };
  return {
    rows: count('rows'),
    payCount: count('pay_count'),
    payAmount: money('pay_amount'),
    refundCount: count('refund_count'),
    refundAmount: money('refund_amount'),
    fee: money('fee'),
  };
}

/** A parsed row's fields, by the header's column names, into a row; throws with what is wrong. */
export function toStatementRow(fields: readonly string[]): StatementRow {
  if (fields.length !== STATEMENT_COLUMNS.length) {
    throw new RangeError(`expected ${STATEMENT_COLUMNS.length} columns, found ${fields.length}`);
  }
  const [tradeNo, orderId, typeLabel, outRequestNo, currency, amount, fee, status, time] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const type =
    typeLabel === ROW_TYPE_LABELS.pay ? 'pay' : typeLabel === ROW_TYPE_LABELS.refund ? 'refund' : null;
  if (!type) throw new RangeError(`unknown row type ${JSON.stringify(typeLabel)}`);
  if (!tradeNo) throw new RangeError('trade number is empty');
  if (!orderId) throw new RangeError('merchant order number is empty');
  if (type === 'refund' && !outRequestNo)
    throw new RangeError('a refund row without its refund request number');
  const signed = parseMajorUnits(amount);
  if (type === 'pay' ? signed < 0 : signed > 0) {
    throw new RangeError(`a ${type} row's amount has the wrong sign: ${amount}`);
  }
  return {
    tradeNo,
    orderId,
    type,
    outRequestNo: type === 'refund' ? outRequestNo : null,
    currency,
    amount: Math.abs(signed),
    fee: parseMajorUnits(fee),
    status,
    occurredAt: parseBillTime(time),
  };
}
