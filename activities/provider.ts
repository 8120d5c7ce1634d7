import { ApplicationFailure } from '@temporalio/common';
import type { RefundSnapshot, TradeSnapshot } from '../src/domain';
import type { PayreconMetrics } from '../src/platform/metrics';
import {
  type PaymentGateway,
  ProviderRefusedError,
  ProviderReplyError,
  type RefundRequest,
} from '../src/provider/gateway';

/**
 * The order workflow's calls to the payment provider: they only ask, the workflow records the answer
 * (recordTradeSnapshot). An answer payrecon cannot read fails for good: asking again gets the same one.
 */
export function createProviderActivities(gateway: PaymentGateway, metrics: PayreconMetrics) {
  return {
    /** The trade's status at the provider. */
    async queryTrade(orderId: string): Promise<TradeSnapshot> {
      try {
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
      return askProvider(() => gateway.closeTrade(orderId));
    },

    /** Asks for a refund; the same out_request_no again never refunds twice. */
    async submitRefund(request: RefundRequest): Promise<RefundSnapshot> {
      return askProvider(() => gateway.submitRefund(request));
    },

    async queryRefund(input: { orderId: string; outRequestNo: string }): Promise<RefundSnapshot> {
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
