import type { ChannelModel, ConfirmChannel, GetMessage, Message } from 'amqplib';
import type { Command } from 'commander';
import {
  describeParked,
  headerNumber,
  ParkingQueueMissingError,
  type ParkingSession,
  REQUEUES_HEADER,
  readParked,
  takeReady,
  withParkingQueue,
} from '../mq/parking';
import { HEADERS, type Topology, TRADE_PAID_ROUTING_KEY, topologyFor } from '../mq/topology';
import { type CliContext, CliError, describeError, intParser, redactUrl, UsageError } from './context';
import { emit, formatTable, withJson } from './output';

/**
 * Parking-queue (dead-letter) tools: list with reasons, requeue one or all, purge. Reading goes through
 * src/mq/parking.ts, which never loses a message (get unacked, then one nack(multiple, requeue)).
 *
 * Requeue republishes on a confirm channel, mandatory, to the payment exchange with the message's
 * original routing key and headers (the signature kept; our attempt counter reset; the parking
 * reason and the broker's death/delivery headers removed), and acks the parked copy only after the
 * broker confirmed the copy and did not return it as unroutable. A crash in between leaves a duplicate,
 * never a loss; the consumer dedupes by message id.
 */

/** Headers of the parking step and of the broker's own dead-lettering/redelivery bookkeeping. */
const STRIPPED_ON_REQUEUE = [
  HEADERS.reason,
  HEADERS.detail,
  HEADERS.parkedAt,
  HEADERS.parkId,
  HEADERS.originalExchange,
  HEADERS.originalRoutingKey,
  'x-delivery-count',
  'x-acquired-count',
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];

type Headers = Record<string, unknown>;

/** The headers a requeued copy carries. */
export function requeueHeaders(headers: Headers): Headers {
  const next: Headers = { ...headers };
  for (const key of STRIPPED_ON_REQUEUE) delete next[key];
  next[HEADERS.attempts] = 0;
  next[REQUEUES_HEADER] = (headerNumber(headers, REQUEUES_HEADER) ?? 0) + 1;
  return next;
}

/** Runs `use` on the CLI's RabbitMQ connection and prefix; a missing queue names the prefix looked at. */
async function onParkingQueue<T>(
  ctx: CliContext,
  use: (connection: ChannelModel, topology: Topology) => Promise<T>,
): Promise<T> {
  const config = ctx.getConfig();
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  try {
    return await use(await ctx.amqp(), topology);
  } catch (error) {
    if (error instanceof ParkingQueueMissingError) {
      throw new CliError(
        `${error.message} at ${redactUrl(config.AMQP_URL)} (AMQP_PREFIX=${config.AMQP_PREFIX}): ` +
          'check AMQP_PREFIX, or declare the topology with: npx tsx src/mq/declare.ts',
      );
    }
    throw error;
  }
}

export function listParked(ctx: CliContext, limit?: number) {
  return onParkingQueue(ctx, async (connection, topology) => {
    const messages = await readParked(connection, topology);
    return {
      queue: topology.parkingQueue,
      total: messages.length,
      messages: limit === undefined ? messages : messages.slice(0, limit),
    };
  });
}

export interface RequeueResult {
  queue: string;
  exchange: string;
  requeued: { messageId: string | null; routingKey: string; orderId: string | null; reason: string | null }[];
  /** Messages that could not be republished: they stay parked. */
  failed: { messageId: string | null; error: string }[];
}

/** Republishes one held message and acks its parked copy once the broker confirmed the copy. */
async function republish(
  session: ParkingSession<ConfirmChannel>,
  message: GetMessage,
  returned: { current: Message | undefined },
): Promise<string> {
  const view = describeParked(message, 0);
  const routingKey = view.originalRoutingKey ?? TRADE_PAID_ROUTING_KEY;
  const { properties } = message;
  returned.current = undefined;
  await new Promise<void>((resolve, reject) => {
    session.channel.publish(
      session.topology.paymentExchange,
      routingKey,
      message.content,
      {
        persistent: true,
        mandatory: true,
        messageId: properties.messageId,
        correlationId: properties.correlationId,
        contentType: properties.contentType,
        contentEncoding: properties.contentEncoding,
        type: properties.type,
        appId: properties.appId,
        timestamp: properties.timestamp,
        headers: requeueHeaders(properties.headers ?? {}),
      },
      (error: unknown) => (error ? reject(new Error('RabbitMQ refused the copy (basic.nack)')) : resolve()),
    );
  });
  // basic.return comes before the confirm of the same message.
  if (returned.current) {
    throw new Error(
      `no queue is bound to exchange "${session.topology.paymentExchange}" for routing key "${routingKey}" (the broker returned the copy)`,
    );
  }
  session.channel.ack(message);
  session.settled.add(message);
  return routingKey;
}

