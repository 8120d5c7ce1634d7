import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Command } from 'commander';
import { cancelOrderSignal, orderWorkflow, paymentInitiatedSignal } from '../../workflows/order';
import { findOrder } from '../db/orders';
import { orderWorkflowId, type PaymentNotice, TRADE_STATUSES, type TradeStatus } from '../domain';
import { deliverPaymentNotice, type NoticeDelivery } from '../order/deliver-notice';
import { orderWorkflowInput, orderWorkflowStartOptions } from '../order/start';
import {
  type CliContext,
  CliError,
  choiceParser,
  describeError,
  parseAmount,
  parseCurrency,
  parseIsoInstant,
  parseOrderId,
} from './context';
import { emit, formatFields, money, withJson } from './output';

/** `signal`: an operator's payment notice, "payment initiated" or "cancel", sent to an order's workflow. */

/**
 * A plain signal (payment initiated, cancel) to an order's running workflow, sent by signal-with-start
 * like the notices: a workflow still in its start delay (ORDER_START_DELAY=first-step) starts at once
 * instead of holding the signal until its first step, and an order whose workflow never started (its
 * start failed after the row was written) gets it. An ended workflow is not started again
 * (REJECT_DUPLICATE): that is an error here.
 */
async function signalOrder(
  ctx: CliContext,
  orderId: string,
  send:
    | { signal: typeof paymentInitiatedSignal; signalArgs: [] }
    | { signal: typeof cancelOrderSignal; signalArgs: [{ reason: string }] },
): Promise<string> {
  const config = ctx.getConfig();
  const { db } = await ctx.db();
  const order = await findOrder(db, orderId);
  if (!order) throw new CliError(`no order ${orderId} in the orders table`);
  const client = await ctx.temporal();
  const workflowId = orderWorkflowId(orderId);
  try {
    await client.workflow.signalWithStart(orderWorkflow, {
      ...orderWorkflowStartOptions(orderWorkflowInput(order, config), config.TEMPORAL_TASK_QUEUE),
      ...send,
    });
  } catch (error) {
    if (error instanceof WorkflowExecutionAlreadyStartedError) {
      throw new CliError(
        `workflow ${workflowId} has ended (order is ${order.status}): only a running order workflow takes this signal`,
      );
    }
    throw new CliError(`signalling ${workflowId} failed: ${describeError(error)}`);
  }
  return workflowId;
}

interface NotifyOptions {
  tradeNo: string;
  amount: number;
  currency?: string;
  messageId?: string;
  status: TradeStatus;
  paidAt?: string;
  json?: boolean;
}

export function registerSignalCommands(program: Command, ctx: CliContext): void {
  const signal = program.command('signal').description("send a signal to an order's workflow");

  withJson(
    signal
      .command('notify')
      .description(
        'deliver a payment notice by hand (source "manual"), like the MQ consumer does: starts the workflow if needed; the workflow checks it with the provider (one trade query) before it pays; a notice for an ended workflow is recorded and checked for contradictions',
      )
      .argument('<orderId>', 'the order that was paid', parseOrderId)
      .requiredOption('--trade-no <tradeNo>', "the provider's trade number")
      .requiredOption('--amount <minor>', 'the amount paid, in minor units (fen, cents)', parseAmount)
      .option('--currency <code>', "ISO 4217 code (default: the order's currency)", parseCurrency)
      .option('--message-id <id>', 'notice id, for deduplication (default: manual-<uuid>)')
      .option(
        '--status <status>',
        `the trade status reported: ${TRADE_STATUSES.join(', ')}`,
        choiceParser('trade status', TRADE_STATUSES),
        'TRADE_SUCCESS',
      )
      .option('--paid-at <iso>', 'when it was paid (default: now)', parseIsoInstant),
  ).action(async (orderId: string, options: NotifyOptions) => {
    const config = ctx.getConfig();
    const { db } = await ctx.db();
    const temporal = await ctx.temporal();
    const order = await findOrder(db, orderId);
    if (!order) throw new CliError(`no order ${orderId} in the orders table`);
    const notice: PaymentNotice = {
      messageId: options.messageId ?? `manual-${randomUUID()}`,
      orderId,
      source: 'manual',
      tradeNo: options.tradeNo,
      status: options.status,
      amount: options.amount,
      currency: options.currency ?? order.currency,
      paidAt: options.paidAt ?? new Date().toISOString(),
    };
    let delivery: NoticeDelivery['outcome'];
    try {
      delivery = (await deliverPaymentNotice({ db, temporal, config }, notice)).outcome;
    } catch (error) {
      throw new CliError(`signalling ${orderWorkflowId(orderId)} failed: ${describeError(error)}`);
    }
    if (delivery === 'unknown-order') throw new CliError(`no order ${orderId} in the orders table`);
    const result = { workflowId: orderWorkflowId(orderId), delivery, notice };
    emit(ctx, options, result, () =>
      formatFields({
        workflow: result.workflowId,
        notice: notice.messageId,
        trade: notice.tradeNo,
        status: notice.status,
        amount: money(notice.amount, notice.currency),
        delivery:
          delivery !== 'recorded-after-end'
            ? 'signalled (the workflow settles the order)'
            : `the workflow has ended (order is ${order.status}): the notice was recorded in payment_events; a contradiction becomes a discrepancy`,
      }),
    );
  });

  withJson(
    signal
      .command('initiated')
      .description('the buyer reached the pay page: restart the polling ladder from its first step')
      .argument('<orderId>', 'the order', parseOrderId),
  ).action(async (orderId: string, options: { json?: boolean }) => {
    const workflowId = await signalOrder(ctx, orderId, { signal: paymentInitiatedSignal, signalArgs: [] });
    emit(
      ctx,
      options,
      { workflowId, signal: 'paymentInitiated' },
      () => `signalled paymentInitiated to ${workflowId}`,
    );
  });

  withJson(
    signal
      .command('cancel')
      .description(
        'cancel an unpaid order: a final check with the provider, then the trade and the order are closed',
      )
      .argument('<orderId>', 'the order', parseOrderId)
      .option('--reason <text>', 'why (stored as the close reason)', 'CANCELLED_BY_OPERATOR'),
  ).action(async (orderId: string, options: { reason: string; json?: boolean }) => {
    const workflowId = await signalOrder(ctx, orderId, {
      signal: cancelOrderSignal,
      signalArgs: [{ reason: options.reason }],
    });
    emit(
      ctx,
      options,
      { workflowId, signal: 'cancelOrder', reason: options.reason },
      () => `signalled cancelOrder to ${workflowId} (reason: ${options.reason})`,
    );
  });
}
