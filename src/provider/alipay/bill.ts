import { type Readable, Transform, type TransformCallback } from 'node:stream';
import { parse } from 'csv-parse';
import { Unzip, UnzipInflate } from 'fflate';
import iconv from 'iconv-lite';
import { type StatementEntry, StatementFormatError } from '../statement';
import { PAID_ROW_STATUS, parseBillTime, REFUND_ROW_STATUS, type StatementRow } from '../statement-format';
import { yuanToFen } from './yuan';

/**
 * Alipay's trade bill (bill_type=trade), read into payrecon's statement entries. The download is a zip of
 * two GBK CSV files, `<pid>_<yyyyMMdd>_业务明细.csv` (one row per payment or refund) and
 * `<pid>_<yyyyMMdd>_业务明细(汇总).csv` (totals per store), each wrapped in `#` comment lines:
 *
 * ```
 * #支付宝业务明细查询
 * #账号：[20881234567890120156]
 * #起始日期：[2026年01月10日 00:00:00]   终止日期：[2026年01月11日 00:00:00]
 * #-----------------------------------------业务明细列表----------------------------------------
 * 支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,…,订单金额（元）,商家实收（元）,…,退款批次号/请求号,服务费（元）,分润（元）,备注
 * 2026011022001412345678901234	,ord-1	,交易	,…,12.34	,12.34	,…,	,0.07	,0.00	,
 * #-----------------------------------------业务明细列表结束------------------------------------
 * #交易合计：1笔，商家实收：12.34元，商家优惠：0.00元
 * #退款合计：0笔，商家实收：0.00元，商家优惠：0.00元
 * #导出时间：[2026年01月11日 09:41:15]
 * ```
 *
 * Fields carry a trailing tab (so spreadsheets keep long numbers as text): every field is trimmed. A row's
 * amount is its 商家实收（元） (negative on a refund row), the column the bill's own 合计 lines add up, so
 * the control totals check what was read; the fee total comes from the 汇总 file's 合计 row. The bill
 * lists completed business only: a payment row is TRADE_SUCCESS, a refund row REFUND_SUCCESS.
 */

/** The detail file's header, as Alipay prints it. */
export const ALIPAY_BILL_COLUMNS = [
  '支付宝交易号',
  '商户订单号',
  '业务类型',
  '商品名称',
  '创建时间',
  '完成时间',
  '门店编号',
  '门店名称',
  '操作员',
  '终端号',
  '对方账户',
  '订单金额（元）',
  '商家实收（元）',
  '支付宝红包（元）',
  '集分宝（元）',
  '支付宝优惠（元）',
  '商家优惠（元）',
  '券核销金额（元）',
  '券名称',
  '商家红包消费金额（元）',
  '卡消费金额（元）',
  '退款批次号/请求号',
  '服务费（元）',
  '分润（元）',
  '备注',
] as const;

/** The columns payrecon reads; the others may move or change without harm. */
const NEEDED = [
  '支付宝交易号',
  '商户订单号',
  '业务类型',
  '完成时间',
  '商家实收（元）',
  '退款批次号/请求号',
  '服务费（元）',
] as const;
type Needed = (typeof NEEDED)[number];

const PAY_TOTAL = /^#交易合计：(\d+)笔，商家实收：(-?[\d.]+)元/;
const REFUND_TOTAL = /^#退款合计：(\d+)笔，商家实收：(-?[\d.]+)元/;

export async function* readAlipayTradeBill(file: Readable): AsyncGenerator<StatementEntry> {
  const entries = new AlipayBillEntries();
  const parser = file
    .pipe(entries)
    .pipe(iconv.decodeStream('gbk'))
    .pipe(parse({ relax_column_count: true, relax_quotes: true, skip_empty_lines: true, info: true }));
  file.on('error', (error) => parser.destroy(error));
  entries.on('error', (error) => parser.destroy(error));
  let columns: Map<Needed, number> | null = null;
  let payTotal: { count: number; amount: number; line: number } | null = null;
  let refundTotal: { count: number; amount: number; line: number } | null = null;
  for await (const { record, info } of parser as AsyncIterable<{
    record: string[];
    info: { lines: number };
  }>) {
    const line = info.lines;
    const fields = record.map((field) => field.trim());
    if ((fields[0] ?? '').startsWith('#')) {
      const text = fields.join(',');
      try {
        const pay = PAY_TOTAL.exec(text);
        if (pay) payTotal = { count: Number(pay[1]), amount: yuanToFen(pay[2] ?? ''), line };
        const refund = REFUND_TOTAL.exec(text);
        // 0 - x, not -x: an empty day's 0.00 is 0, not -0.
        if (refund) refundTotal = { count: Number(refund[1]), amount: 0 - yuanToFen(refund[2] ?? ''), line };
      } catch (error) {
        yield { kind: 'rejected', line, reason: `summary: ${(error as Error).message}` };
      }
      continue;
    }
    if (!columns) {
      columns = headerColumns(fields, line);
      continue;
    }
    try {
      yield { kind: 'row', line, row: toRow(fields, columns) };
    } catch (error) {
      yield { kind: 'rejected', line, reason: (error as Error).message };
    }
  }
  if (!entries.sawDetail) throw new StatementFormatError('the bill holds no 业务明细 file');
  if (!columns) throw new StatementFormatError('the 业务明细 file has no header row');
  // No 合计 lines: no summary entry, which the reconciliation reports as a missing summary.
  if (!payTotal || !refundTotal) return;
  const line = Math.max(payTotal.line, refundTotal.line);
  let fee: number;
  try {
    fee = feeTotal(entries.summaryFile());
  } catch (error) {
    yield { kind: 'rejected', line, reason: `summary: ${(error as Error).message}` };
    return;
  }
  yield {
    kind: 'summary',
    line,
    summary: {
      rows: payTotal.count + refundTotal.count,
      payCount: payTotal.count,
      payAmount: payTotal.amount,
      refundCount: refundTotal.count,
      refundAmount: refundTotal.amount,
      fee,
    },
  };
}

