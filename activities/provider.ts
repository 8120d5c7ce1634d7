import { ApplicationFailure } from '@temporalio/common';
import type { Database } from '../src/db/client';
import { orderProvider } from '../src/db/orders';
import type { RefundSnapshot, TradeSnapshot } from '../src/domain';
import type { PayreconMetrics } from '../src/platform/metrics';
import {
  type PaymentGateway,
  ProviderRefusedError,
  ProviderReplyError,
  type RefundRequest,
} from '../src/provider/gateway';
import { asGateways, type PaymentGateways, ProviderNotEnabledError } from '../src/provider/select';

/**
 * The order workflow's calls to the payment provider: they only ask, the workflow records the answer
 * (recordTradeSnapshot). An answer payrecon cannot read fails for good: asking again gets the same one.
 * Each call goes to the order's own provider (orders.provider), so the workflow's commands and inputs
 * stay what they were: no workflow carries its provider.
 */
export function createProviderActivities(
  gateway: PaymentGateway | PaymentGateways,
  metrics: PayreconMetrics,
  /** Where each order's provider is read; needed only with a gateway per provider. */
  db?: Database,
) {
  const gateways = asGateways(gateway);
  /**
   * One primary-key read beside an HTTP call to the provider: not worth a cache that could outlive a
   * PAYMENT_PROVIDERS change. An order or provider this worker cannot serve fails for good, naming it.
   */
  async function gatewayOf(orderId: string): Promise<PaymentGateway> {
    if (!gateways.perProvider) return gateways.get(gateways.defaultProvider);
    if (!db) throw new Error('a gateway per provider needs the database to read each order’s provider');
    const provider = await orderProvider(db, orderId);
    if (provider === undefined) {
      throw ApplicationFailure.nonRetryable(
        `order ${orderId} is not in the orders table: no provider to ask`,
        'OrderNotFoundError',
      );
    }
    try {
      return gateways.get(provider);
    } catch (error) {
      if (error instanceof ProviderNotEnabledError) {
        throw ApplicationFailure.nonRetryable(`order ${orderId}: ${error.message}`, error.name);
      }
      throw error;
    }
  }

  return {
    /** The trade's status at the provider. */
    async queryTrade(orderId: string): Promise<TradeSnapshot> {
      try {
        const gateway = await gatewayOf(orderId);
        const snapshot = await askProvider(() => gateway.queryTrade(orderId));
        metrics.poll('answered');
        return snapshot;
      } catch (error) {
        metrics.poll('failed');
        throw error;
      }
    },

    /** Closes the trade at the provider; the answer says closed, or paid after all. */
    async closeTrade(orderId: string): Promise<TradeSnapshot> {
      const gateway = await gatewayOf(orderId);
      return askProvider(() => gateway.closeTrade(orderId));
    },

    /** Asks for a refund; the same out_request_no again never refunds twice. */
    async submitRefund(request: RefundRequest): Promise<RefundSnapshot> {
      const gateway = await gatewayOf(request.orderId);
      return askProvider(() => gateway.submitRefund(request));
    },

    async queryRefund(input: { orderId: string; outRequestNo: string }): Promise<RefundSnapshot> {
      const gateway = await gatewayOf(input.orderId);
      return askProvider(() => gateway.queryRefund(input.orderId, input.outRequestNo));
    },
  };
}

async function askProvider<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    // The workflow tells an explicit refusal (it may end a refund FAILED) from an unreadable answer by type.
    if (error instanceof ProviderRefusedError) {
      throw ApplicationFailure.nonRetryable(error.message, ProviderRefusedError.name, error.code);
    }
    if (error instanceof ProviderReplyError) {
      throw ApplicationFailure.nonRetryable(error.message, ProviderReplyError.name);
    }
    throw error;
  }
}
