import { z } from 'zod';

/**
 * Faults of one day's WeChat Pay trade bill, as tools/providers/alipay/bill-faults.ts has them for the
 * fake Alipay: they change only what the bill prints (a payment row missing, a row for a trade that
 * never was, an amount off by some fen, summary totals that do not add up), never the fake's trades, so
 * payrecon's reconciliation must find each as a break. Amounts are fen, printed in yuan. A bill whose
 * declared SHA1 is wrong is the `badBillHash` fault of the server, not of the day.
 */

// WeChat's out_trade_no: 6-32 of letters, digits, _ - | * (server.ts checks the same on a Native order).
const outTradeNo = z
  .string()
  .regex(/^[A-Za-z0-9_\-|*]{6,32}$/, 'an out_trade_no is 6-32 letters, digits, _ - | or *');
const fen = z.int('amounts are integers in fen');

export const wechatBillFaultsSchema = z.strictObject({
  /** These orders' payment rows are missing (their refund rows stay). */
  omitPayments: z.array(outTradeNo).max(1_000).optional(),
  /** Payment rows for trades the fake never had. */
  extraPayments: z
    .array(
      z.strictObject({
        outTradeNo,
        amountFen: fen.positive(),
        /** Default: one made up from the day and the row's place. */
        transactionId: z
          .string()
          .regex(/^\d{28}$/, 'a 微信订单号 is 28 digits')
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
  /**
   * Added to the summary row after it is computed from the rows: 总交易单数 (rows), 订单总金额
   * (payAmount), 申请退款总金额 (refundAmount), 手续费总金额 (fee). WeChat declares no count per type.
   */
  totalsDelta: z
    .strictObject({ rows: z.int(), payAmount: fen, refundAmount: fen, fee: fen })
    .partial()
    .optional(),
});
export type WechatBillFaults = z.infer<typeof wechatBillFaultsSchema>;
export type WechatBillTotalsDelta = NonNullable<WechatBillFaults['totalsDelta']>;

/** A payment row as the fake prints it (server.ts renders the fields). */
export interface WechatBillPayment {
  outTradeNo: string;
  transactionId: string;
  appid: string;
  openid: string;
  description: string;
  currency: string;
  paidAt: Date;
  totalFen: number;
}

/** The day's payment rows as the faulted bill prints them. */
export function applyBillFaults(
  billDate: string,
  payments: WechatBillPayment[],
  appid: string,
  faults: WechatBillFaults = {},
): WechatBillPayment[] {
  const omitted = new Set(faults.omitPayments ?? []);
  const printed = payments
    .filter((row) => !omitted.has(row.outTradeNo))
    .map((row) => {
      const delta = faults.amountDeltas?.[row.outTradeNo];
      return delta ? { ...row, totalFen: row.totalFen + delta } : row;
    });
  const noon = new Date(`${billDate}T04:00:00Z`);
  for (const [index, extra] of (faults.extraPayments ?? []).entries()) {
    printed.push({
      outTradeNo: extra.outTradeNo,
      transactionId:
        extra.transactionId ?? `42${billDate.replaceAll('-', '')}9${String(index + 1).padStart(17, '0')}`,
      appid,
      openid: `oGhost${String(index + 1).padStart(22, '0')}`,
      description: `Order ${extra.outTradeNo}`,
      currency: 'CNY',
      paidAt: extra.at ? new Date(extra.at) : noon,
      totalFen: extra.amountFen,
    });
  }
  return printed;
}
