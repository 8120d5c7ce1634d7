import type { ConsumeMessage } from 'amqplib';
import { createDatabase } from '../../src/db/client';
import {
  closeOrder,
  findOrder,
  holdOrderForReview,
  markOrderPaid,
  type OrderRow,
  recordPaymentNotice,
  recordTradeSnapshot,
} from '../../src/db/orders';
import { isPaidTradeStatus, judgePaidFact } from '../../src/domain';
import { connectAny } from '../../src/mq/connect';
import { parsePaymentNotice } from '../../src/mq/notification';
import { declareTopology, HEADERS, topologyFor } from '../../src/mq/topology';
import { loadConfig } from '../../src/platform/config';
import { createLogger } from '../../src/platform/logger';
import { HttpPaymentGateway } from '../../src/provider/http';

/**
 * The seeds' design, for comparison only: no Temporal. An amqplib consumer validates each notification
 * and does the conditional update itself; a timer scans every unpaid order every BENCH_CRON_INTERVAL_MS
 * (default 20 s) and asks the provider about each, which is the fallback for lost notifications.
 * Same database functions, same checks, same provider gateway as payrecon.
 */
const SCAN_INTERVAL_MS = Number(process.env.BENCH_CRON_INTERVAL_MS || 20_000);
const SCAN_CONCURRENCY = 10;

async function main() {
  const config = loadConfig();
  const log = createLogger('cron-baseline', config.LOG_LEVEL);
  const database = createDatabase(config.DATABASE_URL, { max: config.DATABASE_POOL_MAX });
  const { db, sql } = database;
  const gateway = new HttpPaymentGateway({ baseUrl: config.PROVIDER_URL });
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const connection = await connectAny(config.AMQP_URL);
  const channel = await connection.createConfirmChannel();
  await declareTopology(channel, topology);
  await channel.prefetch(config.CONSUMER_PREFETCH);

  const park = async (message: ConsumeMessage, reason: string) => {
    channel.publish(topology.errorExchange, '', message.content, {
      persistent: true,
      headers: { ...message.properties.headers, [HEADERS.reason]: reason },
    });
    await channel.waitForConfirms();
  };

  const settle = async (
    order: OrderRow,
    fact: { tradeNo: string; amount: number | null; currency: string | null; paidAt: string | null },
    by: 'mq' | 'poll',
  ) => {
    if (judgePaidFact(order, fact) === 'AMOUNT_MISMATCH') {
      const details = { reported: { amount: fact.amount, currency: fact.currency }, source: by };
      await holdOrderForReview(db, {
        orderId: order.id,
        tradeNo: fact.tradeNo,
        settledBy: by,
        kind: 'AMOUNT_MISMATCH',
        details,
      });
      return;
    }
    await markOrderPaid(db, {
      orderId: order.id,
      tradeNo: fact.tradeNo,
      paidAt: new Date(fact.paidAt ?? Date.now()),
      settledBy: by,
    });
  };

  const onMessage = async (message: ConsumeMessage | null) => {
    if (!message) return;
    try {
      const parsed = parsePaymentNotice(
        message.content,
        message.properties.headers?.[HEADERS.signature],
        config.NOTIFY_HMAC_SECRET,
      );
      if (!parsed.ok) {
        await park(message, parsed.reason);
        channel.ack(message);
        return;
      }
      const n = parsed.notice;
      const order = await findOrder(db, n.orderId);
      if (!order) {
        await park(message, 'UNKNOWN_ORDER');
        channel.ack(message);
        return;
      }
      const isNew = await recordPaymentNotice(db, n);
      if (isNew && isPaidTradeStatus(n.status)) await settle(order, n, 'mq');
      channel.ack(message);
    } catch (error) {
      log.warn({ err: (error as Error).message }, 'notification failed; requeued');
      channel.nack(message, false, true);
    }
  };
  await channel.consume(topology.paySuccessQueue, (message) => void onMessage(message), { noAck: false });

  let scanning = false;
  const scan = async () => {
    if (scanning) return;
    scanning = true;
    const started = Date.now();
    let queries = 0;
    try {
      const unpaid = await sql<{ id: string }[]>`select id from orders where status = 'UNPAID'`;
      const queue = unpaid.map((row) => row.id);
      const check = async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          const order = await findOrder(db, id);
          if (order?.status !== 'UNPAID') continue;
          const snapshot = await gateway.queryTrade(id).catch(() => null);
          queries++;
          if (!snapshot) continue;
          await recordTradeSnapshot(db, snapshot);
          if (isPaidTradeStatus(snapshot.status)) {
            await settle(order, { ...snapshot, tradeNo: snapshot.tradeNo ?? 'UNKNOWN' }, 'poll');
          } else if (order.payDeadline.getTime() <= Date.now()) {
            const closed = await gateway.closeTrade(id);
            if (isPaidTradeStatus(closed.status))
              await settle(order, { ...closed, tradeNo: closed.tradeNo ?? 'UNKNOWN' }, 'poll');
            else await closeOrder(db, { orderId: id, reason: 'PAY_DEADLINE_PASSED', settledBy: 'poll' });
          }
        }
      };
      await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, check));
      log.info({ unpaid: unpaid.length, queries, ms: Date.now() - started }, 'scan');
    } catch (error) {
      log.error({ err: (error as Error).message }, 'scan failed');
    } finally {
      scanning = false;
    }
  };
  const timer = setInterval(() => void scan(), SCAN_INTERVAL_MS);

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      clearInterval(timer);
      await channel.close().catch(() => {});
      await connection.close().catch(() => {});
      await database.close();
      process.exit(0);
    });
  }
  log.info({ scanIntervalMs: SCAN_INTERVAL_MS, prefetch: config.CONSUMER_PREFETCH }, 'cron baseline started');
}

main().catch((error) => {
  console.error(`cron baseline failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
