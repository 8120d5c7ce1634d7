import type { Command } from 'commander';
import { createEndpoint, findEndpoint, findEndpointByUrl } from '../db/merchant';
import { findOrder, listDiscrepancies, listOrders, listPaymentEvents, type OrderRow } from '../db/orders';
import { ORDER_STATUSES, type OrderStatus, orderWorkflowId, PAYMENT_PROVIDERS } from '../domain';
import { createOrder, orderProviderOf } from '../order/start';
import { workflowUiLink } from '../platform/config';
import {
  type CliContext,
  CliError,
  choiceParser,
  describeError,
  intParser,
  parseAmount,
  parseCurrency,
  parseDuration,
  parseDurationList,
  parseNotifyUrl,
  parseOrderId,
  UsageError,
} from './context';
import { emit, formatFields, formatTable, isoOrNull, money, withJson } from './output';
import { formatStartDelay, formatState, readWorkflow, type WorkflowView } from './query';

/** `order create | show | list`. */

interface CreateOptions {
  notifyUrl?: string;
  notifyEndpoint?: string;
  amount: number;
  currency: string;
  payWithin?: number;
  ladder?: number[];
  repeat?: number;
  id?: string;
  trade: boolean;
  provider?: string;
  json?: boolean;
}

export function orderJson(row: OrderRow) {
  return {
    id: row.id,
    status: row.status,
    amount: row.amount,
    currency: row.currency,
    provider: row.provider,
    payDeadline: isoOrNull(row.payDeadline),
    paidAt: isoOrNull(row.paidAt),
    tradeNo: row.tradeNo,
    providerTradeNo: row.providerTradeNo,
    notifyEndpointId: row.notifyEndpointId,
    settledBy: row.settledBy,
    closedAt: isoOrNull(row.closedAt),
    closeReason: row.closeReason,
    createdAt: isoOrNull(row.createdAt),
    updatedAt: isoOrNull(row.updatedAt),
  };
}

/** The endpoint an order's notifications go to: named, or found (else added) for a URL. */
async function notifyEndpointFor(
  ctx: CliContext,
  options: Pick<CreateOptions, 'notifyEndpoint' | 'notifyUrl'>,
): Promise<{ id: string; newSecrets?: string[] } | null> {
  const { db } = await ctx.db();
  if (options.notifyEndpoint) {
    const endpoint = await findEndpoint(db, options.notifyEndpoint);
    if (!endpoint)
      throw new CliError(
        `no endpoint ${options.notifyEndpoint} (see: payrecon notifications endpoints list)`,
      );
    return { id: endpoint.id };
  }
  if (!options.notifyUrl) return null;
  const existing = await findEndpointByUrl(db, options.notifyUrl);
  if (existing) return { id: existing.id };
  const added = await createEndpoint(db, { url: options.notifyUrl });
  return { id: added.id, newSecrets: added.secrets };
}

