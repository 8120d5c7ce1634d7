import type { Command } from 'commander';
import { type DiscrepancyRow, listDiscrepancies, resolveDiscrepancy } from '../db/orders';
import { DISCREPANCY_KINDS, type DiscrepancyKind } from '../domain';
import { type CliContext, CliError, choiceParser, intParser, parseOrderId } from './context';
import { emit, formatFields, formatTable, isoOrNull, withJson } from './output';

/** `discrepancies list | resolve`: facts that contradict an order's state, for an operator. */

function discrepancyJson(row: DiscrepancyRow) {
  return {
    id: row.id,
    orderId: row.orderId,
    kind: row.kind,
    subject: row.subject,
    details: row.details,
    createdAt: isoOrNull(row.createdAt),
    resolvedAt: isoOrNull(row.resolvedAt),
    resolution: row.resolution,
  };
}

export function registerDiscrepancyCommands(program: Command, ctx: CliContext): void {
  const discrepancies = program
    .command('discrepancies')
    .description('payment facts that contradict an order (amount mismatch, paid after close, ...)');

  withJson(
    discrepancies
      .command('list')
      .description('list discrepancies, newest first')
      .option(
        '--kind <kind>',
        `only this kind: ${DISCREPANCY_KINDS.join(', ')}`,
        choiceParser('kind', DISCREPANCY_KINDS),
      )
      .option('--unresolved', 'only those no operator has resolved yet')
      .option('--order <orderId>', 'only this order', parseOrderId)
      .option('--limit <n>', 'at most n (1-1000)', intParser('--limit', 1, 1000), 50),
  ).action(
    async (options: {
      kind?: DiscrepancyKind;
      unresolved?: boolean;
      order?: string;
      limit: number;
      json?: boolean;
    }) => {
      const { db } = await ctx.db();
      const rows = await listDiscrepancies(db, {
        kind: options.kind,
        unresolved: options.unresolved,
        orderId: options.order,
        limit: options.limit,
      });
      emit(ctx, options, { discrepancies: rows.map(discrepancyJson) }, () =>
        formatTable(
          rows,
          [
            { header: 'ID', value: (r) => r.id, align: 'right' },
            { header: 'ORDER', value: (r) => r.orderId },
            { header: 'KIND', value: (r) => r.kind },
            { header: 'SUBJECT', value: (r) => r.subject },
            { header: 'CREATED', value: (r) => r.createdAt },
            { header: 'RESOLVED', value: (r) => r.resolvedAt },
            { header: 'DETAILS', value: (r) => r.details, max: 80 },
          ],
          'no discrepancies',
        ),
      );
    },
  );

  withJson(
    discrepancies
      .command('resolve')
      .description('mark a discrepancy resolved, with a note on what was done')
      .argument(
        '<id>',
        'the discrepancy id (see: discrepancies list)',
        intParser('the id', 1, Number.MAX_SAFE_INTEGER),
      )
      .requiredOption('--note <text>', 'what the operator did (refund, manual settlement, ...)'),
  ).action(async (id: number, options: { note: string; json?: boolean }) => {
    if (options.note.trim() === '') throw new CliError('--note must say what was done', 2);
    const { db } = await ctx.db();
    const outcome = await resolveDiscrepancy(db, id, options.note.trim());
    if (!outcome.resolved) {
      const existing = outcome.row;
      if (!existing) throw new CliError(`no discrepancy ${id}`);
      throw new CliError(
        `discrepancy ${id} was already resolved at ${isoOrNull(existing.resolvedAt)}: ${existing.resolution ?? ''}`,
      );
    }
    const result = discrepancyJson(outcome.row);
    emit(ctx, options, { discrepancy: result }, () =>
      formatFields({
        discrepancy: result.id,
        order: result.orderId,
        kind: result.kind,
        subject: result.subject,
        resolved: result.resolvedAt,
        note: result.resolution,
      }),
    );
  });
}
