import type { Channel, ConfirmChannel, GetMessage, Message } from 'amqplib';
import type { Command } from 'commander';
import { HEADERS, type Topology, TRADE_PAID_ROUTING_KEY, topologyFor } from '../mq/topology';
import { type CliContext, CliError, describeError, intParser, redactUrl, UsageError } from './context';
import { emit, formatTable, withJson } from './output';

/**
 * Parking-queue (dead-letter) tools: list with reasons, requeue one or all, purge.
 *
 * Reading without losing: RabbitMQ has no "peek" for a quorum queue over AMQP 0-9-1, so `list` takes
 * every ready message with basic.get in manual-ack mode (the broker keeps each one, unacknowledged,
 * while we hold it), and then gives all of them back with ONE basic.nack(multiple, requeue). Nothing is
 * acked, so nothing can be lost: if the CLI dies half-way, the broker returns the messages itself when
 * the connection drops. Reading the whole queue (even with --limit, which only shortens the table)
 * keeps the order: the queue hands the returned messages out again in the order they were returned,
 * and there is no unread part of the queue for them to land behind.
 *
 * Each read is a delivery: the broker adds `x-delivery-count`, shown as READS. RabbitMQ 3.x and 4.3+
 * do not count a basic.nack requeue toward a quorum queue's delivery limit; 4.0-4.2 count every
 * acquisition against the default limit of 20, so there give the parking queue a policy with a higher
 * `delivery-limit` (or a dead-letter target) before listing it dozens of times. `list` warns from 15 on.
 *
 * Requeue republishes on a confirm channel, mandatory, to the payment exchange with the message's
 * original routing key and headers (the signature kept; our attempt counter reset; the parking
 * reason and the broker's death/delivery headers removed), and acks the parked copy only after the
 * broker confirmed the copy and did not return it as unroutable. A crash in between leaves a duplicate,
 * never a loss; the consumer dedupes by message id.
 */

/** How often an operator re-drove this message; kept across parkings. */
export const REQUEUES_HEADER = 'x-payrecon-requeues';

/** Headers of the parking step and of the broker's own dead-lettering/redelivery bookkeeping. */
const STRIPPED_ON_REQUEUE = [
  HEADERS.reason,
  HEADERS.detail,
  HEADERS.parkedAt,
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

const READS_WARNING = 15;
const BODY_PREVIEW_CHARS = 4_096;

export interface ParkedMessage {
  /** 1 = the head of the parking queue. */
  position: number;
  messageId: string | null;
  reason: string | null;
  detail: string | null;
  /** The consumer's attempts before it parked the message. */
  attempts: number | null;
  originalExchange: string | null;
  originalRoutingKey: string | null;
  parkedAt: string | null;
  /** From the body when it is JSON with an `orderId`. */
  orderId: string | null;
  type: string | null;
  requeues: number;
  /** How many times the parking queue has handed this message out before (x-delivery-count). */
  reads: number;
  bodyBytes: number;
  /** The body as UTF-8, cut at 4,096 characters. */
  body: string;
}

type Headers = Record<string, unknown>;

function headerText(headers: Headers, key: string): string | null {
  const value = headers[key];
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return null;
}

function headerNumber(headers: Headers, key: string): number | null {
  const value = Number(headers[key]);
  return headers[key] === undefined || !Number.isFinite(value) ? null : value;
}

/** The broker's record of a message it dead-lettered itself (e.g. the pay-success delivery limit). */
function brokerDeath(headers: Headers): Record<string, unknown> | undefined {
  const deaths = headers['x-death'];
  return Array.isArray(deaths) && deaths.length > 0 && typeof deaths[0] === 'object'
    ? (deaths[0] as Record<string, unknown>)
    : undefined;
}

function timestampText(value: unknown): string | null {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number' && Number.isFinite(value)) {
    // AMQP timestamps are seconds since the epoch.
    return new Date(value < 1e12 ? value * 1000 : value).toISOString();
  }
  return null;
}

function orderIdOf(body: Buffer): string | null {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (parsed && typeof parsed === 'object' && 'orderId' in parsed) {
      const { orderId } = parsed as { orderId: unknown };
      return typeof orderId === 'string' ? orderId : null;
    }
  } catch {
    // not JSON: the NOT_JSON parking reason says so
  }
  return null;
}

export function describeParked(message: Message, position: number): ParkedMessage {
  const headers: Headers = message.properties.headers ?? {};
  const death = brokerDeath(headers);
  const deathReason = death ? String(death.reason ?? 'unknown') : null;
  const routingKeys = death?.['routing-keys'];
  const body = message.content.toString('utf8');
  return {
    position,
    messageId: typeof message.properties.messageId === 'string' ? message.properties.messageId : null,
    reason:
      headerText(headers, HEADERS.reason) ?? (deathReason ? `BROKER_${deathReason.toUpperCase()}` : null),
    detail:
      headerText(headers, HEADERS.detail) ??
      (death
        ? `dead-lettered by RabbitMQ from queue ${String(death.queue)} (${deathReason}, ${String(death.count ?? 1)}x)`
        : null),
    attempts: headerNumber(headers, HEADERS.attempts),
    originalExchange:
      headerText(headers, HEADERS.originalExchange) ?? (death ? String(death.exchange ?? '') : null),
    originalRoutingKey:
      headerText(headers, HEADERS.originalRoutingKey) ??
      (Array.isArray(routingKeys) && routingKeys.length > 0 ? String(routingKeys[0]) : null),
    parkedAt: headerText(headers, HEADERS.parkedAt) ?? timestampText(death?.time),
    orderId: orderIdOf(message.content),
    type: typeof message.properties.type === 'string' ? message.properties.type : null,
    requeues: headerNumber(headers, REQUEUES_HEADER) ?? 0,
    reads: headerNumber(headers, 'x-delivery-count') ?? 0,
    bodyBytes: message.content.length,
    body: body.length > BODY_PREVIEW_CHARS ? `${body.slice(0, BODY_PREVIEW_CHARS)}…` : body,
  };
}