function headerColumns(fields: readonly string[], line: number): Map<Needed, number> {
  const columns = new Map<Needed, number>();
  for (const name of NEEDED) {
    const index = fields.indexOf(name);
    if (index < 0) {
      throw new StatementFormatError(
        `line ${line}: the 业务明细 header lacks ${name}: ${fields.join(',').slice(0, 200)}`,
      );
    }
    columns.set(name, index);
  }
  return columns;
}

function toRow(fields: readonly string[], columns: Map<Needed, number>): StatementRow {
  const field = (name: Needed) => fields[columns.get(name) ?? -1] ?? '';
  const typeLabel = field('业务类型');
  const type = typeLabel === '交易' ? 'pay' : typeLabel === '退款' ? 'refund' : null;
  if (!type) throw new RangeError(`unknown 业务类型 ${JSON.stringify(typeLabel)}`);
  const tradeNo = field('支付宝交易号');
  const orderId = field('商户订单号');
  const outRequestNo = field('退款批次号/请求号');
  if (!tradeNo) throw new RangeError('支付宝交易号 is empty');
  if (!orderId) throw new RangeError('商户订单号 is empty');
  if (type === 'refund' && !outRequestNo) throw new RangeError('a refund row without its 退款批次号/请求号');
  const received = yuanToFen(field('商家实收（元）'));
  if (type === 'pay' ? received < 0 : received > 0) {
    throw new RangeError(`a ${type} row's 商家实收 has the wrong sign: ${field('商家实收（元）')}`);
  }
  return {
    tradeNo,
    orderId,
    type,
    outRequestNo: type === 'refund' ? outRequestNo : null,
    // Alipay's domestic trade bill is in yuan, and only yuan.
    currency: 'CNY',
    amount: Math.abs(received),
    fee: yuanToFen(field('服务费（元）')),
    status: type === 'pay' ? PAID_ROW_STATUS : REFUND_ROW_STATUS,
    occurredAt: parseBillTime(field('完成时间')),
  };
}

/** The 服务费（元） of the 汇总 file's 合计 row. */
function feeTotal(file: Buffer | null): number {
  if (!file) throw new RangeError('the bill holds no 业务明细(汇总) file');
  const lines = iconv
    .decode(file, 'gbk')
    .split(/\r?\n/)
    .map((text) => text.split(',').map((field) => field.trim()))
    .filter((fields) => fields.length > 1 && !(fields[0] ?? '').startsWith('#'));
  const header = lines[0] ?? [];
  const feeColumn = header.indexOf('服务费（元）');
  const total = lines.find((fields) => fields[0] === '合计');
  if (feeColumn < 0 || !total) throw new RangeError('the 汇总 file has no 服务费（元） 合计');
  return yuanToFen(total[feeColumn] ?? '');
}

/**
 * The bill's zip, streamed: passes on the 业务明细 file's bytes and keeps the small 汇总 file aside.
 * Alipay names the entries in GBK without the zip's UTF-8 flag, so fflate hands the name over as Latin-1.
 */
class AlipayBillEntries extends Transform {
  private readonly unzip = new Unzip();
  private readonly summary: Buffer[] = [];
  private summarySeen = false;
  sawDetail = false;

  constructor() {
    super();
    this.unzip.register(UnzipInflate);
    this.unzip.onfile = (entry) => {
      const name = entryName(entry.name);
      if (!name.endsWith('.csv')) return;
      const isSummary = name.includes('汇总');
      if (isSummary ? this.summarySeen : this.sawDetail) return;
      if (isSummary) this.summarySeen = true;
      else this.sawDetail = true;
      entry.ondata = (error, data) => {
        if (error) this.destroy(new StatementFormatError(`the bill's zip cannot be read: ${error.message}`));
        else if (data.length === 0) return;
        else if (isSummary) this.summary.push(Buffer.from(data));
        else this.push(Buffer.from(data.buffer, data.byteOffset, data.length));
      };
      entry.start();
    };
  }

  /** The 汇总 file, complete once this stream has ended. */
  summaryFile(): Buffer | null {
    return this.summarySeen ? Buffer.concat(this.summary) : null;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    try {
      this.unzip.push(chunk);
      done();
    } catch (error) {
      done(new StatementFormatError(`the bill's zip cannot be read: ${(error as Error).message}`));
    }
  }

  override _flush(done: TransformCallback): void {
    try {
      this.unzip.push(new Uint8Array(0), true);
      done();
    } catch (error) {
      done(new StatementFormatError(`the bill's zip cannot be read: ${(error as Error).message}`));
    }
  }
}

/** A name fflate read as Latin-1 (no UTF-8 flag) is GBK bytes; one with wider characters was UTF-8. */
function entryName(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the Latin-1 range is the point
  return /^[\u0000-\u00ff]*$/.test(name) ? iconv.decode(Buffer.from(name, 'latin1'), 'gbk') : name;
}
