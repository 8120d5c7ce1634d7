import { zipSync } from 'fflate';
import iconv from 'iconv-lite';

/**
 * The fake's trade bill, written the way Alipay's bill download serves it: a zip of two GBK CSV files,
 * `<pid>_<yyyyMMdd>_业务明细.csv` and `<pid>_<yyyyMMdd>_业务明细(汇总).csv`, with `#` comment lines, a
 * trailing tab on every field, the 合计 lines under the detail, and entry names in GBK without the zip's
 * UTF-8 flag. Written from the format, not from payrecon's reader.
 */

export interface BillPayment {
  tradeNo: string;
  outTradeNo: string;
  subject: string;
  createdAt: Date;
  paidAt: Date;
  totalFen: number;
  feeFen: number;
}

export interface BillRefund {
  tradeNo: string;
  outTradeNo: string;
  outRequestNo: string;
  subject: string;
  createdAt: Date;
  refundedAt: Date;
  totalFen: number;
  refundFen: number;
  /** Negative: the share of the fee given back. */
  feeFen: number;
}

/** Fen (and counts) added to the totals the rows add up to: a bill whose 合计 lines do not add up. */
export interface BillTotalsDelta {
  payCount?: number;
  payAmount?: number;
  refundCount?: number;
  refundAmount?: number;
  fee?: number;
}

const DETAIL_HEADER =
  '支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,' +
  '订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,' +
  '券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注';
const SUMMARY_HEADER =
  '门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,' +
  '卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）';
const RULE = '-----------------------------------------';

/** Fen as the bill prints yuan: 1 → "0.01", -250 → "-2.50". */
export function yuan(fen: number): string {
  const abs = Math.abs(fen);
  return `${fen < 0 ? '-' : ''}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Asia/Shanghai wall time, `yyyy-MM-dd HH:mm:ss`. */
export function shanghaiTime(instant: Date): string {
  return new Date(instant.getTime() + 8 * 3_600_000).toISOString().slice(0, 19).replace('T', ' ');
}

function chineseDate(billDate: string, next = false): string {
  const day = new Date(Date.parse(`${billDate}T00:00:00Z`) + (next ? 86_400_000 : 0)).toISOString();
  return `${day.slice(0, 4)}年${day.slice(5, 7)}月${day.slice(8, 10)}日 00:00:00`;
}

function line(fields: readonly (string | number)[]): string {
  return fields.map((field) => `${field}\t`).join(',');
}

export function tradeBillZip(input: {
  pid: string;
  billDate: string;
  exportedAt: Date;
  payments: readonly BillPayment[];
  refunds: readonly BillRefund[];
  totalsDelta?: BillTotalsDelta;
}): Uint8Array {
  const { pid, billDate, payments, refunds } = input;
  const delta = input.totalsDelta ?? {};
  const period = `#起始日期：[${chineseDate(billDate)}]   终止日期：[${chineseDate(billDate, true)}]`;
  const exported = shanghaiTime(input.exportedAt).replace(/^(\d+)-(\d+)-(\d+)/, '$1年$2月$3日');
  const payCount = payments.length + (delta.payCount ?? 0);
  const refundCount = refunds.length + (delta.refundCount ?? 0);
  const payTotal = payments.reduce((sum, row) => sum + row.totalFen, 0) + (delta.payAmount ?? 0);
  const refundTotal = refunds.reduce((sum, row) => sum + row.refundFen, 0) + (delta.refundAmount ?? 0);
  const feeTotal = [...payments, ...refunds].reduce((sum, row) => sum + row.feeFen, 0) + (delta.fee ?? 0);
  const detail = [
    '#支付宝业务明细查询',
    `#账号：[${pid}0156]`,
    period,
    `#${RULE}业务明细列表${RULE}`,
    DETAIL_HEADER,
    ...payments.map((row) =>
      line([
        row.tradeNo,
        row.outTradeNo,
        '交易',
        row.subject,
        shanghaiTime(row.createdAt),
        shanghaiTime(row.paidAt),
        '',
        '',
        '',
        '',
        'buy***@example.com',
        yuan(row.totalFen),
        yuan(row.totalFen),
        '0.00',
        '0.00',
        '0.00',
        '0.00',
        '0.00',
        '',
        '0.00',
        '0.00',
        '',
        yuan(row.feeFen),
        '0.00',
        '',
      ]),
    ),
    ...refunds.map((row) =>
      line([
        row.tradeNo,
        row.outTradeNo,
        '退款',
        row.subject,
        shanghaiTime(row.createdAt),
        shanghaiTime(row.refundedAt),
        '',
        '',
        '',
        '',
        'buy***@example.com',
        yuan(row.totalFen),
        yuan(-row.refundFen),
        '0.00',
        '0.00',
        '0.00',
        '0.00',
        '0.00',
        '',
        '0.00',
        '0.00',
        row.outRequestNo,
        yuan(row.feeFen),
        '0.00',
        '',
      ]),
    ),
    `#${RULE}业务明细列表结束${RULE}`,
    `#交易合计：${payCount}笔，商家实收：${yuan(payTotal)}元，商家优惠：0.00元`,
    `#退款合计：${refundCount}笔，商家实收：${yuan(-refundTotal)}元，商家优惠：0.00元`,
    `#导出时间：[${exported}]`,
  ];
  const received = payTotal - refundTotal;
  const summary = [
    '#支付宝业务汇总查询',
    `#账号：[${pid}0156]`,
    period,
    `#${RULE}业务汇总列表${RULE}`,
    SUMMARY_HEADER,
    line([
      '',
      '',
      payCount,
      refundCount,
      yuan(received),
      yuan(received),
      '0.00',
      '0.00',
      '0.00',
      yuan(feeTotal),
      '0.00',
      yuan(received - feeTotal),
    ]),
    line([
      '合计',
      '',
      payCount,
      refundCount,
      yuan(received),
      yuan(received),
      '0.00',
      '0.00',
      '0.00',
      yuan(feeTotal),
      '0.00',
      yuan(received - feeTotal),
    ]),
    `#${RULE}业务汇总列表结束${RULE}`,
    `#导出时间：[${exported}]`,
  ];
  const day = billDate.replaceAll('-', '');
  return zipWithGbkNames([
    [`${pid}_${day}_业务明细.csv`, iconv.encode(`${detail.join('\r\n')}\r\n`, 'gbk')],
    [`${pid}_${day}_业务明细(汇总).csv`, iconv.encode(`${summary.join('\r\n')}\r\n`, 'gbk')],
  ]);
}

/**
 * fflate writes names in UTF-8 and flags them so; Alipay's zips carry GBK names, unflagged. Each entry is
 * zipped under an ASCII stand-in of the GBK name's length, then the stand-in's bytes (in the local header
 * and the central directory; no checksum covers them) are swapped for the GBK ones.
 */
function zipWithGbkNames(files: readonly [string, Uint8Array][]): Uint8Array {
  const entries: Record<string, Uint8Array> = {};
  const swaps: [Buffer, Buffer][] = [];
  files.forEach(([name, data], index) => {
    const gbk = iconv.encode(name, 'gbk');
    const standIn = Buffer.from(String.fromCharCode(65 + index).repeat(gbk.length), 'latin1');
    entries[standIn.toString('latin1')] = data;
    swaps.push([standIn, gbk]);
  });
  const zip = Buffer.from(zipSync(entries, { level: 6 }));
  for (const [standIn, gbk] of swaps) {
    for (let at = zip.indexOf(standIn); at >= 0; at = zip.indexOf(standIn, at + gbk.length)) {
      gbk.copy(zip, at);
    }
  }
  return zip;
}
