import type { OrderStatus } from './order';
import { type TradeSnapshot, wasPaid } from './trade';

/**
 * Facts that contradict an order's state, for an operator: one row per order, kind and subject (the
 * trade, refund request or notice it is about; see discrepancySubject). Pure.
 */
export const DISCREPANCY_KINDS = [
  'AMOUNT_MISMATCH',
  'PAID_AFTER_CLOSE',
  'UNKNOWN_ORDER',
  /** A second, different trade paid an order that was already paid. */
  'DUPLICATE_PAYMENT',
  /** A paid notice for an unpaid order whose workflow an operator ended. */
  'ORPHAN_NOTICE',
  /** The provider's answer at the final check could not be read (unknown status, malformed body). */
  'PROVIDER_REPLY_INVALID',
  /** A signed paid notice the provider's own answer contradicts (not paid, another trade or amount). */
  'NOTICE_CONTRADICTS_PROVIDER',
  /** A trade other than the one under review paid an order held for review. */
  'PAID_DURING_REVIEW',
  /** A refund past its deadline with no answer from the provider: never taken as a success. */
  'REFUND_UNCONFIRMED',
  /** The provider refunded more than the order has left (cannot happen while requests reserve it). */
  'REFUND_EXCEEDS_PAID',
  /** A refund notice, after its workflow ended, that says otherwise than the refund's row. */
  'REFUND_CONTRADICTS_RECORD',
  /** A signed refund notice the provider's own answer contradicts (another outcome, amount, refund no). */
  'REFUND_NOTICE_CONTRADICTS_PROVIDER',
  /** A refund notice that names no refund payrecon asked for (parked UNKNOWN_REFUND). */
  'UNKNOWN_REFUND',
] as const;
export type DiscrepancyKind = (typeof DISCREPANCY_KINDS)[number];

/**
 * Where a discrepancy's subject is found in its details, first present wins (`a.b` reads a nested field).
 * Kinds not listed are about a trade, else a refund request, else a notice. Recording the same fact again
 * (a re-run activity, a redelivery) finds the same subject and adds nothing; another trade, refund or
 * notice is a new row, even when an earlier one of the same kind was resolved.
 */
const SUBJECT_FIELDS: Partial<Record<DiscrepancyKind, readonly string[]>> = {
  REFUND_UNCONFIRMED: ['outRequestNo', 'refundId'],
  REFUND_EXCEEDS_PAID: ['outRequestNo', 'refundId'],
  // Each notice that says otherwise than the refund's row is a fact of its own.
  REFUND_CONTRADICTS_RECORD: ['messageId'],
  NOTICE_CONTRADICTS_PROVIDER: ['notice.messageId', 'messageId'],
  REFUND_NOTICE_CONTRADICTS_PROVIDER: ['messageId', 'outRequestNo'],
};
const DEFAULT_SUBJECT_FIELDS = ['tradeNo', 'outRequestNo', 'messageId'] as const;

/**
 * What a discrepancy is about, from its details (SUBJECT_FIELDS); '' when they name nothing (one per
 * order and kind, as PROVIDER_REPLY_INVALID). drizzle/0005_discrepancy_subject.sql backfills the same rule.
 */
export function discrepancySubject(kind: DiscrepancyKind, details: Record<string, unknown>): string {
  for (const path of SUBJECT_FIELDS[kind] ?? DEFAULT_SUBJECT_FIELDS) {
    let value: unknown = details;
    for (const key of path.split('.')) {
      value =
        value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
    }
    if ((typeof value === 'string' && value !== '') || typeof value === 'number') return String(value);
  }
  return '';
}

/**
 * The discrepancies that record a buyer's money the provider holds for an order payrecon CLOSED (paid
 * after the close, or a wrong amount whose review ended CLOSED): open until a refund returns the money.
 */
export const MONEY_HELD_KINDS = ['PAID_AFTER_CLOSE', 'AMOUNT_MISMATCH'] as const satisfies DiscrepancyKind[];

/** The money a paid fact reports; polls of an unpaid trade report none. */
export interface PaidMoney {
  amount: number | null;
  currency: string | null;
}

/**
 * The rule both reconciliation paths share for an order that is still unpaid: a paid fact pays it if the
 * money matches, and holds it for review as AMOUNT_MISMATCH if it does not.
 */
export function judgePaidFact(
  order: { amount: number; currency: string },
  fact: PaidMoney,
): 'PAY' | 'AMOUNT_MISMATCH' {
  return fact.amount === order.amount && fact.currency === order.currency ? 'PAY' : 'AMOUNT_MISMATCH';
}

/**
 * The discrepancy a paid fact raises against an order it can no longer pay (the conditional update
 * refused, or the order's workflow has ended), or null when it contradicts nothing (a redelivery of the
 * trade that paid it, an order an operator reviews anyway).
 */
export function discrepancyForPaidFact(
  order: { status: OrderStatus | null; tradeNo: string | null },
  fact: { tradeNo: string | null },
): DiscrepancyKind | null {
  switch (order.status) {
    case 'CLOSED':
      return 'PAID_AFTER_CLOSE';
    case 'PAID':
    case 'PARTIALLY_REFUNDED':
    case 'REFUNDED':
      // The same trade again (a late or duplicate copy, even after a refund) changes nothing.
      return order.tradeNo !== fact.tradeNo ? 'DUPLICATE_PAYMENT' : null;
    case 'NEEDS_REVIEW':
      return order.tradeNo !== fact.tradeNo ? 'PAID_DURING_REVIEW' : null;
    case 'UNPAID':
      // Only an operator's terminate/reset ends a workflow before its order settles.
      return 'ORPHAN_NOTICE';
    default:
      return null;
  }
}

/** The fields of a paid notice a check compares. */
export interface NoticeClaim {
  tradeNo: string;
  amount: number;
  currency: string;
}

/**
 * Where a signed paid notice differs from what payrecon knows of its order: the trade payrecon opened
 * (when it opened one) and the money due. Any difference means the notice is checked with the provider
 * before it changes anything; the signature only proves who sent it, not that the buyer paid.
 */
export function noticeMismatches(
  order: { tradeNo?: string | null; amount: number; currency: string },
  notice: NoticeClaim,
): string[] {
  const fields: string[] = [];
  if (order.tradeNo && notice.tradeNo !== order.tradeNo) fields.push('tradeNo');
  if (notice.amount !== order.amount) fields.push('amount');
  if (notice.currency !== order.currency) fields.push('currency');
  return fields;
}

/** Where the provider's answer contradicts a paid notice: the trade is not paid, or not as claimed. */
export function noticeContradictions(provider: TradeSnapshot, notice: NoticeClaim): string[] {
  if (!wasPaid(provider)) return ['status'];
  const fields: string[] = [];
  if (provider.tradeNo !== notice.tradeNo) fields.push('tradeNo');
  if (provider.amount !== notice.amount) fields.push('amount');
  if (provider.currency !== notice.currency) fields.push('currency');
  return fields;
}
