import type { Database } from '../src/db/client';
import * as orders from '../src/db/orders';
import type { DiscrepancyKind, PaymentEventSource, SettledBy, TransitionResult } from '../src/domain/index';
import { noMetrics, type PayreconMetrics } from '../src/platform/metrics';
import type { PaymentGateway, TradeSnapshot } from '../src/provider/gateway';

export interface ActivityDeps {
  db: Database;
  gateway: PaymentGateway;
  metrics?: PayreconMetrics;
}

/** A payment notice as the workflow received it (MQ consumer or operator). */
export interface NoticeRecord {
  messageId: string;
  orderId: string;
  source: PaymentEventSource;
  tradeNo: string;
  status: string;
  amount: number;
  currency: string;
  paidAt: string;
}

const toDate = (iso: string | null) => (iso ? new Date(iso) : null);

/**
 * All of payrecon's I/O, as Temporal activities. Every write is idempotent (conditional update or
 * insert-on-conflict-do-nothing), so Temporal's at-least-once retries can never settle an order twice.
 */
export function createActivities({ db, gateway, metrics = noMetrics }: ActivityDeps) {
  const counted = (path: SettledBy, result: TransitionResult) => {
    if (result.changed && result.status) metrics.settled(path, result.status);
    return result;
  };

  async function recordProviderAnswer(snapshot: TradeSnapshot): Promise<void> {
    await orders.recordPaymentEvent(db, {
      orderId: snapshot.orderId,
      source: 'poll',
      tradeNo: snapshot.tradeNo,
      tradeStatus: snapshot.status,
      amount: snapshot.amount,
      currency: snapshot.currency,
      paidAt: toDate(snapshot.paidAt),
    });
  }

  return {
    /** Appends a notification to payment_events; false if this message id was recorded before. */
    async recordPaymentNotice(notice: NoticeRecord): Promise<boolean> {
      return orders.recordPaymentEvent(db, {
        orderId: notice.orderId,
        source: notice.source,
        messageId: notice.messageId,
        tradeNo: notice.tradeNo,
        tradeStatus: notice.status,
        amount: notice.amount,
        currency: notice.currency,
        paidAt: toDate(notice.paidAt),
      });
    },

    /** Asks the provider for the trade's status and appends the answer to payment_events. */
    async queryTrade(orderId: string): Promise<TradeSnapshot> {
      let snapshot: TradeSnapshot;
      try {
        snapshot = await gateway.queryTrade(orderId);
      } catch (error) {
        metrics.poll('failed');
        throw error;
      }
      metrics.poll('answered');
      await recordProviderAnswer(snapshot);
      return snapshot;
    },

    /** Closes the trade at the provider; the answer (closed, or paid after all) is appended too. */
    async closeTrade(orderId: string): Promise<TradeSnapshot> {
      const snapshot = await gateway.closeTrade(orderId);
      await recordProviderAnswer(snapshot);
      return snapshot;
    },

    async markOrderPaid(input: {
      orderId: string;
      tradeNo: string;
      paidAt: string;
      settledBy: SettledBy;
    }): Promise<TransitionResult> {
      return counted(
        input.settledBy,
        await orders.markOrderPaid(db, { ...input, paidAt: new Date(input.paidAt) }),
      );
    },

    async closeOrder(input: {
      orderId: string;
      reason: string;
      settledBy: SettledBy;
    }): Promise<TransitionResult> {
      return counted(input.settledBy, await orders.closeOrder(db, input));
    },

    /** Wrong amount or currency: the order waits for an operator and the mismatch is recorded once. */
    async holdOrderForReview(input: {
      orderId: string;
      tradeNo: string | null;
      settledBy: SettledBy;
      details: Record<string, unknown>;
    }): Promise<TransitionResult> {
      await orders.recordDiscrepancy(db, {
        orderId: input.orderId,
        kind: 'AMOUNT_MISMATCH',
        details: input.details,
      });
      return orders.holdOrderForReview(db, input);
    },

    async recordDiscrepancy(input: {
      orderId: string;
      kind: DiscrepancyKind;
      details: Record<string, unknown>;
    }): Promise<boolean> {
      const isNew = await orders.recordDiscrepancy(db, input);
      if (isNew) metrics.discrepancy(input.kind);
      return isNew;
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
