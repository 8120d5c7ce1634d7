import type { Channel, ChannelModel, GetMessage, Message } from 'amqplib';
import { connectAny } from './connect';
import { HEADERS, type Topology } from './topology';

/**
 * The one reader of the parking queue (the operator CLI's `dlq`, the demo's summary and the chaos
 * checks all use it).
 *
 * Reading without losing: RabbitMQ has no "peek" over AMQP 0-9-1, so a reader takes
 * every ready message with basic.get in manual-ack mode (the broker keeps each one, unacknowledged,
 * while we hold it), and then gives all of them back with ONE basic.nack(multiple, requeue). Nothing is
 * acked unless the caller settles a message itself, so nothing can be lost: if the reader dies
 * half-way, the broker returns the messages when the connection drops. Reading the whole queue keeps
 * the order: the queue hands the returned messages out again in the order they were returned, and
 * there is no unread part of the queue for them to land behind.
 *
 * Each read is a delivery, which is why the parking queue is a classic queue (src/mq/topology.ts): it
 * counts no deliveries, so no delivery limit can drop a message however often it is read.
 */

/** How often an operator re-drove this message; kept across parkings. */
export const REQUEUES_HEADER = 'x-payrecon-requeues';

const BODY_PREVIEW_CHARS = 4_096;

export interface ParkedMessage {
  /** 1 = the head of the parking queue. */
  position: number;
  messageId: string | null;
  /**
   * Why it is parked: the consumer's own reason (`x-payrecon-reason`), or `BROKER_<x-death reason>`
   * when the broker dead-lettered it itself (e.g. BROKER_DELIVERY_LIMIT); null when neither says.
   */
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

export function headerNumber(headers: Headers, key: string): number | null {
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
    bodyBytes: message.content.length,
    body: body.length > BODY_PREVIEW_CHARS ? `${body.slice(0, BODY_PREVIEW_CHARS)}…` : body,
  };
}

/** The parking queue does not exist under this prefix (a wrong AMQP_PREFIX, or nothing declared yet). */
export class ParkingQueueMissingError extends Error {
  override name = 'ParkingQueueMissingError';
  constructor(readonly queue: string) {
    super(`the parking queue "${queue}" does not exist`);
  }
}

export interface ParkingSession<C extends Channel> {
  channel: C;
  topology: Topology;
  /** Ready messages when the session began: a scan never reads further, so copies re-parked meanwhile are not read again. */
  ready: number;
  /** Every message taken, in queue order. */
  held: GetMessage[];
  /** The held messages the work acked itself (e.g. requeued copies): not given back. */
  settled: Set<GetMessage>;
}

/**
 * Opens a channel on the parking queue (`open`: a plain or a confirm channel), runs `work`, then gives
 * every held message that `work` did not settle back to the queue with one nack(multiple, requeue) and
 * closes the channel.
 */
export async function withParkingQueue<C extends Channel, T>(
  connection: ChannelModel,
  topology: Topology,
  open: (connection: ChannelModel) => Promise<C>,
  work: (session: ParkingSession<C>) => Promise<T>,
): Promise<T> {
  const channel = await open(connection);
  let channelError: Error | undefined;
  channel.on('error', (error: Error) => {
    channelError = error;
  });
  let ready: number;
  try {
    ({ messageCount: ready } = await channel.checkQueue(topology.parkingQueue));
  } catch (error) {
    if ((error as { code?: number }).code === 404) throw new ParkingQueueMissingError(topology.parkingQueue);
    throw new Error(`cannot open the parking queue "${topology.parkingQueue}": ${(error as Error).message}`);
  }
  const session: ParkingSession<C> = { channel, topology, ready, held: [], settled: new Set() };
  try {
    return await work(session);
  } catch (error) {
    if (channelError)
      throw new Error(`RabbitMQ closed the channel: ${channelError.message}`, { cause: error });
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

/**
 * Takes up to `session.ready` messages from the head of the parking queue, holding them unacked;
 * `onMessage` may settle each one and may stop the scan.
 */
export async function takeReady<C extends Channel>(
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

/** Every parked message, in queue order; all of them stay in the queue. */
export function readParked(connection: ChannelModel, topology: Topology): Promise<ParkedMessage[]> {
  return withParkingQueue(
    connection,
    topology,
    (open) => open.createChannel(),
    async (session) => {
      await takeReady(session);
      return session.held.map((message, index) => describeParked(message, index + 1));
    },
  );
}

/** readParked on a connection of its own, closed afterwards. */
export async function readParkedAt(amqpUrl: string, topology: Topology): Promise<ParkedMessage[]> {
  const connection = await connectAny(amqpUrl);
  connection.on('error', () => {});
  try {
    return await readParked(connection, topology);
  } finally {
    await connection.close().catch(() => {});
  }
}
