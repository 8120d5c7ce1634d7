import type { Command } from 'commander';
import { findOrder, listDiscrepancies } from '../db/orders';
import { resolveReview } from '../order/review';
import { type CliContext, CliError, choiceParser, describeError, parseOrderId } from './context';
import { emit, formatFields, withJson } from './output';

/** `review resolve`: an operator's decision on an order held for review, run through a workflow. */

const OUTCOMES = ['PAID', 'CLOSED'] as const;

interface ResolveOptions {
  to: (typeof OUTCOMES)[number];
  note: string;
  tradeNo?: string;
  json?: boolean;
}

export function registerReviewCommands(program: Command, ctx: CliContext): void {
  const review = program
    .command('review')
    .description('settle an order held for review (NEEDS_REVIEW) as PAID or CLOSED, through its workflow');

  withJson(
    review
      .command('resolve')
      .description(
        'decide a held order: PAID (accept the payment under review, or --trade-no) or CLOSED (the trade is closed at the provider; refund a paid one first)',
      )
      .argument('<orderId>', 'the order in NEEDS_REVIEW', parseOrderId)
      .requiredOption(
        '--to <status>',
        `the decision: ${OUTCOMES.join(' or ')}`,
        choiceParser('--to', OUTCOMES),
      )
      .requiredOption('--note <text>', 'what was checked and done (kept on the order and its discrepancies)')
      .option(
        '--trade-no <tradeNo>',
        'for PAID: the trade that paid, if not the one the order was held with',
      ),
  ).action(async (orderId: string, options: ResolveOptions) => {
    const note = options.note.trim();
    if (note === '') throw new CliError('--note must say what was checked and done', 2);
    if (options.tradeNo && options.to !== 'PAID') throw new CliError('--trade-no goes with --to PAID', 2);
    const { db } = await ctx.db();
    const order = await findOrder(db, orderId);
    if (!order) throw new CliError(`no order ${orderId} (see: payrecon order list --status NEEDS_REVIEW)`);
    if (order.status !== 'NEEDS_REVIEW') {
      throw new CliError(`order ${orderId} is ${order.status}, not NEEDS_REVIEW: nothing to resolve`);
    }
    if (options.to === 'PAID' && !order.tradeNo && !options.tradeNo) {
      throw new CliError(`order ${orderId} was held without a trade: --to PAID needs --trade-no`, 2);
    }
    const client = await ctx.temporal();
    let result: Awaited<ReturnType<typeof resolveReview>>;
    try {
      result = await resolveReview(
        { client, taskQueue: ctx.getConfig().TEMPORAL_TASK_QUEUE },
        { orderId, outcome: options.to, note, ...(options.tradeNo ? { tradeNo: options.tradeNo } : {}) },
      );
    } catch (error) {
      throw new CliError(`resolving the review of ${orderId} failed: ${describeError(error)}`);
    }
    if (result.refused) {
      throw new CliError(`order ${orderId} stays NEEDS_REVIEW: ${result.refused}`);
    }
    if (!result.changed) {
      throw new CliError(`order ${orderId} is ${result.status ?? 'gone'} now: another decision came first`);
    }
    const resolved = (await listDiscrepancies(db, { orderId })).filter((d) => d.resolvedAt !== null);
    // The decision is made whatever the trade's close answered: its outcome is reported, not an error.
    const tradeClose = result.tradeClose;
    emit(ctx, options, { ...result, resolvedDiscrepancies: resolved.map((d) => d.kind) }, () =>
      formatFields({
        order: orderId,
        status: result.status,
        workflow: result.workflowId,
        'discrepancies resolved': resolved.map((d) => d.kind).join(', ') || '-',
        ...(tradeClose
          ? {
              'trade close':
                'status' in tradeClose
                  ? tradeClose.status === 'NOT_FOUND'
                    ? 'NOT_FOUND (no trade at the provider: nothing to close)'
                    : tradeClose.status
                  : `FAILED (${tradeClose.error}): close it at the provider by hand`,
            }
          : {}),
      }),
    );
  });
}
