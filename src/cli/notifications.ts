import { WorkflowNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import { type DeliveryState, deliveryStateQuery } from '../../workflows/notification';
import { deliveryWorkflowId } from '../../workflows/notify-merchant';
import {
  createEndpoint,
  type EndpointRow,
  type EventStatus,
  findEndpoint,
  findEvent,
  listAttempts,
  listEndpoints,
  listEvents,
  listStuckEvents,
  type MerchantEventRow,
  setEndpointStatus,
} from '../db/merchant';
import { RedeliveryError, recoverEvents, redeliverEvent } from '../merchant/redeliver';
import {
  type CliContext,
  CliError,
  choiceParser,
  describeError,
  intParser,
  parseIsoInstant,
  parseNotifyUrl,
  parseOrderId,
} from './context';
import { emit, formatFields, formatTable, isoOrNull, withJson } from './output';

/** `notifications`: the merchant result notifications, their attempts, re-drives, and the endpoints. */

const EVENT_STATUSES = ['PENDING', 'DELIVERED', 'EXHAUSTED', 'NO_ENDPOINT', 'ENDPOINT_DISABLED'] as const;
const LADDERS = ['stepwise', 'exponential'] as const;

function eventJson(event: MerchantEventRow & { attempts?: number }) {
  return {
    id: event.id,
    orderId: event.orderId,
    sequence: event.sequence,
    type: event.type,
    status: event.status,
    endpointId: event.endpointId,
    attempts: event.attempts,
    createdAt: isoOrNull(event.createdAt),
    deliveredAt: isoOrNull(event.deliveredAt),
    exhaustedAt: isoOrNull(event.exhaustedAt),
  };
}

/** The endpoint without its secrets: they are shown once, when an endpoint is added. */
function endpointJson(endpoint: EndpointRow) {
  return {
    id: endpoint.id,
    url: endpoint.url,
    ladder: endpoint.ladder,
    attemptTimeoutMs: endpoint.attemptTimeoutMs,
    status: endpoint.status,
    disabledReason: endpoint.disabledReason,
    secrets: endpoint.secrets.length,
    createdAt: isoOrNull(endpoint.createdAt),
  };
}

export function registerNotificationCommands(program: Command, ctx: CliContext): void {
  const notifications = program
    .command('notifications')
    .description(
      "merchant result notifications: list, show attempts, redeliver, recover; the merchants' endpoints",
    );

  withJson(
    notifications
      .command('list')
      .description('list merchant events, newest first, with their delivery status and attempts')
      .option(
        '--status <status>',
        `only this status: ${EVENT_STATUSES.join(', ')}`,
        choiceParser('status', EVENT_STATUSES),
      )
      .option('--order <orderId>', 'only this order', parseOrderId)
      .option(
        '--stuck',
        "only PENDING events not delivered within their ladder's span, oldest first (re-drive: recover)",
      )
      .option('--limit <n>', 'at most n (1-1000)', intParser('--limit', 1, 1000), 50),
  ).action(
    async (options: {
      status?: EventStatus;
      order?: string;
      stuck?: boolean;
      limit: number;
      json?: boolean;
    }) => {
      if (options.stuck && options.status && options.status !== 'PENDING')
        throw new CliError('--stuck lists PENDING events: it does not go with another --status', 2);
      const { db } = await ctx.db();
      const events = options.stuck
        ? await listStuckEvents(db, { orderId: options.order, limit: options.limit })
        : await listEvents(db, { status: options.status, orderId: options.order, limit: options.limit });
      emit(ctx, options, { events: events.map(eventJson) }, () =>
        formatTable(
          events,
          [
            { header: 'EVENT', value: (e) => e.id, max: 48 },
            { header: 'TYPE', value: (e) => e.type },
            { header: 'STATUS', value: (e) => e.status },
            ...(options.stuck
              ? [{ header: 'PENDING SINCE', value: (e: MerchantEventRow) => e.updatedAt }]
              : [
                  {
                    header: 'ATTEMPTS',
                    value: (e: MerchantEventRow & { attempts?: number }) => e.attempts,
                    align: 'right' as const,
                  },
                ]),
            { header: 'ENDPOINT', value: (e) => e.endpointId },
            { header: 'CREATED', value: (e) => e.createdAt },
          ],
          options.stuck ? 'no stuck merchant events' : 'no merchant events',
        ),
      );
    },
  );

  withJson(
    notifications
      .command('show')
      .description("an event: its payload, every attempt, and the delivery workflow's next attempt")
      .argument('<eventId>', 'the event id (the webhook-id the merchant saw)'),
  ).action(async (eventId: string, options: { json?: boolean }) => {
    const { db } = await ctx.db();
    const event = await findEvent(db, eventId);
    if (!event) throw new CliError(`no merchant event ${eventId} (see: payrecon notifications list)`);
    const attempts = await listAttempts(db, eventId);
    let delivery: DeliveryState | null = null;
    try {
      const handle = (await ctx.temporal()).workflow.getHandle(deliveryWorkflowId(event.orderId));
      const state = await handle.query(deliveryStateQuery);
      // The order's delivery workflow is on this event (or was, in its last run).
      if (state.eventId === eventId) delivery = state;
    } catch (error) {
      // No run yet (no endpoint), or Temporal is down: the database has the record.
      if (!(error instanceof WorkflowNotFoundError))
        ctx.warn(`delivery state unavailable: ${describeError(error)}`);
    }
    const result = { event: { ...eventJson(event), payload: event.payload }, attempts, delivery };
    emit(ctx, options, result, () =>
      [
        formatFields({
          event: event.id,
          order: event.orderId,
          type: `${event.type} (#${event.sequence})`,
          status: event.status,
          endpoint: event.endpointId,
          'delivered by': deliveryWorkflowId(event.orderId),
          'next attempt': delivery?.nextAttemptAt ?? '-',
        }),
        `\nattempts (${attempts.length})`,
        formatTable(attempts, [
          { header: '#', value: (a) => a.attempt, align: 'right' },
          { header: 'STARTED', value: (a) => a.startedAt },
          { header: 'MS', value: (a) => a.durationMs, align: 'right' },
          { header: 'HTTP', value: (a) => a.httpStatus },
          { header: 'ERROR', value: (a) => a.errorKind },
          { header: 'RESPONSE', value: (a) => a.responsePrefix, max: 60 },
        ]),
      ].join('\n'),
    );
  });

  withJson(
    notifications
      .command('redeliver')
      .description(
        "deliver an event again (exhausted, or to be sent again): the same webhook-id, after its order's earlier PENDING events",
      )
      .argument('<eventId>', 'the event id'),
  ).action(async (eventId: string, options: { json?: boolean }) => {
    const { db } = await ctx.db();
    const client = await ctx.temporal();
    const taskQueue = ctx.getConfig().TEMPORAL_TASK_QUEUE;
    let workflowId: string;
    try {
      workflowId = (await redeliverEvent({ db, client, taskQueue }, eventId)).workflowId;
    } catch (error) {
      if (error instanceof RedeliveryError) throw new CliError(error.message);
      throw new CliError(
        `redelivering ${eventId} failed: ${describeError(error)} (it is PENDING: see list --stuck, recover)`,
      );
    }
    emit(
      ctx,
      options,
      { redelivered: [eventId], workflowId },
      () => `redelivering ${eventId} (${workflowId})`,
    );
  });

  withJson(
    notifications
      .command('recover')
      .description(
        'redeliver, per order and in sequence, every event since a time that is EXHAUSTED, PENDING, or ENDPOINT_DISABLED on an endpoint enabled again',
      )
      .requiredOption('--since <iso>', 'an ISO instant, e.g. 2026-01-31T00:00:00Z', parseIsoInstant),
  ).action(async (options: { since: string; json?: boolean }) => {
    const { db } = await ctx.db();
    const client = await ctx.temporal();
    const taskQueue = ctx.getConfig().TEMPORAL_TASK_QUEUE;
    const result = await recoverEvents({ db, client, taskQueue }, new Date(options.since));
    const redelivered = result.orders.flatMap((o) => o.eventIds);
    emit(ctx, options, { redelivered, orders: result.orders, failed: result.failed }, () =>
      [
        redelivered.length === 0 && result.failed.length === 0
          ? `nothing to recover since ${options.since}`
          : `redelivering ${redelivered.length} event(s) of ${result.orders.length} order(s):\n  ${redelivered.join('\n  ')}`,
        ...result.failed.map(
          (f) => `order ${f.orderId}: not woken (${f.error}); ${f.eventIds.join(', ')} stay PENDING`,
        ),
      ].join('\n'),
    );
    if (result.failed.length > 0)
      throw new CliError(`${result.failed.length} order(s) could not be woken: run recover again`);
  });

  registerEndpointCommands(notifications, ctx);
}

function registerEndpointCommands(notifications: Command, ctx: CliContext): void {
  const endpoints = notifications.command('endpoints').description("the merchants' notification endpoints");

  withJson(
    endpoints
      .command('add')
      .description('add an endpoint; its signing secret is printed once (Standard Webhooks, whsec_...)')
      .requiredOption('--url <url>', 'where to POST the notifications', parseNotifyUrl)
      .option('--id <id>', 'its id (default: a new ep_... id)', parseOrderId)
      .option(
        '--secret <whsec>',
        'a secret of your own (repeat for a rotation)',
        (raw: string, all: string[] = []) => [...all, raw],
      )
      .option(
        '--ladder <ladder>',
        `retry schedule: ${LADDERS.join(' or ')}`,
        choiceParser('ladder', LADDERS),
        'stepwise',
      )
      .option(
        '--timeout-ms <ms>',
        'per-attempt timeout (100-30000)',
        intParser('--timeout-ms', 100, 30_000),
        5_000,
      ),
  ).action(
    async (options: {
      url: string;
      id?: string;
      secret?: string[];
      ladder: (typeof LADDERS)[number];
      timeoutMs: number;
      json?: boolean;
    }) => {
      for (const secret of options.secret ?? []) {
        if (!/^whsec_[A-Za-z0-9+/=]{16,}$/.test(secret))
          throw new CliError('--secret must look like whsec_<base64>', 2);
      }
      const { db } = await ctx.db();
      if (options.id && (await findEndpoint(db, options.id)))
        throw new CliError(`endpoint ${options.id} already exists`);
      const endpoint = await createEndpoint(db, {
        id: options.id,
        url: options.url,
        secrets: options.secret,
        ladder: options.ladder,
        attemptTimeoutMs: options.timeoutMs,
      });
      const result = { endpoint: endpointJson(endpoint), secrets: endpoint.secrets };
      emit(ctx, options, result, () =>
        formatFields({
          endpoint: endpoint.id,
          url: endpoint.url,
          ladder: endpoint.ladder,
          'timeout ms': endpoint.attemptTimeoutMs,
          'secret(s), shown once': endpoint.secrets.join(' '),
        }),
      );
    },
  );

  withJson(endpoints.command('list').description('list endpoints (secrets are not shown)')).action(
    async (options: { json?: boolean }) => {
      const { db } = await ctx.db();
      const rows = await listEndpoints(db);
      emit(ctx, options, { endpoints: rows.map(endpointJson) }, () =>
        formatTable(
          rows,
          [
            { header: 'ID', value: (e) => e.id },
            { header: 'URL', value: (e) => e.url, max: 60 },
            { header: 'LADDER', value: (e) => e.ladder },
            { header: 'TIMEOUT', value: (e) => e.attemptTimeoutMs, align: 'right' },
            { header: 'STATUS', value: (e) => e.status },
            { header: 'WHY', value: (e) => e.disabledReason, max: 40 },
          ],
          'no endpoints',
        ),
      );
    },
  );

  for (const [name, status] of [
    ['disable', 'DISABLED'],
    ['enable', 'ENABLED'],
  ] as const) {
    withJson(
      endpoints
        .command(name)
        .description(`${name} an endpoint (a disabled one is not sent to; its events end ENDPOINT_DISABLED)`)
        .argument('<endpointId>', 'the endpoint'),
    ).action(async (endpointId: string, options: { json?: boolean }) => {
      const { db } = await ctx.db();
      const row = await setEndpointStatus(
        db,
        endpointId,
        status,
        status === 'DISABLED' ? 'disabled by an operator' : null,
      );
      if (!row) throw new CliError(`no endpoint ${endpointId} (see: payrecon notifications endpoints list)`);
      emit(ctx, options, { endpoint: endpointJson(row) }, () => `endpoint ${row.id} is ${row.status}`);
    });
  }
}