/** The headers a requeued copy carries. */
export function requeueHeaders(headers: Headers): Headers {
  const next: Headers = { ...headers };
  for (const key of STRIPPED_ON_REQUEUE) delete next[key];
  next[HEADERS.attempts] = 0;
  next[REQUEUES_HEADER] = (headerNumber(headers, REQUEUES_HEADER) ?? 0) + 1;
  return next;
}

interface ParkingSession<C extends Channel> {
  channel: C;
  topology: Topology;
  /** Ready messages when the session began: a scan never reads further, so copies re-parked meanwhile are not read again. */
  ready: number;
  held: GetMessage[];
  settled: Set<GetMessage>;
}

/**
 * Opens a channel on the parking queue, runs `work`, then gives every held message that `work` did
 * not settle back to the queue with one nack(multiple, requeue) and closes the channel.
 */
async function withParkingQueue<C extends Channel, T>(
  ctx: CliContext,
  open: (connection: Awaited<ReturnType<CliContext['amqp']>>) => Promise<C>,
  work: (session: ParkingSession<C>) => Promise<T>,
): Promise<T> {
  const config = ctx.getConfig();
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const connection = await ctx.amqp();
  const channel = await open(connection);
  let channelError: Error | undefined;
  channel.on('error', (error: Error) => {
    channelError = error;
  });
  let ready: number;
  try {
    ({ messageCount: ready } = await channel.checkQueue(topology.parkingQueue));
  } catch (error) {
    if ((error as { code?: number }).code === 404) {
      throw new CliError(
        `the parking queue "${topology.parkingQueue}" does not exist at ${redactUrl(config.AMQP_URL)} ` +
          `(AMQP_PREFIX=${config.AMQP_PREFIX}): check AMQP_PREFIX, or declare the topology with: npx tsx src/mq/declare.ts`,
      );
    }
    throw new CliError(`cannot open the parking queue "${topology.parkingQueue}": ${describeError(error)}`);
  }
  const session: ParkingSession<C> = { channel, topology, ready, held: [], settled: new Set() };
  try {
    return await work(session);
  } catch (error) {
    if (channelError && !(error instanceof CliError)) {
      throw new CliError(`RabbitMQ closed the channel: ${channelError.message}`);
    }
    throw error;
  } finally {
    const unsettled = session.held.filter((message) => !session.settled.has(message));
    const last = unsettled.at(-1);
    if (last && !channelError) {
      try {
        // One nack for all: back in the queue, in their order; nothing acked, nothing lost.
        channel.nack(last, true, true);
      } catch {
        // The channel is gone: the broker has returned the messages itself.
      }
    }
    // A synchronous round trip before closing, so the broker has taken the acks and the nack.
    await channel.checkQueue(topology.parkingQueue).catch(() => {});
    await channel.close().catch(() => {});
  }
}

/** Takes up to `session.ready` messages from the head of the parking queue, holding them unacked. */
async function takeReady<C extends Channel>(
  session: ParkingSession<C>,
  onMessage?: (message: GetMessage) => Promise<'stop' | undefined>,
): Promise<void> {
  for (let index = 0; index < session.ready; index++) {
    const message = await session.channel.get(session.topology.parkingQueue, { noAck: false });
    if (!message) return;
    session.held.push(message);
    if (onMessage && (await onMessage(message)) === 'stop') return;
  }
}

export async function listParked(ctx: CliContext, limit?: number) {
  return withParkingQueue(
    ctx,
    (connection) => connection.createChannel(),
    async (session) => {
      await takeReady(session);
      const messages = session.held.map((message, index) => describeParked(message, index + 1));
      return {
        queue: session.topology.parkingQueue,
        total: messages.length,
        messages: limit === undefined ? messages : messages.slice(0, limit),
      };
    },
  );
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
  return withParkingQueue(
    ctx,
    (connection) => connection.createConfirmChannel(),
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
  );
}

export async function purgeParked(ctx: CliContext) {
  return withParkingQueue(
    ctx,
    (connection) => connection.createChannel(),
    async (session) => {
      const { messageCount } = await session.channel.purgeQueue(session.topology.parkingQueue);
      return { queue: session.topology.parkingQueue, purged: messageCount };
    },
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
    const worn = listing.messages.filter((message) => message.reads >= READS_WARNING);
    if (worn.length > 0) {
      ctx.warn(
        `${worn.length} message(s) have been read ${READS_WARNING}+ times; on RabbitMQ 4.0-4.2 a quorum queue drops a message after 20 deliveries unless a policy raises delivery-limit`,
      );
    }
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
          { header: 'READS', value: (m) => m.reads, align: 'right' },
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
