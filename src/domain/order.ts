/** Orders and how they settle. Pure: workflow code imports this. */

/**
 * The order lattice: statuses only move forward. UNPAID → PAID → PARTIALLY_REFUNDED → REFUNDED,
 * UNPAID → CLOSED, and NEEDS_REVIEW for an operator (who settles it as PAID or CLOSED).
 */
export const ORDER_STATUSES = [
  'UNPAID',
  'PAID',
  'PARTIALLY_REFUNDED',
  'REFUNDED',
  'CLOSED',
  'NEEDS_REVIEW',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
/** The statuses an order can be refunded from. */
export const REFUNDABLE_STATUSES = ['PAID', 'PARTIALLY_REFUNDED'] as const satisfies readonly OrderStatus[];

/**
 * How an order reached its final state: a notice over RabbitMQ, a status query, an operator, or the
 * daily reconciliation's statement (signalled to the order's workflow like any other notice).
 */
export const SETTLED_BY = ['mq', 'poll', 'manual', 'reconciliation'] as const;
export type SettledBy = (typeof SETTLED_BY)[number];

/**
 * The payment providers an order can be paid at (orders.provider): the rig's simulator, Alipay and
 * WeChat Pay. An order keeps the provider its trade was opened at for its whole life.
 */
export const PAYMENT_PROVIDERS = ['simulator', 'alipay', 'wechatpay'] as const;
export type PaymentProvider = (typeof PAYMENT_PROVIDERS)[number];

export function isPaymentProvider(value: unknown): value is PaymentProvider {
  return (PAYMENT_PROVIDERS as readonly unknown[]).includes(value);
}

/**
 * The payment provider a reconciliation is of. Its name (RECON_PROVIDER, `recon run --provider`; in its
 * workflow ids, runs and breaks) is the provider's, or the provider's and a label after a dash
 * (`simulator-staging`) that keeps one deployment's runs apart from another's on a shared Temporal
 * namespace. undefined: the name starts with no provider.
 */
export function reconciledProvider(name: string): PaymentProvider | undefined {
  const provider = name.split('-')[0];
  return isPaymentProvider(provider) ? provider : undefined;
}

/** Where a payment fact came from (payment_events.source). */
export type PaymentEventSource = SettledBy;

export function orderWorkflowId(orderId: string): string {
  return `order-${orderId}`;
}

/** Result of a conditional status transition: did this call change the row, and what is the row now. */
export interface TransitionResult {
  changed: boolean;
  status: OrderStatus | null;
  /**
   * Which path settled the row, whichever call did it: a local activity re-run after its workflow task
   * failed finds its own earlier update (changed: false) and must still report the settlement.
   */
  settledBy: SettledBy | null;
  /** The trade that paid (or was held for) the order, once one did. */
  tradeNo: string | null;
  /** The merchant event this transition wrote (also on a re-run that found its own earlier update). */
  event: MerchantEventRef | null;
}

/** A merchant event as the workflow that starts its delivery needs it. */
export interface MerchantEventRef {
  /** `evt_<orderId>_<sequence>`: the `webhook-id` of every attempt. */
  id: string;
  sequence: number;
  /** Where it goes; null: the order names no endpoint, the event is only recorded. */
  endpointId: string | null;
}