export async function requeueParked(
  ctx: CliContext,
  target: { messageId: string } | { all: true },
): Promise<RequeueResult> {
  return onParkingQueue(ctx, (connection, topology) =>
    withParkingQueue(
      connection,
      topology,
      (channel) => channel.createConfirmChannel(),
      async (session) => {
        const returned: { current: Message | undefined } = { current: undefined };
        session.channel.on('return', (message: Message) => {
          returned.current = message;
        });
        const result: RequeueResult = {
          queue: session.topology.parkingQueue,
          exchange: session.topology.paymentExchange,
          requeued: [],
          failed: [],
        };
        await takeReady(session, async (message) => {
          const view = describeParked(message, 0);
          if ('messageId' in target && view.messageId !== target.messageId) return undefined;
          try {
            const routingKey = await republish(session, message, returned);
            result.requeued.push({
              messageId: view.messageId,
              routingKey,
              orderId: view.orderId,
              reason: view.reason,
            });
          } catch (error) {
            result.failed.push({ messageId: view.messageId, error: describeError(error) });
            // A closed channel returns everything it holds; stop before reading more.
            if (!(error instanceof Error) || /closed/i.test(error.message)) return 'stop';
          }
          return undefined;
        });
        return result;
      },
    ),
  );
}

export function purgeParked(ctx: CliContext) {
  return onParkingQueue(ctx, (connection, topology) =>
    withParkingQueue(
      connection,
      topology,
      (channel) => channel.createChannel(),
      async (session) => {
        const { messageCount } = await session.channel.purgeQueue(topology.parkingQueue);
        return { queue: topology.parkingQueue, purged: messageCount };
      },
    ),
  );
}

export function registerDlqCommands(program: Command, ctx: CliContext): void {
  const dlq = program
    .command('dlq')
    .description('inspect and re-drive the parking (dead-letter) queue of payment notifications');

  withJson(
    dlq
      .command('list')
      .description(
        'list parked messages with their reasons; every message is given back to the queue, in order',
      )
      .option(
        '--limit <n>',
        'show at most n messages (all are still read and kept)',
        intParser('--limit', 1, 100_000),
      ),
  ).action(async (options: { limit?: number; json?: boolean }) => {
    const listing = await listParked(ctx, options.limit);
    emit(ctx, options, listing, () => {
      const table = formatTable(
        listing.messages,
        [
          { header: '#', value: (m) => m.position, align: 'right' },
          { header: 'MESSAGE ID', value: (m) => m.messageId, max: 40 },
          { header: 'REASON', value: (m) => m.reason },
          { header: 'ATTEMPTS', value: (m) => m.attempts, align: 'right' },
          { header: 'ROUTING KEY', value: (m) => m.originalRoutingKey },
          { header: 'PARKED AT', value: (m) => m.parkedAt },
          { header: 'ORDER', value: (m) => m.orderId, max: 36 },
          { header: 'REQUEUES', value: (m) => m.requeues, align: 'right' },
          { header: 'DETAIL', value: (m) => m.detail, max: 70 },
        ],
        `parking queue ${listing.queue} is empty`,
      );
      if (listing.total === 0) return table;
      const shown =
        listing.messages.length < listing.total
          ? `${listing.messages.length} of ${listing.total}`
          : `${listing.total}`;
      return `${table}\n\n${shown} parked message(s) in ${listing.queue}; all kept in the queue`;
    });
  });

  withJson(
    dlq
      .command('requeue')
      .description(
        'republish parked messages to the payment exchange with their original routing key and headers, then remove them from the parking queue',
      )
      .argument('[messageId]', 'the message id to requeue (every parked copy with this id)')
      .option('--all', 'requeue every message parked when the command starts'),
  ).action(async (messageId: string | undefined, options: { all?: boolean; json?: boolean }) => {
    if (options.all && messageId) throw new UsageError('give either a message id or --all, not both');
    if (!options.all && !messageId) throw new UsageError('give the message id to requeue, or --all');
    const result = await requeueParked(ctx, options.all ? { all: true } : { messageId: messageId as string });
    if (!options.all && result.requeued.length === 0 && result.failed.length === 0) {
      throw new CliError(
        `no message with id "${messageId}" in the parking queue ${result.queue} (see: payrecon dlq list)`,
      );
    }
    emit(ctx, options, result, () => {
      const lines = result.requeued.map(
        (m) =>
          `requeued ${m.messageId ?? '(no message id)'} -> ${result.exchange} [${m.routingKey}]${m.reason ? ` (was ${m.reason})` : ''}`,
      );
      for (const failure of result.failed) {
        lines.push(
          `NOT requeued ${failure.messageId ?? '(no message id)'}: ${failure.error} (it stays parked)`,
        );
      }
      lines.push(`${result.requeued.length} message(s) requeued from ${result.queue}`);
      return lines.join('\n');
    });
    if (result.failed.length > 0) {
      throw new CliError(`${result.failed.length} message(s) could not be requeued and stay parked`);
    }
  });

  withJson(
    dlq
      .command('purge')
      .description('delete every message in the parking queue (asks for --yes)')
      .option('--yes', 'really delete them: they cannot be recovered'),
  ).action(async (options: { yes?: boolean; json?: boolean }) => {
    if (!options.yes) {
      throw new UsageError(
        'purge deletes every parked message for good; run `payrecon dlq list` first, then add --yes',
      );
    }
    const result = await purgeParked(ctx);
    emit(ctx, options, result, () => `purged ${result.purged} message(s) from ${result.queue}`);
  });
}
