import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { type StatementEntry, StatementFormatError } from '../statement';
import {
  PAID_ROW_STATUS,
  parseBillTime,
  REFUND_ROW_STATUS,
  type StatementRow,
  type StatementSummary,
} from '../statement-format';

/**
 * WeChat Pay's trade bill (交易账单, `bill_type=ALL`), read into payrecon's statement entries. The file
 * is UTF-8 CSV: a header row, one row per payment or refund whose every field starts with a backtick
 * (so that a spreadsheet keeps long numbers as text), then a summary header and one summary row.
 *
 * ```
 * 交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,…,订单金额,申请退款金额,费率备注
 * `2026-03-01 10:00:00,`wx…,`1900000001,`0,`,`4200…,`ord_1,`o…,`NATIVE,`SUCCESS,`OTHERS,`CNY,`12.34,…
 * 总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额
 * `2,`12.34,`2.00,`0.00,`0.06000,`12.34,`2.00
 * ```
 *
 * Money is in yuan, two decimals, fees with five (always whole fen); parsed to fen from the text alone.
 */

export const TRADE_BILL_COLUMNS = [
  '交易时间',
  '公众账号ID',
  '商户号',
  '特约商户号',
  '设备号',
  '微信订单号',
  '商户订单号',
  '用户标识',
  '交易类型',
  '交易状态',
  '付款银行',
  '货币种类',
  '应结订单金额',
  '代金券金额',
  '微信退款单号',
  '商户退款单号',
  '退款金额',
  '充值券退款金额',
  '退款类型',
  '退款状态',
  '商品名称',
  '商户数据包',
  '手续费',
  '费率',
  '订单金额',
  '申请退款金额',
  '费率备注',
] as const;

export const TRADE_BILL_SUMMARY_COLUMNS = [
  '总交易单数',
  '应结订单总金额',
  '退款总金额',
  '充值券退款总金额',
  '手续费总金额',
  '订单总金额',
  '申请退款总金额',
] as const;

const column = (name: (typeof TRADE_BILL_COLUMNS)[number]) => TRADE_BILL_COLUMNS.indexOf(name);
const summaryColumn = (name: (typeof TRADE_BILL_SUMMARY_COLUMNS)[number]) =>
  TRADE_BILL_SUMMARY_COLUMNS.indexOf(name);

const YUAN = /^(-?)(\d{1,13})(?:\.(\d{1,5}))?$/;

/**
 * "12.34" → 1234 fen, "-0.27000" → -27, by the text alone (never through a float). Up to five decimals
 * are read (the bill prints fees that way), but an amount that is not a whole number of fen throws:
 * payrecon counts in fen, and rounding money silently would hide a difference.
 */
