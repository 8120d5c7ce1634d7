/**
 * The payment domain shared by workflows, activities, workers and the CLI.
 * This file must stay free of I/O: workflow code imports it.
 */

export const ORDER_STATUSES = ['UNPAID', 'PAID', 'CLOSED', 'NEEDS_REVIEW'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

/** How an order reached its final state. */
export const SETTLED_BY = ['mq', 'poll', 'manual'] as const;
export type SettledBy = (typeof SETTLED_BY)[number];

/** Where a payment fact came from (payment_events.source). */
export type PaymentEventSource = SettledBy;

/** Trade statuses as common Chinese payment APIs name them, plus "no such trade yet". */
export const TRADE_STATUSES = ['WAIT_BUYER_PAY', 'TRADE_SUCCESS', 'TRADE_FINISHED', 'TRADE_CLOSED'] as const;
export type TradeStatus = (typeof TRADE_STATUSES)[number];
export type TradeLookupStatus = TradeStatus | 'NOT_FOUND';

/** TRADE_FINISHED is a paid trade past its refund window: paid all the same. */
export function isPaidTradeStatus(status: TradeLookupStatus): boolean {
  return status === 'TRADE_SUCCESS' || status === 'TRADE_FINISHED';
}

export const DISCREPANCY_KINDS = [
  'AMOUNT_MISMATCH',
  'PAID_AFTER_CLOSE',
  'UNKNOWN_ORDER',
  /** A second, different trade paid an order that was already paid. */
  'DUPLICATE_PAYMENT',
  /** A paid notice for an unpaid order whose workflow an operator ended. */
  'ORPHAN_NOTICE',
] as const;
export type DiscrepancyKind = (typeof DISCREPANCY_KINDS)[number];

export function orderWorkflowId(orderId: string): string {
  return `order-${orderId}`;
}

/** A payment fact as the workflow sees it, whether it came from MQ, a poll or an operator. */
export interface PaymentFact {
  /** Present for notifications; polls have none. */
  messageId?: string;
  orderId: string;
  tradeNo: string | null;
  status: TradeLookupStatus;
  /** Minor units (fen, cents). */
  amount: number | null;
  currency: string | null;
  paidAt: string | null;
}

/** Result of a conditional status transition: did this call change the row, and what is the row now. */
export interface TransitionResult {
  changed: boolean;
  status: OrderStatus | null;
  /** Which path settled the row, whichever call did it: a local activity re-run after its workflow task
   * failed finds its own earlier update (changed: false) and must still report the settlement. */
  settledBy: SettledBy | null;
}