export function registerOrderCommands(program: Command, ctx: CliContext): void {
  const order = program.command('order').description('create, show and list orders');

  withJson(
    order
      .command('create')
      .description(
        "create an order and start its workflow, then open the order's trade at the payment provider (PROVIDER_URL; skip with --no-trade)",
      )
      .requiredOption(
        '--amount <minor>',
        'the amount due, in minor units (fen, cents): 1999 = 19.99',
        parseAmount,
      )
      .option('--currency <code>', 'ISO 4217 currency code', parseCurrency, 'CNY')
      .option(
        '--pay-within <duration>',
        'pay deadline from now, e.g. 30m (default: PAY_DEADLINE)',
        parseDuration,
      )
      .option(
        '--ladder <durations>',
        'polling ladder, e.g. 3s,30s,60s (default: POLL_LADDER)',
        parseDurationList,
      )
      .option('--repeat <duration>', 'poll interval after the ladder (default: POLL_REPEAT)', parseDuration)
      .option('--id <orderId>', 'the order id (default: a new ord_... id)', parseOrderId)
      .option('--no-trade', 'do not open the trade at the provider (the shop opens it elsewhere)')
      .option(
        '--provider <name>',
        `the provider its trade is at, one of PAYMENT_PROVIDERS (${PAYMENT_PROVIDERS.join(', ')}; default: PAYMENT_PROVIDER)`,
      )
      .option(
        '--notify-endpoint <id>',
        'send its result notifications to this merchant endpoint (default: MERCHANT_DEFAULT_ENDPOINT)',
      )
      .option(
        '--notify-url <url>',
        'send them to this URL (an endpoint is added for it unless one exists)',
        parseNotifyUrl,
      ),
  ).action(async (options: CreateOptions) => {
    const config = ctx.getConfig();
    let provider: string;
    try {
      provider = orderProviderOf(config, options.provider);
    } catch (error) {
      throw new UsageError(`--provider: ${describeError(error)}`);
    }
    // Both services first: a Temporal server that is down must not leave an order row without a workflow.
    const { db } = await ctx.db();
    const client = await ctx.temporal();
    if (options.id && (await findOrder(db, options.id))) {
      throw new CliError(`order ${options.id} already exists (see: payrecon order show ${options.id})`);
    }
    if (options.notifyEndpoint && options.notifyUrl) {
      throw new CliError('--notify-endpoint and --notify-url: give one of them', 2);
    }
    const notify = await notifyEndpointFor(ctx, options);
    const pollLadder =
      options.ladder || options.repeat
        ? {
            stepsMs: options.ladder ?? config.POLL_LADDER,
            repeatMs: options.repeat ?? config.POLL_REPEAT,
          }
        : undefined;
    let created: Awaited<ReturnType<typeof createOrder>>;
    try {
      // The trade is opened through the gateway the worker uses; its number goes into the order row.
      created = await createOrder(
        { db, client, config, gateway: options.trade ? ctx.provider() : undefined },
        {
          orderId: options.id,
          amount: options.amount,
          currency: options.currency,
          payWithinMs: options.payWithin,
          pollLadder,
          provider,
          ...(notify ? { notifyEndpointId: notify.id } : {}),
        },
      );
    } catch (error) {
      throw new CliError(`creating the order failed: ${describeError(error)}`);
    }
    const { order: row, workflowId, trade, tradeError } = created;
    if (tradeError) {
      ctx.warn(
        `the order and its workflow were created, but its trade was not opened at the payment provider (its notices are checked on the amount only): ${tradeError}`,
      );
    }
    const webUi = workflowUiLink(config, workflowId);
    const result = {
      order: orderJson(row),
      workflowId,
      webUi,
      trade,
      tradeError,
      ...(notify?.newSecrets ? { notifyEndpoint: { id: notify.id, secrets: notify.newSecrets } } : {}),
    };
    emit(ctx, options, result, () =>
      formatFields({
        order: row.id,
        status: row.status,
        amount: `${money(row.amount, row.currency)} (${row.amount})`,
        provider: row.provider,
        'pay deadline': row.payDeadline,
        workflow: workflowId,
        'web ui': webUi,
        trade: trade
          ? `${trade.tradeNo ?? '?'} (${trade.status})`
          : options.trade
            ? 'not opened (see the warning)'
            : 'not opened (--no-trade)',
        'notify endpoint': row.notifyEndpointId,
        ...(notify?.newSecrets ? { 'new endpoint secret, shown once': notify.newSecrets.join(' ') } : {}),
      }),
    );
  });

  withJson(
    order
      .command('show')
      .description("show an order: its row, payment events, discrepancies and its workflow's state")
      .argument('<orderId>', 'the order', parseOrderId),
  ).action(async (orderId: string, options: { json?: boolean }) => {
    const { db } = await ctx.db();
    const row = await findOrder(db, orderId);
    if (!row) throw new CliError(`no order ${orderId} (see: payrecon order list)`);
    const events = await listPaymentEvents(db, orderId);
    const discrepancies = (await listDiscrepancies(db, { orderId })).reverse();
    let workflow: WorkflowView | { status: 'UNKNOWN'; error: string };
    try {
      workflow = await readWorkflow(ctx, await ctx.temporal(), orderId);
    } catch (error) {
      // The database answered; a Temporal server that is down only hides the live state.
      workflow = { status: 'UNKNOWN', error: describeError(error) };
      ctx.warn(`workflow state unavailable: ${workflow.error}`);
    }
    const result = { order: orderJson(row), events, discrepancies, workflow };
    emit(ctx, options, result, () => {
      const parts = [
        formatFields({
          order: row.id,
          status: row.status,
          amount: money(row.amount, row.currency),
          'pay deadline': row.payDeadline,
          'settled by': row.settledBy,
          'trade no': row.tradeNo,
          'opened trade': row.providerTradeNo,
          'paid at': row.paidAt,
          'closed at': row.closedAt,
          'close reason': row.closeReason,
          created: row.createdAt,
        }),
        `\npayment events (${events.length})`,
        formatTable(events, [
          { header: 'ID', value: (e) => e.id, align: 'right' },
          { header: 'SOURCE', value: (e) => e.source },
          { header: 'MESSAGE ID', value: (e) => e.messageId, max: 40 },
          { header: 'TRADE NO', value: (e) => e.tradeNo },
          { header: 'STATUS', value: (e) => e.tradeStatus },
          { header: 'AMOUNT', value: (e) => money(e.amount, e.currency) },
          { header: 'RECORDED', value: (e) => e.recordedAt },
        ]),
        `\ndiscrepancies (${discrepancies.length})`,
        formatTable(discrepancies, [
          { header: 'ID', value: (d) => d.id, align: 'right' },
          { header: 'KIND', value: (d) => d.kind },
          { header: 'SUBJECT', value: (d) => d.subject },
          { header: 'CREATED', value: (d) => d.createdAt },
          { header: 'RESOLVED', value: (d) => d.resolvedAt },
          { header: 'DETAILS', value: (d) => d.details, max: 80 },
        ]),
        `\nworkflow ${'workflowId' in workflow ? workflow.workflowId : orderWorkflowId(row.id)}: ${workflow.status}`,
      ];
      if ('webUi' in workflow) parts.push(formatFields({ 'web ui': workflow.webUi }));
      if ('startsAt' in workflow && workflow.startsAt) parts.push(formatStartDelay(workflow.startsAt));
      if ('state' in workflow && workflow.state) parts.push(formatState(workflow.state));
      if ('result' in workflow && workflow.result) {
        parts.push(
          formatFields({
            result: workflow.result.status,
            'settled by': workflow.result.settledBy,
            'poll attempts': workflow.result.pollAttempts,
          }),
        );
      }
      if (workflow.error) parts.push(`(${workflow.error})`);
      return parts.join('\n');
    });
  });

  withJson(
    order
      .command('list')
      .description('list orders, newest first')
      .option(
        '--status <status>',
        `only orders in this status: ${ORDER_STATUSES.join(', ')}`,
        choiceParser('order status', ORDER_STATUSES),
      )
      .option('--limit <n>', 'at most n orders (1-1000)', intParser('--limit', 1, 1000), 20),
  ).action(async (options: { status?: OrderStatus; limit: number; json?: boolean }) => {
    const { db } = await ctx.db();
    const rows = await listOrders(db, { status: options.status, limit: options.limit });
    emit(ctx, options, { orders: rows.map(orderJson) }, () =>
      formatTable(
        rows,
        [
          { header: 'ID', value: (r) => r.id },
          { header: 'STATUS', value: (r) => r.status },
          { header: 'AMOUNT', value: (r) => money(r.amount, r.currency), align: 'right' },
          { header: 'SETTLED BY', value: (r) => r.settledBy },
          { header: 'TRADE NO', value: (r) => r.tradeNo, max: 32 },
          { header: 'CREATED', value: (r) => r.createdAt },
          { header: 'PAY DEADLINE', value: (r) => r.payDeadline },
        ],
        options.status ? `no ${options.status} orders` : 'no orders',
      ),
    );
  });
}
