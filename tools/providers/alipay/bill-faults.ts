import { z } from 'zod';
import type { BillPayment, BillRefund, BillTotalsDelta } from './bill';

/**
 * Faults of one day's Alipay trade bill, as tools/simulator/bill-faults.ts has them for the simulator:
 * they change only what the bill prints (a payment row missing, a row for a trade that never was, an
 * amount off by some fen, 合计 lines that do not add up), never the fake's trades, so payrecon's
 * reconciliation must find each as a break. Amounts are fen, printed in yuan.
 */

const outTradeNo = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'an out_trade_no is 1-64 letters, digits, _ or -');
const fen = z.int('amounts are integers in fen');

export const alipayBillFaultsSchema = z.strictObject({
  /** These orders' payment rows are missing. */
  omitPayments: z.array(outTradeNo).max(1_000).optional(),
  /** Payment rows for trades the fake never had. */
  extraPayments: z
    .array(
      z.strictObject({
        outTradeNo,
        amountFen: fen.positive(),
        /** Default: one made up from the day and the order id. */
        tradeNo: z
          .string()
          .regex(/^\d{28}$/, 'a 支付宝交易号 is 28 digits')
          .optional(),
        /** An ISO 8601 instant on the bill's day; default 12:00:00 Asia/Shanghai. */
        at: z.iso.datetime({ offset: true }).optional(),
      }),
    )
    .max(1_000)
    .optional(),
  /** out_trade_no → fen added to its payment row's amounts (its fee follows the printed amount). */
  amountDeltas: z
    .record(
      outTradeNo,
      fen.refine((delta) => delta !== 0, 'a delta is not 0'),
    )
    .optional(),
  /** Added to the 合计 lines (and the 汇总 file) after they are computed from the rows. */
  totalsDelta: z
    .strictObject({ payCount: z.int(), payAmount: fen, refundCount: z.int(), refundAmount: fen, fee: fen })
    .partial()
    .optional(),
});
export type AlipayBillFaults = z.infer<typeof alipayBillFaultsSchema>;

/** Alipay's standard rate, 0.6 %, rounded half up; given back in proportion on a refund. */
export function feeOf(fen: number): number {
  return Math.floor((fen * 6 + 500) / 1000);
}

/** The day's rows and totals' delta as the faulted bill prints them. */
export function applyBillFaults(
  billDate: string,
  rows: { payments: BillPayment[]; refunds: BillRefund[] },
  faults: AlipayBillFaults = {},
): { payments: BillPayment[]; refunds: BillRefund[]; totalsDelta?: BillTotalsDelta } {
  const omitted = new Set(faults.omitPayments ?? []);
  const payments = rows.payments
    .filter((row) => !omitted.has(row.outTradeNo))
    .map((row) => {
      const delta = faults.amountDeltas?.[row.outTradeNo];
      if (!delta) return row;
      return { ...row, totalFen: row.totalFen + delta, feeFen: feeOf(row.totalFen + delta) };
    });
  const noon = new Date(`${billDate}T04:00:00Z`);
  for (const [index, extra] of (faults.extraPayments ?? []).entries()) {
    const at = extra.at ? new Date(extra.at) : noon;
    payments.push({
      tradeNo: extra.tradeNo ?? `${billDate.replaceAll('-', '')}22009${String(index + 1).padStart(15, '0')}`,
      outTradeNo: extra.outTradeNo,
      subject: `Order ${extra.outTradeNo}`,
      createdAt: at,
      paidAt: at,
      totalFen: extra.amountFen,
      feeFen: feeOf(extra.amountFen),
    });
  }
  return {
    payments,
    refunds: rows.refunds,
    ...(faults.totalsDelta ? { totalsDelta: faults.totalsDelta } : {}),
  };
}