export function parseYuan(text: string): number {
  const match = YUAN.exec(text);
  if (!match) throw new RangeError(`not an amount in yuan: ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = ''] = match as unknown as [string, string, string, string | undefined];
  const digits = fraction.padEnd(5, '0');
  if (!/^0*$/.test(digits.slice(2))) {
    throw new RangeError(`not a whole number of fen: ${JSON.stringify(text)}`);
  }
  const fen = Number(whole) * 100 + Number(digits.slice(0, 2));
  return sign === '-' && fen !== 0 ? -fen : fen;
}

/** The fields of one backtick-prefixed line: "`a,`b,`" → ["a", "b", ""]. */
export function splitBillLine(line: string): string[] {
  // Splitting on ",`" rather than "," keeps a comma inside a field (商品名称, 商户数据包) in its field.
  return line.slice(1).split(',`');
}

/** The sums the adapter checks itself: WeChat declares them but payrecon's summary has no place for them. */
interface OwnTotals {
  rows: number;
  payCount: number;
  refundCount: number;
  settlement: number;
  refunded: number;
  voucherRefunded: number;
}

export async function* readTradeBill(file: Readable): AsyncGenerator<StatementEntry> {
  const lines = createInterface({ input: file, crlfDelay: Number.POSITIVE_INFINITY });
  file.on('error', (error) => lines.emit('error', error));
  const totals: OwnTotals = {
    rows: 0,
    payCount: 0,
    refundCount: 0,
    settlement: 0,
    refunded: 0,
    voucherRefunded: 0,
  };
  let state: 'header' | 'rows' | 'summary' | 'done' = 'header';
  let line = 0;
  for await (const raw of lines) {
    line++;
    const text = line === 1 ? raw.replace(/^\uFEFF/, '') : raw;
    if (text.trim() === '') continue;
    if (state === 'header') {
      if (text !== TRADE_BILL_COLUMNS.join(',')) {
        throw new StatementFormatError(
          `line ${line}: expected the trade bill header (bill_type=ALL), found ${text.slice(0, 200)}`,
        );
      }
      state = 'rows';
      continue;
    }
    if (state === 'rows' && text === TRADE_BILL_SUMMARY_COLUMNS.join(',')) {
      state = 'summary';
      continue;
    }
    if (state === 'rows') {
      totals.rows++;
      try {
        const { row, settlement, refunded, voucherRefunded } = toRow(text);
        if (row.type === 'pay') totals.payCount++;
        else totals.refundCount++;
        totals.settlement += settlement;
        totals.refunded += refunded;
        totals.voucherRefunded += voucherRefunded;
        yield { kind: 'row', line, row };
      } catch (error) {
        yield { kind: 'rejected', line, reason: (error as Error).message };
      }
      continue;
    }
    if (state === 'summary') {
      state = 'done';
      yield* summaryEntries(text, line, totals);
      continue;
    }
    yield { kind: 'rejected', line, reason: 'a line after the summary' };
  }
  if (state === 'header') throw new StatementFormatError('the trade bill has no header row');
  // No summary: the caller's control totals report it missing (summary_missing), nothing is made up.
}

function toRow(text: string): {
  row: StatementRow;
  settlement: number;
  refunded: number;
  voucherRefunded: number;
} {
  if (!text.startsWith('`')) throw new RangeError('a detail row whose fields do not start with a backtick');
  const fields = splitBillLine(text);
  if (fields.length !== TRADE_BILL_COLUMNS.length) {
    throw new RangeError(`expected ${TRADE_BILL_COLUMNS.length} fields, found ${fields.length}`);
  }
  const field = (name: (typeof TRADE_BILL_COLUMNS)[number]) => (fields[column(name)] ?? '').trim();
  const money = (name: (typeof TRADE_BILL_COLUMNS)[number]) => {
    try {
      return parseYuan(field(name));
    } catch (error) {
      throw new RangeError(`${name}: ${(error as Error).message}`);
    }
  };
  const tradeState = field('交易状态');
  // A refund is a row of its own with 交易状态 REFUND; its 订单金额 is 0.00, its money in 申请退款金额.
  const isRefund = tradeState === 'REFUND';
  const tradeNo = field('微信订单号');
  const orderId = field('商户订单号');
  if (!tradeNo) throw new RangeError('微信订单号 is empty');
  if (!orderId) throw new RangeError('商户订单号 is empty');
  const outRefundNo = field('商户退款单号');
  if (isRefund && (!outRefundNo || outRefundNo === '0')) {
    throw new RangeError('a refund row without its 商户退款单号');
  }
  const amount = isRefund ? money('申请退款金额') : money('订单金额');
  if (amount < 0) throw new RangeError(`a negative amount on a ${isRefund ? 'refund' : 'payment'} row`);
  let occurredAt: Date;
  try {
    occurredAt = parseBillTime(field('交易时间'));
  } catch (error) {
    throw new RangeError(`交易时间: ${(error as Error).message}`);
  }
  const refundState = field('退款状态');
  return {
    row: {
      tradeNo,
      orderId,
      type: isRefund ? 'refund' : 'pay',
      outRequestNo: isRefund ? outRefundNo : null,
      currency: field('货币种类'),
      amount,
      fee: money('手续费'),
      // payrecon's statement vocabulary; any other state is kept as WeChat says it, for a break to show.
      status: isRefund
        ? refundState === 'SUCCESS'
          ? REFUND_ROW_STATUS
          : `REFUND_${refundState || 'UNKNOWN'}`
        : tradeState === 'SUCCESS'
          ? PAID_ROW_STATUS
          : tradeState,
      occurredAt,
    },
    settlement: money('应结订单金额'),
    refunded: isRefund ? money('退款金额') : 0,
    voucherRefunded: isRefund ? money('充值券退款金额') : 0,
  };
}

/**
 * WeChat declares the number of rows, the order, refund and fee totals: those go into payrecon's summary,
 * where the reconciliation checks them against the staged rows. It declares no count per type, so those
 * two are the counts read (they add nothing). The totals payrecon's summary has no place for (应结订单
 * 总金额, 退款总金额, 充值券退款总金额) are checked here: a difference is a rejected line of its own.
 */
function* summaryEntries(text: string, line: number, totals: OwnTotals): Generator<StatementEntry> {
  if (!text.startsWith('`')) {
    yield { kind: 'rejected', line, reason: 'summary: its fields do not start with a backtick' };
    return;
  }
  const fields = splitBillLine(text);
  if (fields.length !== TRADE_BILL_SUMMARY_COLUMNS.length) {
    yield {
      kind: 'rejected',
      line,
      reason: `summary: expected ${TRADE_BILL_SUMMARY_COLUMNS.length} fields, found ${fields.length}`,
    };
    return;
  }
  const field = (name: (typeof TRADE_BILL_SUMMARY_COLUMNS)[number]) =>
    (fields[summaryColumn(name)] ?? '').trim();
  let summary: StatementSummary;
  let declared: { settlement: number; refunded: number; voucherRefunded: number };
  try {
    const rows = field('总交易单数');
    if (!/^\d+$/.test(rows)) throw new RangeError(`总交易单数 is not a count: ${JSON.stringify(rows)}`);
    const money = (name: (typeof TRADE_BILL_SUMMARY_COLUMNS)[number]) => {
      try {
        return parseYuan(field(name));
      } catch (error) {
        throw new RangeError(`${name}: ${(error as Error).message}`);
      }
    };
    summary = {
      rows: Number(rows),
      payCount: totals.payCount,
      payAmount: money('订单总金额'),
      refundCount: totals.refundCount,
      refundAmount: money('申请退款总金额'),
      fee: money('手续费总金额'),
    };
    declared = {
      settlement: money('应结订单总金额'),
      refunded: money('退款总金额'),
      voucherRefunded: money('充值券退款总金额'),
    };
  } catch (error) {
    yield { kind: 'rejected', line, reason: `summary: ${(error as Error).message}` };
    return;
  }
  yield { kind: 'summary', line, summary };
  for (const [name, ours, theirs] of [
    ['应结订单总金额', totals.settlement, declared.settlement],
    ['退款总金额', totals.refunded, declared.refunded],
    ['充值券退款总金额', totals.voucherRefunded, declared.voucherRefunded],
  ] as const) {
    if (ours !== theirs) {
      yield {
        kind: 'rejected',
        line,
        reason: `summary: ${name} declares ${theirs} fen, the readable rows add up to ${ours} fen`,
      };
    }
  }
}
