import { connectAny } from '../../src/mq/connect';

/**
 * The seed article's notification ladder on RabbitMQ (bench only): what tools/bench/notify-ttl-service.ts
 * (the consumer) and tools/bench/notify.ts (the producer and the measurements) share.
 *
 * `work` exchange → `work` queue (the consumer POSTs each message to the merchant); on failure the
 * consumer publishes the message to the `delay` exchange → ONE `delay` queue with `expiration` = the next
 * ladder step; nobody consumes the delay queue; an expired message is dead-lettered to the `work`
 * exchange, i.e. consumed again. Both queues classic and durable, messages persistent, publisher confirms.
 */
export function notifyTtlTopology(prefix: string) {
  return {
    workExchange: `${prefix}.work`,
    workQueue: `${prefix}.work`,
    delayExchange: `${prefix}.delay`,
    delayQueue: `${prefix}.delay`,
  };
}

export type NotifyTtlTopology = ReturnType<typeof notifyTtlTopology>;

/** Headers the consumer sets on a message it sends to the delay queue. */
export const TTL_HEADERS = {
  /** Attempts made so far. */
  attempts: 'x-bench-attempts',
  /** The TTL it was given (the ladder step), ms. */
  stepMs: 'x-bench-step-ms',
  /** When it should be back on the work queue: publish time + TTL (epoch ms, the consumer's clock). */
  scheduledAt: 'x-bench-scheduled-at',
} as const;

/** One message: the event, where it goes and its body (the secret stays in the consumer's environment). */
export interface TtlMessage {
  eventId: string;
  orderId: string;
  url: string;
  body: string;
}

/** A retry: due at `scheduledAt`, consumed (about to be POSTed) at `firedAt`. */
export interface RetryRecord {
  eventId: string;
  /** The attempt this retry is (2 = the first retry). */
  attempt: number;
  stepMs: number;
  scheduledAt: number;
  firedAt: number;
}

export type NotifyTtlRequest = { type: 'progress' } | { type: 'report' };

export interface NotifyTtlProgress {
  type: 'progress';
  settled: number;
  consumed: number;
}

export interface NotifyTtlReport {
  type: 'report';
  retries: RetryRecord[];
  settled: Record<string, { status: 'DELIVERED' | 'GONE' | 'EXHAUSTED'; attempts: number }>;
  /** Messages the consumer published to the delay queue (each is dead-lettered once more by the broker). */
  published: number;
  /** Messages the consumer received from the work queue (= attempts). */
  consumed: number;
  /** Times the consumer lost its broker connection and reconnected (a broker restart mid-phase). */
  reconnects: number;
  errors: string[];
}

/** Declares the two exchanges and queues and empties them (leftovers of an aborted run). */
export async function declareNotifyTtl(amqpUrl: string, topology: NotifyTtlTopology): Promise<void> {
  const connection = await connectAny(amqpUrl);
  try {
    const channel = await connection.createChannel();
    await channel.assertExchange(topology.workExchange, 'fanout', { durable: true });
    await channel.assertExchange(topology.delayExchange, 'fanout', { durable: true });
    await channel.assertQueue(topology.workQueue, {
      durable: true,
      arguments: { 'x-queue-type': 'classic' },
    });
    await channel.bindQueue(topology.workQueue, topology.workExchange, '');
    // The article's delay queue: per-message TTL, no consumer, expired messages back to the work exchange.
    await channel.assertQueue(topology.delayQueue, {
      durable: true,
      arguments: { 'x-queue-type': 'classic', 'x-dead-letter-exchange': topology.workExchange },
    });
    await channel.bindQueue(topology.delayQueue, topology.delayExchange, '');
    await channel.purgeQueue(topology.workQueue);
    await channel.purgeQueue(topology.delayQueue);
    await channel.close();
  } finally {
    await connection.close();
  }
}
