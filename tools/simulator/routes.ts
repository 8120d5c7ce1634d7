import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Database, Sql } from '../../src/db/client';
import type { PaymentEventPublisher } from '../../src/mq/publisher';
import { HttpError, parseInput, pingDatabase, readJson, sendJson } from '../lib/http';
import { type RequestHandler, type Route, routeTable } from '../lib/router';
import { type BillSettings, billRoutes } from './bill-routes';
import type { BillStats } from './bills';
import {
  type FaultStore,
  globalFaultsPatchSchema,
  globalFaultsSchema,
  planNotification,
  type Random,
  refundFaultsSchema,
  tradeFaultsSchema,
} from './faults';
import type { NotificationSender } from './notify';
import { RefundNoticeError, type RefundProcessor } from './refund-processor';
import { getRefund, listRefunds, type Refund, RefundRefusedError, refundStats } from './refunds';
import {
  closeTrade,
  createTrade,
  finishTrade,
  getTrade,
  payTrade,
  setTradeFaults,
  type Trade,
  TradeConflictError,
  takeQueryError,
} from './trades';

/** The simulator's HTTP API: what a payment provider offers a shop, plus the knobs of the fault injector. */

export interface RouteDeps {
  db: Database;
  sql: Sql;
  faults: FaultStore;
  sender: NotificationSender;
  publisher: PaymentEventPublisher;
  refunds: RefundProcessor;
  logger: Logger;
  random?: Random;
  /** The trade statement's (./bill-routes.ts). */
  bills: { settings: BillSettings; secret: string; stats: BillStats; baseUrl: () => string };
}

const orderIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'order ids are 1-64 letters, digits, _ or -');

const createTradeSchema = z.strictObject({
  orderId: orderIdSchema,
  amount: z.int('amount is an integer in minor units (fen, cents)').nonnegative(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'currency is an ISO 4217 code such as CNY'),
  faults: tradeFaultsSchema.optional(),
});

const payTradeSchema = z
  .strictObject({
    /** Per-trade knobs for this payment, on top of the trade's stored ones. */
    faults: tradeFaultsSchema.optional(),
    /** Pay even a closed trade (a payment racing the close). */
    force: z.boolean().optional(),
    /**
     * When the provider's clock says the buyer paid (default now): tests and benchmarks reconcile days
     * of their own in the past this way. It is also the notification's paidAt.
     */
    paidAt: z.iso.datetime({ offset: true }).optional(),
  })
  .optional();

const outRequestNoSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,128}$/, 'an out_request_no is 1-128 letters, digits, _ or -');

const refundRequestSchema = z.strictObject({
  outRequestNo: outRequestNoSchema,
  amount: z.int('amount is an integer in minor units (fen, cents)').positive('a refund is more than 0'),
  reason: z.string().max(256).nullable().optional(),
  /** This refund's knobs, on top of the trade's `faults.refund`. */
  faults: refundFaultsSchema.optional(),
});

/** What the provider answers for a refund (request or query). */
export interface RefundView {
  orderId: string;
  outRequestNo: string;
  refundNo: string;
  status: Refund['status'];
  amount: number;
  currency: string;
  reason: string | null;
  failureReason: string | null;
  requestedAt: string;
  /** When it ended (SUCCESS or FAILED); null while PROCESSING. */
  refundedAt: string | null;
  /** 1 once the money went back; never more. */
  executions: number;
}

export function refundView(refund: Refund): RefundView {
  return {
    orderId: refund.orderId,
    outRequestNo: refund.outRequestNo,
    refundNo: refund.refundNo,
    status: refund.status,
    amount: refund.amount,
    currency: refund.currency,
    reason: refund.reason,
    failureReason: refund.failureReason,
    requestedAt: refund.createdAt.toISOString(),
    refundedAt: refund.settledAt?.toISOString() ?? null,
    executions: refund.executions,
  };
}

/** What the provider's status query answers for a trade. */
export interface TradeView {
  orderId: string;
  tradeNo: string;
  status: Trade['status'];
  /** What the buyer paid once paid, the amount due before. Minor units. */
  amount: number;
  /** The amount due. */
  totalAmount: number;
  currency: string;
  paidAt: string | null;
  closedAt: string | null;
  /**
   * What succeeded refunds gave back. A trade refunded in full is TRADE_CLOSED with this equal to
   * `amount` (as at Alipay); a trade closed unpaid has 0.
   */
  refundedAmount: number;
}

