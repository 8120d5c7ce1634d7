import type { Channel, ConfirmChannel } from 'amqplib';
import { connectAny } from './connect';

/** Routing key of a "trade paid" notification on the payment-events exchange. */
export const TRADE_PAID_ROUTING_KEY = 'trade.paid';
/** Routing key of a "trade refunded" notification (a refund succeeded or failed), same exchange. */
export const REFUND_ROUTING_KEY = 'trade.refunded';

/** Headers payrecon sets on messages it moves to the retry or parking queue. */
export const HEADERS = {
  signature: 'x-signature',
  /** How many times the consumer has tried this message; our own count, not x-death. */
  attempts: 'x-payrecon-attempts',
  reason: 'x-payrecon-reason',
  detail: 'x-payrecon-detail',
  originalExchange: 'x-payrecon-original-exchange',
  originalRoutingKey: 'x-payrecon-original-routing-key',
  parkedAt: 'x-payrecon-parked-at',
  /** How many of the message's own headers were left off because they could not be republished. */
  droppedHeaders: 'x-payrecon-dropped-headers',
  /** One id per park publish, so the consumer can tell which park the broker returned (mandatory). */
  parkId: 'x-payrecon-park-id',
} as const;

export interface Topology {
  /** Durable topic exchange the payment service publishes to. */
  paymentExchange: string;
  /** Durable quorum queue of "trade paid" notifications, read by workers/consumer. */
  paySuccessQueue: string;
  /** Messages wait here for `retryDelayMs`, then dead-letter back to `paySuccessQueue`. */
  retryQueue: string;
  retryDelayMs: number;
  /** Exchange for messages that will never be delivered, routed to the parking queue. */
  errorExchange: string;
  parkingQueue: string;
}

export function topologyFor(prefix: string, retryDelayMs: number): Topology {
  return {
    paymentExchange: `${prefix}.payment-events`,
    paySuccessQueue: `${prefix}.pay-success`,
    // The delay is in the name: queue arguments cannot change after declaration, so a new delay
    // gets a new queue instead of a PRECONDITION_FAILED at start-up.
    retryQueue: `${prefix}.pay-success.retry.${retryDelayMs}ms`,
    retryDelayMs,
    errorExchange: `${prefix}.payment-errors`,
    // A classic queue (see declareTopology); the name changed with the type, since a queue's type
    // cannot change: an older `<prefix>.pay-success.parking` quorum queue can be drained and deleted.
    parkingQueue: `${prefix}.parked`,
  };
}

/**
 * Safety net for poison messages that crash the consumer before it can park them: after this many
 * deliveries the broker dead-letters the message to the parking queue itself.
 */
export const BROKER_DELIVERY_LIMIT = 20;

export interface DeclareOptions {
  /**
   * Opens a channel of its own for the parking queue. On a cluster the classic parking queue lives on
   * one node; while that node is down, declaring it fails (404, "home node ... is down") and the broker
   * closes the channel it was declared on. Long-lived clients pass this so a reconnect to a surviving
   * node still declares everything else and goes on working; the parking queue is then reported down.
   */
  sideChannel?: () => Promise<Channel>;
}

/** What declareTopology could declare: everything, or everything but the parking queue (its node is down). */
export interface DeclareOutcome {
  parkingQueue: 'declared' | 'home-node-down';
}

/** Declares every exchange, queue and binding payrecon uses. Idempotent: safe on every (re)connect. */
export async function declareTopology(
  channel: Channel | ConfirmChannel,
  topology: Topology,
  options: DeclareOptions = {},
): Promise<DeclareOutcome> {
  await channel.assertExchange(topology.paymentExchange, 'topic', { durable: true });
  await channel.assertExchange(topology.errorExchange, 'fanout', { durable: true });

  // Quorum queues are replicated and keep messages on disk, which is what survives a broker restart and a backlog.
  await channel.assertQueue(topology.paySuccessQueue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-delivery-limit': BROKER_DELIVERY_LIMIT,
      'x-dead-letter-exchange': topology.errorExchange,
    },
  });
  await channel.bindQueue(topology.paySuccessQueue, topology.paymentExchange, TRADE_PAID_ROUTING_KEY);
  // Refund results come on the same exchange and queue; the consumer routes them by routing key.
  await channel.bindQueue(topology.paySuccessQueue, topology.paymentExchange, REFUND_ROUTING_KEY);

  await channel.assertQueue(topology.retryQueue, {
    durable: true,
    arguments: {
      'x-queue-type': 'quorum',
      'x-message-ttl': topology.retryDelayMs,
      // The default exchange routes by queue name: expired messages go straight back to the work queue.
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': topology.paySuccessQueue,
    },
  });

  // The parking queue is read by operators over and over (`payrecon dlq list`: get, then requeue), so
  // it must not count deliveries: a quorum queue does, and RabbitMQ 4 gives every quorum queue a delivery
  // limit of 20, after which a message without a dead-letter target is dropped. A durable classic queue
  // has no delivery limit on 3.x or 4.x and keeps persistent messages on disk (lazy on 3.x; classic
  // queues v2 page to disk on their own on 3.12+ and 4.x, where x-queue-mode is ignored). Not replicated:
  // on a cluster its messages wait for their node to come back (README, "RabbitMQ topology").
  if (!options.sideChannel) {
    await declareParking(channel, topology);
    return { parkingQueue: 'declared' };
  }
  const side = await options.sideChannel();
  // An 'error' event without a listener would crash the process; the rejected call below reports it.
  side.on('error', () => {});
  try {
    await declareParking(side, topology);
    return { parkingQueue: 'declared' };
  } catch (error) {
    if (isHomeNodeDown(error)) return { parkingQueue: 'home-node-down' };
    throw error;
  } finally {
    await side.close().catch(() => {});
  }
}

async function declareParking(channel: Channel | ConfirmChannel, topology: Topology): Promise<void> {
  await channel.assertQueue(topology.parkingQueue, {
    durable: true,
    arguments: { 'x-queue-type': 'classic', 'x-queue-mode': 'lazy' },
  });
  await channel.bindQueue(topology.parkingQueue, topology.errorExchange, '');
}

/** RabbitMQ's answer about a durable classic queue whose node is down (3.x and 4.x word it alike). */
export function isHomeNodeDown(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return code === 404 && typeof message === 'string' && /home node .* is down or inaccessible/.test(message);
}

/** Declares a prefix's topology and empties its queues, so a run that counts messages starts from none. */
export async function declareAndPurge(amqpUrl: string, topology: Topology): Promise<void> {
  const connection = await connectAny(amqpUrl);
  try {
    const channel = await connection.createChannel();
    await declareTopology(channel, topology);
    for (const queue of [topology.paySuccessQueue, topology.retryQueue, topology.parkingQueue]) {
      await channel.purgeQueue(queue);
    }
    await channel.close();
  } finally {
    await connection.close();
  }
}
