import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Command } from 'commander';
import { type RefundState, refundCheckSignal, refundStateQuery } from '../../workflows/refund-contract';
import { findRefund, listRefunds, RefundRefused, type RefundRow } from '../db/refunds';
import { refundWorkflowId, requestRefund, startRefundWorkflow } from '../order/refund';
import { type CliContext, CliError, describeError, intParser, parseOrderId } from './context';
import { emit, formatFields, formatTable, isoOrNull, withJson } from './output';

/** `refund create | show | list`: refunds, each run by its own workflow on the same two paths as payments. */

function refundJson(row: RefundRow) {
  return {
    id: row.id,
    orderId: row.orderId,
    outRequestNo: row.outRequestNo,
    amount: row.amount,
    reason: row.reason,
    status: row.status,
    settledBy: row.settledBy,
    providerRefundNo: row.providerRefundNo,
    failureReason: row.failureReason,
    createdAt: isoOrNull(row.createdAt),
    settledAt: isoOrNull(row.settledAt),
  };
}

export function registerRefundCommands(program: Command, ctx: CliContext): void {
  const refund = program.command('refund').description('ask for refunds of paid orders, show and list them');

  withJson(
    refund
      .command('create')
      .description(
        'refund a PAID or PARTIALLY_REFUNDED order, or a CLOSED one whose trade was paid (default: all that is left); the request is stored before anything is sent',
      )
      .argument('<orderId>', 'the order', parseOrderId)
      .option(
        '--amount <minor>',
        'minor units to refund (default: the refundable rest)',
        intParser('--amount', 1, Number.MAX_SAFE_INTEGER),
      )
      .option('--reason <text>', 'why (sent to the provider)'),
  ).action(async (orderId: string, options: { amount?: number; reason?: string; json?: boolean }) => {
    const { db } = await ctx.db();
    const client = await ctx.temporal();
    let created: Awaited<ReturnType<typeof requestRefund>>;
    try {
      created = await requestRefund({ db, client, config: ctx.getConfig() }, { orderId, ...options });
    } catch (error) {
      if (error instanceof RefundRefused) throw new CliError(error.message);
      throw new CliError(`requesting the refund failed: ${describeError(error)}`);
    }
    const result = { refund: refundJson(created.refund), workflowId: created.workflowId };
    emit(ctx, options, result, () =>
      formatFields({
        refund: created.refund.id,
        order: orderId,
        amount: created.refund.amount,
        'out request no': created.refund.outRequestNo,
        workflow: created.workflowId,
      }),
    );
  });

  withJson(
    refund
      .command('start')
      .description(
        'start the workflow of a refund whose request was stored but whose workflow never started (Temporal was down)',
      )
      .argument('<refundId>', 'the refund id (rf_...)'),
  ).action(async (refundId: string, options: { json?: boolean }) => {
    const { db } = await ctx.db();
    const row = await findRefund(db, refundId);
    if (!row) throw new CliError(`no refund ${refundId} (see: payrecon refund list)`);
    if (row.status !== 'PROCESSING')
      throw new CliError(`refund ${refundId} is ${row.status}: nothing to start`);
    const client = await ctx.temporal();
    let workflowId: string;
    try {
      workflowId = await startRefundWorkflow({ client, config: ctx.getConfig() }, row);
    } catch (error) {
      if (error instanceof WorkflowExecutionAlreadyStartedError) {
        throw new CliError(`refund ${refundId} already has its workflow ${refundWorkflowId(refundId)}`);
      }
      throw new CliError(`starting the refund's workflow failed: ${describeError(error)}`);
    }
    emit(ctx, options, { refund: refundJson(row), workflowId }, () => `started ${workflowId}`);
  });

  withJson(
    refund
      .command('check')
      .description(
        'ask the provider now about a PROCESSING or UNKNOWN refund; its workflow applies the answer (conditional update, merchant event)',
      )
      .argument('<refundId>', 'the refund id (rf_...)')
      .option('--wait <seconds>', 'how long to wait for the answer (0-600)', intParser('--wait', 0, 600), 30),
  ).action(async (refundId: string, options: { wait: number; json?: boolean }) => {
    const { db } = await ctx.db();
    const row = await findRefund(db, refundId);
    if (!row) throw new CliError(`no refund ${refundId} (see: payrecon refund list)`);
    if (row.status !== 'PROCESSING' && row.status !== 'UNKNOWN') {
      throw new CliError(`refund ${refundId} is ${row.status}: the provider's answer is applied already`);
    }
    const handle = (await ctx.temporal()).workflow.getHandle(refundWorkflowId(refundId));
    let before: RefundState;
    try {
      before = await handle.query(refundStateQuery);
      await handle.signal(refundCheckSignal);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError) {
        throw new CliError(`refund ${refundId} has no running workflow (see: payrecon refund start)`);
      }
      throw new CliError(`asking the refund's workflow failed: ${describeError(error)}`);
    }
    // The workflow asks the provider and applies the answer; wait until this check has been answered.
    const until = Date.now() + options.wait * 1000;
    const target = before.checksRequested + 1;
    let state = before;
    while (state.checksDone < target && state.phase !== 'SUCCEEDED' && state.phase !== 'FAILED') {
      if (Date.now() >= until) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
      state = await handle.query(refundStateQuery).catch(() => state);
    }
    const after = (await findRefund(db, refundId)) ?? row;
    emit(ctx, options, { refund: refundJson(after), workflow: state }, () =>
      formatFields({
        ...refundJson(after),
        answered: state.checksDone >= target ? 'yes' : 'not yet',
      }),
    );
  });

  withJson(
    refund
      .command('show')
      .description("a refund: its row and its workflow's live state")
      .argument('<refundId>', 'the refund id (rf_...)'),
  ).action(async (refundId: string, options: { json?: boolean }) => {
    const { db } = await ctx.db();
    const row = await findRefund(db, refundId);
    if (!row) throw new CliError(`no refund ${refundId} (see: payrecon refund list)`);
    let workflow: unknown = null;
    try {
      workflow = await (await ctx.temporal()).workflow
        .getHandle(refundWorkflowId(refundId))
        .query(refundStateQuery);
    } catch (error) {
      if (!(error instanceof WorkflowNotFoundError))
        ctx.warn(`refund workflow state unavailable: ${describeError(error)}`);
    }
    emit(ctx, options, { refund: refundJson(row), workflow }, () =>
      formatFields({
        ...refundJson(row),
        'next query': (workflow as { nextCheckAt?: string } | null)?.nextCheckAt ?? '-',
      }),
    );
  });

  withJson(
    refund
      .command('list')
      .description('list refunds, newest first')
      .option('--order <orderId>', 'only this order', parseOrderId)
      .option('--limit <n>', 'at most n (1-1000)', intParser('--limit', 1, 1000), 50),
  ).action(async (options: { order?: string; limit: number; json?: boolean }) => {
    const { db } = await ctx.db();
    const rows = await listRefunds(db, { orderId: options.order, limit: options.limit });
    emit(ctx, options, { refunds: rows.map(refundJson) }, () =>
      formatTable(
        rows,
        [
          { header: 'REFUND', value: (r) => r.id },
          { header: 'ORDER', value: (r) => r.orderId },
          { header: 'AMOUNT', value: (r) => r.amount, align: 'right' },
          { header: 'STATUS', value: (r) => r.status },
          { header: 'BY', value: (r) => r.settledBy },
          { header: 'CREATED', value: (r) => r.createdAt },
        ],
        'no refunds',
      ),
    );
  });
}