export function tradeView(trade: Trade): TradeView {
  return {
    orderId: trade.orderId,
    tradeNo: trade.tradeNo,
    status: trade.status,
    amount: trade.paidAmount ?? trade.amount,
    totalAmount: trade.amount,
    currency: trade.currency,
    paidAt: trade.paidAt?.toISOString() ?? null,
    closedAt: trade.closedAt?.toISOString() ?? null,
    refundedAmount: trade.refundedAmount,
  };
}

export function createRouter(deps: RouteDeps): RequestHandler {
  const { db, faults, sender, publisher, refunds } = deps;
  const random = deps.random ?? Math.random;

  const notFound = (res: ServerResponse, orderId: string) =>
    sendJson(res, 404, { status: 'NOT_FOUND', orderId });

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/health$/,
      handler: async (_req, res) => {
        const database = await pingDatabase(deps.sql);
        const broker = publisher.isConnected() ? 'connected' : 'disconnected';
        const ok = database === 'up';
        sendJson(res, ok ? 200 : 503, {
          status: ok ? 'ok' : 'degraded',
          database,
          broker,
          pendingPublishes: publisher.pendingCount,
          delayedNotifications: sender.delayedCount,
          processingRefunds: refunds.processingCount,
        });
      },
    },
    {
      method: 'GET',
      pattern: /^\/faults$/,
      handler: async (_req, res) => sendJson(res, 200, faults.get()),
    },
    {
      method: 'PUT',
      pattern: /^\/faults$/,
      handler: async (req, res) => {
        const input = parseInput(globalFaultsSchema, (await readJson(req)) ?? {}, 'fault knobs');
        const next = faults.replace(input);
        deps.logger.info({ faults: next }, 'global faults replaced');
        sendJson(res, 200, next);
      },
    },
    {
      method: 'PATCH',
      pattern: /^\/faults$/,
      handler: async (req, res) => {
        const input = parseInput(globalFaultsPatchSchema, (await readJson(req)) ?? {}, 'fault knobs');
        const next = faults.merge(input);
        deps.logger.info({ faults: next }, 'global faults changed');
        sendJson(res, 200, next);
      },
    },
    {
      method: 'POST',
      pattern: /^\/trades$/,
      handler: async (req, res) => {
        const input = parseInput(createTradeSchema, await readJson(req), 'trade');
        try {
          const { changed, trade } = await createTrade(db, input);
          sendJson(res, changed ? 201 : 200, { ...tradeView(trade), created: changed });
        } catch (error) {
          if (error instanceof TradeConflictError) throw new HttpError(409, error.message);
          throw error;
        }
      },
    },
    {
      method: 'GET',
      pattern: /^\/trades\/([^/]+)$/,
      handler: async (_req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        await refunds.settleDue(orderId);
        const trade = await getTrade(db, orderId);
        const global = faults.get();
        const latencyMs = trade?.faults.queryLatencyMs ?? global.queryLatencyMs;
        if (latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, latencyMs));
        if ((trade?.faults.queryErrors ?? 0) > 0 && (await takeQueryError(db, orderId))) {
          throw new HttpError(503, 'simulated provider outage (fault queryErrors of this trade)');
        }
        if (global.queryErrorRate > 0 && random() < global.queryErrorRate) {
          throw new HttpError(503, 'simulated provider outage (fault queryErrorRate)');
        }
        if (!trade) return notFound(res, orderId);
        sendJson(res, 200, tradeView(trade));
      },
    },
    {
      method: 'POST',
      pattern: /^\/trades\/([^/]+)\/close$/,
      handler: async (_req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        const result = await closeTrade(db, orderId);
        if (!result) return notFound(res, orderId);
        deps.logger.info(
          { orderId, closed: result.changed, status: result.trade.status },
          result.changed ? 'trade closed' : 'trade not closed: it is not waiting for payment',
        );
        sendJson(res, 200, { ...tradeView(result.trade), closed: result.changed });
      },
    },
    {
      method: 'POST',
      pattern: /^\/trades\/([^/]+)\/pay$/,
      handler: async (req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        const input = parseInput(payTradeSchema, await readJson(req), 'payment');
        const trade = await getTrade(db, orderId);
        if (!trade) return notFound(res, orderId);
        const plan = planNotification(
          trade.amount,
          { ...trade.faults, ...input?.faults },
          faults.get(),
          random,
        );
        const paid = await payTrade(db, orderId, {
          paidAmount: plan.paidAmount,
          allowClosed: input?.force,
          ...(input?.paidAt ? { paidAt: new Date(input.paidAt) } : {}),
        });
        if (!paid) return notFound(res, orderId);
        if (!paid.changed) {
          throw new HttpError(
            409,
            `trade ${paid.trade.tradeNo} is ${paid.trade.status}; only a WAIT_BUYER_PAY trade can be paid`,
            {
              trade: tradeView(paid.trade),
            },
          );
        }
        deps.logger.info({ orderId, tradeNo: paid.trade.tradeNo, paidAmount: plan.paidAmount }, 'trade paid');
        try {
          const notification = await sender.send(paid.trade, plan);
          sendJson(res, 200, { trade: tradeView(paid.trade), notification });
        } catch (error) {
          throw new HttpError(
            502,
            `the trade is paid, but its notification could not be published: ${(error as Error).message}`,
            {
              trade: tradeView(paid.trade),
            },
          );
        }
      },
    },
    {
      method: 'POST',
      pattern: /^\/trades\/([^/]+)\/finish$/,
      handler: async (_req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        const result = await finishTrade(db, orderId);
        if (!result) return notFound(res, orderId);
        if (!result.changed) {
          throw new HttpError(
            409,
            `trade ${result.trade.tradeNo} is ${result.trade.status}; only a TRADE_SUCCESS trade can be finished`,
            { trade: tradeView(result.trade) },
          );
        }
        deps.logger.info({ orderId }, 'trade finished: its refund window is over');
        sendJson(res, 200, tradeView(result.trade));
      },
    },
    {
      method: 'POST',
      pattern: /^\/trades\/([^/]+)\/refunds$/,
      handler: async (req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        const input = parseInput(refundRequestSchema, await readJson(req), 'refund');
        let result: Awaited<ReturnType<RefundProcessor['request']>>;
        try {
          result = await refunds.request({ orderId, ...input });
        } catch (error) {
          if (error instanceof RefundRefusedError) {
            throw new HttpError(409, error.message, { code: error.code });
          }
          if (error instanceof RefundNoticeError) {
            throw new HttpError(502, error.message, { refund: refundView(error.refund) });
          }
          throw error;
        }
        if (!result) return notFound(res, orderId);
        sendJson(res, 200, {
          ...refundView(result.refund),
          created: result.created,
          notification: result.notification,
        });
      },
    },
    {
      method: 'GET',
      pattern: /^\/trades\/([^/]+)\/refunds$/,
      handler: async (_req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        await refunds.settleDue(orderId);
        const trade = await getTrade(db, orderId);
        if (!trade) return notFound(res, orderId);
        sendJson(res, 200, { orderId, refunds: (await listRefunds(db, orderId)).map(refundView) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/trades\/([^/]+)\/refunds\/([^/]+)$/,
      handler: async (_req, res, [rawId, rawNo]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        const outRequestNo = parseInput(outRequestNoSchema, rawNo, 'out_request_no');
        const global = faults.get();
        if (global.queryLatencyMs > 0)
          await new Promise((resolve) => setTimeout(resolve, global.queryLatencyMs));
        if (global.queryErrorRate > 0 && random() < global.queryErrorRate) {
          throw new HttpError(503, 'simulated provider outage (fault queryErrorRate)');
        }
        await refunds.settleDue(orderId);
        const refund = await getRefund(db, orderId, outRequestNo);
        if (!refund) return sendJson(res, 404, { status: 'NOT_FOUND', orderId, outRequestNo });
        sendJson(res, 200, refundView(refund));
      },
    },
    {
      method: 'GET',
      pattern: /^\/refunds\/stats$/,
      handler: async (_req, res, _params, url) => {
        const raw = url.searchParams.get('orderId');
        const orderId = raw === null ? undefined : parseInput(orderIdSchema, raw, 'order id');
        sendJson(res, 200, await refundStats(db, orderId));
      },
    },
    {
      method: 'PUT',
      pattern: /^\/trades\/([^/]+)\/faults$/,
      handler: async (req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        const input = parseInput(tradeFaultsSchema, (await readJson(req)) ?? {}, 'trade fault knobs');
        const trade = await setTradeFaults(db, orderId, input);
        if (!trade) return notFound(res, orderId);
        sendJson(res, 200, { orderId, faults: trade.faults });
      },
    },
    ...billRoutes({ db, sql: deps.sql, logger: deps.logger, ...deps.bills }),
  ];

  return routeTable(routes);
}
