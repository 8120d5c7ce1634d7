import { randomUUID } from 'node:crypto';
import { type Client, Connection, Client as TemporalClient } from '@temporalio/client';
import amqp, { type ChannelWrapper } from 'amqp-connection-manager';
import type { ConfirmChannel, ConsumeMessage, Message } from 'amqplib';
import { createDatabase, type Database, redactUrl } from '../src/db/client';
import { recordDiscrepancy } from '../src/db/orders';
import { amqpUrls } from '../src/mq/connect';
import { parsePaymentNotice, parseRefundNotice, type RejectionReason } from '../src/mq/notification';
import {
  declareTopology,
  HEADERS,
  REFUND_ROUTING_KEY,
  TRADE_PAID_ROUTING_KEY,
  topologyFor,
} from '../src/mq/topology';
import { deliverPaymentNotice } from '../src/order/deliver-notice';
import { deliverRefundNotice } from '../src/order/deliver-refund-notice';
import { assertSecretsConfigured, type Config, loadConfig } from '../src/platform/config';
import { calling, ServiceCallError } from '../src/platform/errors';
import { createLogger, type Logger } from '../src/platform/logger';
import { noMetrics, type PayreconMetrics } from '../src/platform/metrics';
import { temporalConnectionOptions } from '../src/platform/temporal';
import { installWorkerRuntime } from './runtime';

/** What became of one delivery. */
export type Disposition =
  | { kind: 'delivered'; orderId: string; late: boolean }
  | { kind: 'park'; reason: RejectionReason | 'RETRIES_EXHAUSTED'; detail: string }
  | { kind: 'retry'; detail: string };

export interface PaymentConsumerDeps {
  config: Config;
  db: Database;
  temporal: Client;
  log: Logger;
  metrics?: PayreconMetrics;
}

/**
 * Decides what to do with one message, by its routing key (the original one for a message back from the
 * retry queue): `trade.paid` to its order's workflow, `trade.refunded` to its refund's. Never throws:
 * every failure is a disposition.
 */
