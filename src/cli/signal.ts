import { randomUUID } from 'node:crypto';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import { cancelOrderSignal, paymentInitiatedSignal } from '../../workflows/order';
import { findOrder } from '../db/orders';
import { orderWorkflowId, type PaymentNotice, TRADE_STATUSES, type TradeStatus } from '../domain';
import { deliverPaymentNotice, type NoticeDelivery } from '../order/deliver-notice';
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

async function signalRunning(
  ctx: CliContext,
  orderId: string,
  send: (
    handle: ReturnType<Awaited<ReturnType<CliContext['temporal']>>['workflow']['getHandle']>,
  ) => Promise<void>,
) {
  const client = await ctx.temporal();
  const workflowId = orderWorkflowId(orderId);
  try {
    await send(client.workflow.getHandle(workflowId));
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      throw new CliError(
        `workflow ${workflowId} is not running (it has ended or never started): only a running order workflow takes this signal`,
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
        'deliver a payment notice by hand (source "manual"), like the MQ consumer does: starts the workflow if needed; a notice for an ended workflow is recorded and checked for contradictions',
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
    const workflowId = await signalRunning(ctx, orderId, (handle) => handle.signal(paymentInitiatedSignal));
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
    const workflowId = await signalRunning(ctx, orderId, (handle) =>
      handle.signal(cancelOrderSignal, { reason: options.reason }),
    );
    emit(
      ctx,
      options,
      { workflowId, signal: 'cancelOrder', reason: options.reason },
      () => `signalled cancelOrder to ${workflowId} (reason: ${options.reason})`,
    );
  });
}
