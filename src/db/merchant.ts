import { randomBytes } from 'node:crypto';
import { and, asc, desc, sql as dsql, eq, gte, inArray, or, type SQL } from 'drizzle-orm';
import { DELIVERY_LADDERS, deliverySpanMs } from '../../workflows/ladder';
import type { Database } from './client';
import { merchantEndpoints, merchantEvents, notificationAttempts } from './schema';

/** Every query payrecon runs for merchant result notifications: endpoints, events, attempts. */

export type EndpointRow = typeof merchantEndpoints.$inferSelect;
export type MerchantEventRow = typeof merchantEvents.$inferSelect;
export type AttemptRow = typeof notificationAttempts.$inferSelect;
export type EventStatus = MerchantEventRow['status'];
/** A new Standard Webhooks secret: `whsec_` and 24 random bytes in base64. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export async function createEndpoint(
  db: Database,
  input: {
    id?: string;
    url: string;
    secrets?: string[];
    ladder?: EndpointRow['ladder'];
    attemptTimeoutMs?: number;
  },
): Promise<EndpointRow> {
  const [row] = await db
    .insert(merchantEndpoints)
    .values({
      id: input.id ?? `ep_${randomBytes(6).toString('hex')}`,
      url: input.url,
      secrets: input.secrets && input.secrets.length > 0 ? input.secrets : [newWebhookSecret()],
      ladder: input.ladder ?? 'stepwise',
      attemptTimeoutMs: input.attemptTimeoutMs ?? 5_000,
    })
    .returning();
  if (!row) throw new Error(`endpoint for ${input.url} was not inserted`);
  return row;
}

export async function findEndpoint(db: Database, id: string): Promise<EndpointRow | undefined> {
  const [row] = await db.select().from(merchantEndpoints).where(eq(merchantEndpoints.id, id));
  return row;
}

export async function findEndpointByUrl(db: Database, url: string): Promise<EndpointRow | undefined> {
  const [row] = await db
    .select()
    .from(merchantEndpoints)
    .where(eq(merchantEndpoints.url, url))
    .orderBy(asc(merchantEndpoints.createdAt))
    .limit(1);
  return row;
}

export async function listEndpoints(db: Database): Promise<EndpointRow[]> {
  return db.select().from(merchantEndpoints).orderBy(asc(merchantEndpoints.createdAt));
}

/** Enables or disables an endpoint (410 Gone from the merchant, or an operator). */
export async function setEndpointStatus(
  db: Database,
  id: string,
  status: EndpointRow['status'],
  reason: string | null,
): Promise<EndpointRow | undefined> {
  const [row] = await db
    .update(merchantEndpoints)
    .set({ status, disabledReason: status === 'DISABLED' ? reason : null, updatedAt: dsql`now()` })
    .where(eq(merchantEndpoints.id, id))
    .returning();
  return row;
}

export async function findEvent(db: Database, id: string): Promise<MerchantEventRow | undefined> {
  const [row] = await db.select().from(merchantEvents).where(eq(merchantEvents.id, id));
  return row;
}

/** An event with its endpoint, as a delivery attempt needs them. */
export async function findDelivery(db: Database, eventId: string) {
  const [row] = await db
    .select({ event: merchantEvents, endpoint: merchantEndpoints })
    .from(merchantEvents)
    .leftJoin(merchantEndpoints, eq(merchantEndpoints.id, merchantEvents.endpointId))
    .where(eq(merchantEvents.id, eventId));
  return row;
}

/** How many attempts an event has had (a redelivery numbers its own on from there). */
export async function countAttempts(db: Database, eventId: string): Promise<number> {
  const [attempts] = await db
    .select({ n: dsql<number>`count(*)::int` })
    .from(notificationAttempts)
    .where(eq(notificationAttempts.eventId, eventId));
  return attempts?.n ?? 0;
}

/**
 * The order's lowest-sequence PENDING event with its endpoint: what its delivery workflow sends next.
 * The database is the queue, so an order's events go out in sequence whoever woke the workflow.
 */
export async function nextPendingDelivery(db: Database, orderId: string) {
  const [row] = await db
    .select({ event: merchantEvents, endpoint: merchantEndpoints })
    .from(merchantEvents)
    .leftJoin(merchantEndpoints, eq(merchantEndpoints.id, merchantEvents.endpointId))
    .where(and(eq(merchantEvents.orderId, orderId), eq(merchantEvents.status, 'PENDING')))
    .orderBy(asc(merchantEvents.sequence))
    .limit(1);
  return row;
}

/** How long a PENDING event may take on its endpoint's ladder, in SQL (deliverySpanMs for each ladder). */
const spanMs = dsql`(case ${merchantEndpoints.ladder} ${dsql.join(
  Object.entries(DELIVERY_LADDERS).map(
    ([ladder, gaps]) =>
      dsql`when ${ladder} then ${deliverySpanMs(gaps, 0)}::bigint + ${gaps.length + 1}::bigint * ${merchantEndpoints.attemptTimeoutMs}`,
  ),
  dsql` `,
)} end)`;

/**
 * PENDING events not delivered within their ladder's span (from when they became PENDING): their
 * delivery workflow never started (a failed start after a redelivery) or something holds it. Oldest
 * first. `notifications list --stuck` and the payrecon_merchant_notifications_stuck gauge.
 */