export async function processNotification(
  deps: PaymentConsumerDeps,
  message: ConsumeMessage,
): Promise<Disposition> {
  const headers = message.properties.headers ?? {};
  const routingKey = String(headers[HEADERS.originalRoutingKey] ?? message.fields.routingKey);
  try {
    if (routingKey === TRADE_PAID_ROUTING_KEY) return await processPaidNotice(deps, message);
    if (routingKey === REFUND_ROUTING_KEY) return await processRefundNotice(deps, message);
    return {
      kind: 'park',
      reason: 'UNKNOWN_ROUTING_KEY',
      detail: `no handler for routing key "${routingKey}"`,
    };
  } catch (error) {
    // A service that failed may be back later: delayed retry, bounded by CONSUMER_MAX_ATTEMPTS. Anything
    // else is a bug of ours; it gets the same bounded retries, then parks with its message.
    if (error instanceof ServiceCallError) return { kind: 'retry', detail: error.message };
    return {
      kind: 'retry',
      detail: `unexpected error: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}

async function processPaidNotice(deps: PaymentConsumerDeps, message: ConsumeMessage): Promise<Disposition> {
  const signature = message.properties.headers?.[HEADERS.signature];
  const parsed = parsePaymentNotice(message.content, signature, deps.config.NOTIFY_HMAC_SECRET);
  if (!parsed.ok) return { kind: 'park', reason: parsed.reason, detail: parsed.detail };
  const { notice } = parsed;
  const delivery = await deliverPaymentNotice(
    { db: deps.db, temporal: deps.temporal, config: deps.config },
    notice,
  );
  if (delivery.outcome !== 'unknown-order') {
    return { kind: 'delivered', orderId: notice.orderId, late: delivery.outcome === 'recorded-after-end' };
  }
  await calling('PostgreSQL', () =>
    recordDiscrepancy(deps.db, {
      orderId: notice.orderId,
      kind: 'UNKNOWN_ORDER',
      details: { messageId: notice.messageId, tradeNo: notice.tradeNo, amount: notice.amount },
    }),
  );
  return { kind: 'park', reason: 'UNKNOWN_ORDER', detail: `no order ${notice.orderId} in the orders table` };
}

async function processRefundNotice(deps: PaymentConsumerDeps, message: ConsumeMessage): Promise<Disposition> {
  const signature = message.properties.headers?.[HEADERS.signature];
  const parsed = parseRefundNotice(message.content, signature, deps.config.NOTIFY_HMAC_SECRET);
  if (!parsed.ok) return { kind: 'park', reason: parsed.reason, detail: parsed.detail };
  const { notice } = parsed;
  const delivery = await deliverRefundNotice({ db: deps.db, temporal: deps.temporal }, notice);
  if (delivery.outcome === 'unknown-refund') {
    // Like an unknown order's notice: parked, and recorded for an operator.
    const { messageId, outRequestNo, refundNo, status, amount } = notice;
    await calling('PostgreSQL', () =>
      recordDiscrepancy(deps.db, {
        orderId: notice.orderId,
        kind: 'UNKNOWN_REFUND',
        details: { messageId, outRequestNo, refundNo, status, amount },
      }),
    );
    return {
      kind: 'park',
      reason: 'UNKNOWN_REFUND',
      detail: `no refund ${notice.outRequestNo} of order ${notice.orderId} in the refunds table`,
    };
  }
  return { kind: 'delivered', orderId: notice.orderId, late: delivery.outcome === 'recorded-after-end' };
}

/** Well under the client's 64 KiB field-table buffer, which also holds payrecon's own headers. */
const MAX_REPUBLISHED_HEADER_BYTES = 60 * 1024;

/** An upper-bound guess of a header table's encoded size: what matters is telling 64 KiB from far less. */
function estimatedTableBytes(headers: Record<string, unknown>): number {
  let bytes = 4;
  for (const [key, value] of Object.entries(headers)) {
    bytes += 1 + Buffer.byteLength(key) + 9;
    if (typeof value === 'string') bytes += Buffer.byteLength(value);
    else if (Buffer.isBuffer(value)) bytes += value.length;
    else if (value !== null && typeof value === 'object') bytes += Buffer.byteLength(safeJson(value));
  }
  return bytes;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v)) ?? '';
  } catch {
    return '';
  }
}

/** The headers payrecon reads itself (the signature, its own x-payrecon-*), when they are plain values. */
function ownHeaders(headers: Record<string, unknown>): Record<string, string | number> {
  const known = new Set<string>(Object.values(HEADERS));
  return Object.fromEntries(
    Object.entries(headers).filter(
      (entry): entry is [string, string | number] =>
        known.has(entry[0]) &&
        ((typeof entry[1] === 'string' && entry[1].length <= 4096) || typeof entry[1] === 'number'),
    ),
  );
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/**
 * The broker returned a park (basic.return before its ack): no queue took it. On a cluster that is the
 * classic parking queue while its node is down; without `mandatory` the broker would confirm and drop it.
 */
class ParkingUnroutableError extends Error {
  override name = 'ParkingUnroutableError';
}

function attemptsSoFar(message: ConsumeMessage): number {
  const raw = Number(message.properties.headers?.[HEADERS.attempts] ?? 0);
  return Number.isInteger(raw) && raw >= 0 ? raw : 0;
}

export interface PaymentConsumer {
  /** Resolves once the consumer is subscribed to the queue. */
  ready: Promise<void>;
  /** Stops taking messages, finishes the ones in flight, closes everything this consumer opened. */
  close(): Promise<void>;
  /** `parkDeferred`: parks the broker returned (parking queue unreachable), sent to the retry queue instead. */
  stats: {
    delivered: number;
    late: number;
    retried: number;
    parkDeferred: number;
    parked: Record<string, number>;
  };
}

/**
 * The amqplib consumer: reads the pay-success queue with manual acks and bounded prefetch, and acks
 * a message only after Temporal accepted its signal, or after it was moved to the retry or parking queue.
 */
export function startPaymentConsumer(deps: PaymentConsumerDeps): PaymentConsumer {
  const { config, log } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const stats: PaymentConsumer['stats'] = { delivered: 0, late: 0, retried: 0, parkDeferred: 0, parked: {} };
  const inFlight = new Set<Promise<void>>();
  // Bumped on every (re)connect: a delivery tag from an older channel must not be acked on the new one.
  let channelGeneration = 0;
  // Parks awaiting their confirm, by their park id; a basic.return marks one (it comes before the ack).
  const parksInFlight = new Map<string, { returned: string | null }>();
  const onReturn = (returned: Message) => {
    const parkId = returned.properties.headers?.[HEADERS.parkId];
    const park = typeof parkId === 'string' ? parksInFlight.get(parkId) : undefined;
    const fields = returned.fields as unknown as { replyCode?: number; replyText?: string };
    if (park) park.returned = `${fields.replyCode ?? '?'} ${fields.replyText ?? 'returned'}`;
  };

  // Every node of a cluster: on a lost connection the manager moves on to the next URL of the list.
  const connection = amqp.connect(amqpUrls(config.AMQP_URL), {
    heartbeatIntervalInSeconds: 10,
    reconnectTimeInSeconds: 2,
  });
  const nodeUrl = (url: unknown) => redactUrl(typeof url === 'string' ? url : config.AMQP_URL);
  connection.on('connect', ({ url }) => log.info({ url: nodeUrl(url) }, 'connected to RabbitMQ'));
  connection.on('disconnect', ({ err }) =>
    log.warn(
      { url: redactUrl(config.AMQP_URL), err: err?.message },
      'RabbitMQ connection lost; reconnecting',
    ),
  );
  connection.on('connectFailed', ({ err, url }) =>
    log.warn({ url: nodeUrl(url), err: err?.message }, 'RabbitMQ is not reachable; retrying'),
  );

  const channel: ChannelWrapper = connection.createChannel({
    confirm: true,
    setup: async (ch: ConfirmChannel) => {
      channelGeneration++;
      ch.on('return', onReturn);
      const declared = await declareTopology(ch, topology, {
        sideChannel: async () => {
          const open = connection.connection;
          if (!open) throw new Error('RabbitMQ connection closed while declaring the topology');
          return open.createChannel();
        },
      });
      if (declared.parkingQueue === 'home-node-down') {
        log.warn(
          { queue: topology.parkingQueue },
          "the parking queue's node is down (a classic queue lives on one node): messages to park go to the retry queue until it is back",
        );
      }
    },
  });

  // Setup failures (e.g. a queue declared elsewhere with other arguments) must be loud, not silent. A
  // publish the client cannot encode also lands here (amqp-connection-manager emits it and the publish
  // never settles on its own): remembered, so the publish's timeout can name the real cause.
  let lastChannelError: { at: number; message: string } | null = null;
  channel.on('error', (err: Error) => {
    lastChannelError = { at: Date.now(), message: err.message };
    log.error({ err: err.message }, 'RabbitMQ channel error');
  });

  const publishCopy = async (
    message: ConsumeMessage,
    exchange: string,
    routingKey: string,
    headers: Record<string, unknown>,
  ) => {
    const started = Date.now();
    // A park is mandatory: returned unroutable (the parking queue's node is down) it must not count as parked.
    const parkId = exchange === topology.errorExchange ? randomUUID() : null;
    const park = { returned: null as string | null };
    if (parkId) parksInFlight.set(parkId, park);
    try {
      await channel.publish(exchange, routingKey, message.content, {
        persistent: true,
        mandatory: parkId !== null,
        messageId: message.properties.messageId,
        contentType: message.properties.contentType,
        headers: parkId ? { ...headers, [HEADERS.parkId]: parkId } : headers,
        timeout: config.CONSUMER_PUBLISH_TIMEOUT,
      });
    } catch (error) {
      const cause = lastChannelError && lastChannelError.at >= started ? lastChannelError.message : null;
      throw new Error(cause ? `${(error as Error).message}: ${cause}` : (error as Error).message);
    } finally {
      if (parkId) parksInFlight.delete(parkId);
    }
    if (park.returned) {
      throw new ParkingUnroutableError(
        `the broker returned the park (${park.returned}): no queue is bound to "${exchange}" that is up`,
      );
    }
  };

  /**
   * Republishes a message (retry or park) with the consumer's headers added. Headers the client cannot
   * send back (over the 64 KiB field table, or of a type it cannot encode) must not leave the message in
   * flight: the copy then carries only the headers payrecon reads itself. Throws when even that fails.
   */
  const moveTo = async (
    message: ConsumeMessage,
    exchange: string,
    routingKey: string,
    ours: Record<string, unknown>,
  ) => {
    const original = message.properties.headers ?? {};
    const headerBytes = estimatedTableBytes(original);
    const tooLarge = headerBytes > MAX_REPUBLISHED_HEADER_BYTES;
    if (!tooLarge) {
      try {
        return await publishCopy(message, exchange, routingKey, { ...original, ...ours });
      } catch (error) {
        // Returned whole: the headers were fine, the queue is not there.
        if (error instanceof ParkingUnroutableError) throw error;
        log.warn(
          { messageId: message.properties.messageId, err: (error as Error).message },
          "republishing with the message's own headers failed; sending it with payrecon's headers only",
        );
      }
    } else {
      log.warn(
        { messageId: message.properties.messageId, headerBytes },
        "the message's headers are too large to republish; sending it with payrecon's headers only",
      );
    }
    await publishCopy(message, exchange, routingKey, {
      ...ownHeaders(original),
      ...ours,
      [HEADERS.droppedHeaders]: Object.keys(original).length - Object.keys(ownHeaders(original)).length,
    });
  };

  const settle = async (message: ConsumeMessage, disposition: Disposition) => {
    const attempts = attemptsSoFar(message) + 1;
    const original = {
      [HEADERS.originalExchange]:
        message.properties.headers?.[HEADERS.originalExchange] ?? message.fields.exchange,
      [HEADERS.originalRoutingKey]:
        message.properties.headers?.[HEADERS.originalRoutingKey] ?? message.fields.routingKey,
    };
    let final = disposition;
    if (final.kind === 'retry' && attempts >= config.CONSUMER_MAX_ATTEMPTS) {
      final = {
        kind: 'park',
        reason: 'RETRIES_EXHAUSTED',
        detail: `${attempts} attempts; last error: ${final.detail}`,
      };
    }
    if (final.kind === 'retry') {
      // The default exchange routes straight to the retry queue, whose TTL dead-letters it back later.
      await moveTo(message, '', topology.retryQueue, { ...original, [HEADERS.attempts]: attempts });
      stats.retried++;
      metrics.notificationReceived('retried');
      log.warn(
        { messageId: message.properties.messageId, attempts, detail: final.detail },
        'notification will be retried',
      );
    } else if (final.kind === 'park') {
      try {
        await moveTo(message, topology.errorExchange, '', {
          ...original,
          [HEADERS.attempts]: attempts,
          [HEADERS.reason]: final.reason,
          [HEADERS.detail]: final.detail.slice(0, 1000),
          [HEADERS.parkedAt]: new Date().toISOString(),
        });
      } catch (error) {
        if (!(error instanceof ParkingUnroutableError)) throw error;
        // The parking queue is unreachable (on a cluster: its node is down). The retry queue is a quorum
        // queue and brings the message back after the delay; it is judged again and parked then.
        await moveTo(message, '', topology.retryQueue, { ...original, [HEADERS.attempts]: attempts });
        stats.retried++;
        stats.parkDeferred++;
        metrics.notificationReceived('retried');
        log.warn(
          { messageId: message.properties.messageId, reason: final.reason, err: error.message },
          'the parking queue is unreachable; the message goes to the retry queue and is parked when it comes back',
        );
        return;
      }
      stats.parked[final.reason] = (stats.parked[final.reason] ?? 0) + 1;
      metrics.notificationParked(final.reason);
      log.error(
        { messageId: message.properties.messageId, reason: final.reason, detail: final.detail },
        'notification parked',
      );
    } else {
      stats.delivered++;
      if (final.late) stats.late++;
      metrics.notificationReceived(final.late ? 'late' : 'delivered');
      log.info(
        { messageId: message.properties.messageId, orderId: final.orderId, late: final.late },
        'notification delivered',
      );
    }
  };

  const onMessage = (message: ConsumeMessage | null) => {
    if (!message) return; // the broker cancelled the consumer; amqp-connection-manager re-subscribes
    const generation = channelGeneration;
    const work = (async () => {
      try {
        await settle(message, await processNotification(deps, message));
        if (generation === channelGeneration) channel.ack(message);
      } catch (error) {
        // Not even a copy with payrecon's own headers could be published. Never leave it in flight: the
        // broker dead-letters a rejected message to the parking queue (x-death reason "rejected"). If the
        // connection is gone the reject goes nowhere and the broker redelivers the message later.
        log.error(
          { messageId: message.properties.messageId, err: (error as Error).message },
          'could not move the message; rejecting it to the dead-letter exchange (parking queue)',
        );
        if (generation === channelGeneration) channel.nack(message, false, false);
      }
    })();
    inFlight.add(work);
    work.finally(() => inFlight.delete(work));
  };

  const ready = channel
    .consume(topology.paySuccessQueue, onMessage, { noAck: false, prefetch: config.CONSUMER_PREFETCH })
    .then(() => undefined);

  return {
    ready,
    stats,
    async close() {
      await channel.cancelAll().catch(() => {});
      // Bounded: each move has its publish timeout, but a delivery may still wait on Temporal or
      // PostgreSQL. What is unfinished when the channel closes is redelivered to another consumer.
      const finished = Promise.allSettled([...inFlight]);
      const gaveUp = await Promise.race([
        finished.then(() => false),
        sleep(config.CONSUMER_CLOSE_TIMEOUT).then(() => true),
      ]);
      if (gaveUp) {
        log.warn({ inFlight: inFlight.size }, 'stopping with messages in flight; the broker redelivers them');
      }
      await channel.close();
      await connection.close();
    },
  };
}

async function main() {
  const config = loadConfig();
  assertSecretsConfigured(config);
  const log = createLogger('consumer', config.LOG_LEVEL);
  const database = createDatabase(config.DATABASE_URL, { max: config.DATABASE_POOL_MAX });
  // Lazy: the consumer keeps running while Temporal is down; those messages go to delayed retry.
  const connection = Connection.lazy(temporalConnectionOptions(config));
  const temporal = new TemporalClient({ connection, namespace: config.TEMPORAL_NAMESPACE });
  // The Temporal runtime is here only for its Prometheus exporter, which serves payrecon's counters.
  const metrics = installWorkerRuntime('WARN', config.CONSUMER_METRICS_ADDRESS);
  const consumer = startPaymentConsumer({ config, db: database.db, temporal, log, metrics });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      log.info({ signal }, 'stopping: no new messages, finishing those in flight');
      await consumer.close();
      await connection.close();
      await database.close();
      log.info({ stats: consumer.stats }, 'consumer stopped');
      process.exit(0);
    });
  }
  await consumer.ready;
  log.info({ prefetch: config.CONSUMER_PREFETCH, prefix: config.AMQP_PREFIX }, 'consumer started');
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`consumer failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
