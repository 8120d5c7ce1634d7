import { randomUUID } from 'node:crypto';
import type { PaymentNotice } from '../../src/domain';

/** A valid "paid" notice for the payment-notice signal, as the consumer forwards one (fresh message id). */
export function paidNotice(
  orderId: string,
  amount: number,
  overrides: Partial<PaymentNotice> = {},
): PaymentNotice {
  return {
    messageId: randomUUID(),
    orderId,
    source: 'mq',
    tradeNo: `SIM-${orderId}`,
    status: 'TRADE_SUCCESS',
    amount,
    currency: 'CNY',
    paidAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  };
}