export async function listStuckEvents(
  db: Database,
  filter: { orderId?: string; limit?: number } = {},
): Promise<MerchantEventRow[]> {
  const rows = await db
    .select({ event: merchantEvents })
    .from(merchantEvents)
    .innerJoin(merchantEndpoints, eq(merchantEndpoints.id, merchantEvents.endpointId))
    .where(
      and(
        eq(merchantEvents.status, 'PENDING'),
        filter.orderId ? eq(merchantEvents.orderId, filter.orderId) : undefined,
        dsql`${merchantEvents.updatedAt} < now() - ${spanMs} * interval '1 millisecond'`,
      ),
    )
    .orderBy(asc(merchantEvents.updatedAt))
    .limit(filter.limit ?? 1000);
  return rows.map((r) => r.event);
}

export async function countStuckEvents(db: Database): Promise<number> {
  const [row] = await db
    .select({ n: dsql<number>`count(*)::int` })
    .from(merchantEvents)
    .innerJoin(merchantEndpoints, eq(merchantEndpoints.id, merchantEvents.endpointId))
    .where(
      and(
        eq(merchantEvents.status, 'PENDING'),
        dsql`${merchantEvents.updatedAt} < now() - ${spanMs} * interval '1 millisecond'`,
      ),
    );
  return row?.n ?? 0;
}

/**
 * What `notifications recover --since` re-drives, per order and in sequence: events created since then
 * that ran out of attempts (EXHAUSTED), ended because their endpoint was disabled and it is enabled
 * again (ENDPOINT_DISABLED), or are still PENDING (a wake-up gives a stuck one its owner).
 */
export async function eventsToRecover(db: Database, since: Date, limit = 1000): Promise<MerchantEventRow[]> {
  const rows = await db
    .select({ event: merchantEvents })
    .from(merchantEvents)
    .innerJoin(merchantEndpoints, eq(merchantEndpoints.id, merchantEvents.endpointId))
    .where(
      and(
        gte(merchantEvents.createdAt, since),
        or(
          inArray(merchantEvents.status, ['EXHAUSTED', 'PENDING']),
          and(eq(merchantEvents.status, 'ENDPOINT_DISABLED'), eq(merchantEndpoints.status, 'ENABLED')),
        ),
      ),
    )
    .orderBy(asc(merchantEvents.orderId), asc(merchantEvents.sequence))
    .limit(limit);
  return rows.map((r) => r.event);
}

/** The end of a delivery (or a new one: PENDING again), with its time. */
export async function setEventStatus(db: Database, eventId: string, status: EventStatus): Promise<void> {
  await db
    .update(merchantEvents)
    .set({
      status,
      ...(status === 'DELIVERED' ? { deliveredAt: dsql`now()` } : {}),
      ...(status === 'EXHAUSTED' ? { exhaustedAt: dsql`now()` } : {}),
      updatedAt: dsql`now()`,
    })
    .where(eq(merchantEvents.id, eventId));
}

export interface AttemptInput {
  eventId: string;
  attempt: number;
  startedAt: string;
  durationMs: number;
  httpStatus: number | null;
  errorKind: string | null;
  responsePrefix: string | null;
}

/** One attempt; recording the same attempt again (a re-run) changes nothing. */
export async function recordAttempt(db: Database, input: AttemptInput): Promise<void> {
  await db
    .insert(notificationAttempts)
    .values({ ...input, startedAt: new Date(input.startedAt) })
    .onConflictDoNothing({ target: [notificationAttempts.eventId, notificationAttempts.attempt] });
}

export async function listAttempts(db: Database, eventId: string): Promise<AttemptRow[]> {
  return db
    .select()
    .from(notificationAttempts)
    .where(eq(notificationAttempts.eventId, eventId))
    .orderBy(asc(notificationAttempts.attempt));
}

export async function listEvents(
  db: Database,
  filter: { status?: EventStatus; orderId?: string; orderIds?: string[]; since?: Date; limit?: number } = {},
): Promise<(MerchantEventRow & { attempts: number })[]> {
  const where: SQL[] = [];
  if (filter.status) where.push(eq(merchantEvents.status, filter.status));
  if (filter.orderId) where.push(eq(merchantEvents.orderId, filter.orderId));
  if (filter.orderIds) where.push(inArray(merchantEvents.orderId, filter.orderIds));
  if (filter.since) where.push(gte(merchantEvents.createdAt, filter.since));
  const events = await db
    .select()
    .from(merchantEvents)
    .where(where.length > 0 ? and(...where) : undefined)
    .orderBy(desc(merchantEvents.createdAt), desc(merchantEvents.sequence))
    .limit(filter.limit ?? 1000);
  if (events.length === 0) return [];
  const counts = await db
    .select({ eventId: notificationAttempts.eventId, n: dsql<number>`count(*)::int` })
    .from(notificationAttempts)
    .where(
      inArray(
        notificationAttempts.eventId,
        events.map((e) => e.id),
      ),
    )
    .groupBy(notificationAttempts.eventId);
  const byEvent = new Map(counts.map((c) => [c.eventId, c.n]));
  return events.map((event) => ({ ...event, attempts: byEvent.get(event.id) ?? 0 }));
}
