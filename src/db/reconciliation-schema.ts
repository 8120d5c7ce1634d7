import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  char,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

/**
 * The daily reconciliation's tables: the provider's statements as downloaded (raw bytes, hash), their
 * rows staged for set-based matching, each run with its summary, and the breaks an operator works.
 */

const tz = { withTimezone: true, mode: 'date' } as const;
const bytea = customType<{ data: Buffer }>({ dataType: () => 'bytea' });

export const BREAK_KINDS = [
  /** The provider was paid, and we have no such order or ours is not paid. */
  'MISSING_LOCALLY',
  /** Ours is paid (or refunded), and the provider's statement does not list it. */
  'MISSING_AT_PROVIDER',
  'AMOUNT_MISMATCH',
  /** The row's status is not a paid one (no payment), or its trade is not the one that paid our order. */
  'STATUS_MISMATCH',
  /** A refund on one side only, or with another amount. */
  'REFUND_MISMATCH',
  /** The statement lists an order's payment (or a refund) more than once: the same trade, printed again. */
  'DUPLICATE',
  /**
   * Another trade paid an order the statement already lists a payment of: the buyer paid twice, and
   * this money goes back to them. One break per extra trade (ref `<order>:<trade>`).
   */
  'EXTRA_PAYMENT',
  /** The statement's own summary does not add up to its rows. */
  'CONTROL_TOTALS',
] as const;
export type BreakKind = (typeof BREAK_KINDS)[number];
/**
 * EXPECTED: on the wrong side of midnight, waiting for the next day's statement to carry it.
 * AUTO_HEALED: settled by the order's own workflow after the run signalled it.
 */
export const BREAK_STATUSES = ['OPEN', 'EXPECTED', 'AUTO_HEALED', 'RESOLVED'] as const;
export type BreakStatus = (typeof BREAK_STATUSES)[number];

export interface RejectedLine {
  line: number;
  reason: string;
}

/** One downloaded statement: the raw file, kept as it came (in chunks), and what parsing it found. */
export const reconciliationStatements = pgTable(
  'reconciliation_statements',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    provider: text('provider').notNull(),
    billDate: text('bill_date').notNull(),
    /** Null while the download is being stored; a re-run that finds the same hash reuses the rows. */
    sha256: char('sha256', { length: 64 }),
    bytes: bigint('bytes', { mode: 'number' }),
    encoding: text('encoding').notNull(),
    zipped: boolean('zipped').notNull(),
    downloadedAt: timestamp('downloaded_at', tz).notNull().defaultNow(),
    /** Rows copied into staging so far: a retried parse resumes after them. */
    rowsStaged: integer('rows_staged').notNull().default(0),
    parsedAt: timestamp('parsed_at', tz),
    /** The statement's own control totals, as it declares them (null: it has no summary line). */
    declaredSummary: jsonb('declared_summary'),
    /** Lines that could not be read (line number and why, the first 100): never staged, never lost. */
    rejectedLines: jsonb('rejected_lines').$type<RejectedLine[]>(),
    rejectedCount: integer('rejected_count').notNull().default(0),
  },
  (t) => [uniqueIndex('reconciliation_statements_day_hash_key').on(t.provider, t.billDate, t.sha256)],
);

export const reconciliationStatementChunks = pgTable(
  'reconciliation_statement_chunks',
  {
    statementId: bigint('statement_id', { mode: 'number' }).notNull(),
    seq: integer('seq').notNull(),
    data: bytea('data').notNull(),
  },
  (t) => [primaryKey({ columns: [t.statementId, t.seq] })],
);

/** The statement's rows, in payrecon's units, filled by COPY and matched in SQL. */
export const reconciliationStatementRows = pgTable(
  'reconciliation_statement_rows',
  {
    statementId: bigint('statement_id', { mode: 'number' }).notNull(),
    lineNo: integer('line_no').notNull(),
    tradeNo: text('trade_no').notNull(),
    orderId: text('order_id').notNull(),
    type: text('type', { enum: ['pay', 'refund'] }).notNull(),
    outRequestNo: text('out_request_no'),
    currency: char('currency', { length: 3 }).notNull(),
    /** Minor units, positive. */
    amount: bigint('amount', { mode: 'number' }).notNull(),
    fee: bigint('fee', { mode: 'number' }).notNull(),
    status: text('status').notNull(),
    occurredAt: timestamp('occurred_at', tz).notNull(),
  },
  // No primary key: line numbers are unique by construction and an index would slow the COPY.
  (t) => [index('reconciliation_statement_rows_statement_idx').on(t.statementId, t.orderId)],
);

/** One run of one day's reconciliation (a dry run writes none). */
export const reconciliationRuns = pgTable(
  'reconciliation_runs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    provider: text('provider').notNull(),
    billDate: text('bill_date').notNull(),
    workflowId: text('workflow_id').notNull(),
    workflowRunId: text('workflow_run_id').notNull(),
    statementId: bigint('statement_id', { mode: 'number' }),
    status: text('status', { enum: ['RUNNING', 'COMPLETED'] })
      .notNull()
      .default('RUNNING'),
    summary: jsonb('summary'),
    startedAt: timestamp('started_at', tz).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', tz),
  },
  (t) => [
    // A retried start activity finds its own row.
    uniqueIndex('reconciliation_runs_workflow_run_key').on(t.workflowRunId),
    index('reconciliation_runs_day_idx').on(t.provider, t.billDate, t.startedAt),
  ],
);

/**
 * Every mismatch between the statement and payrecon, for an operator. `ref` is what it is about (an
 * order id, a refund's out_request_no, a control total's name): with the day and kind it is unique, so
 * re-running a day finds the same breaks and adds none.
 */
export const reconciliationBreaks = pgTable(
  'reconciliation_breaks',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    provider: text('provider').notNull(),
    billDate: text('bill_date').notNull(),
    kind: text('kind', { enum: BREAK_KINDS }).notNull(),
    ref: text('ref').notNull(),
    orderId: text('order_id'),
    tradeNo: text('trade_no'),
    /** What payrecon has, and what the statement says (null: nothing on that side). */
    ours: jsonb('ours'),
    theirs: jsonb('theirs'),
    status: text('status', { enum: BREAK_STATUSES }).notNull().default('OPEN'),
    /** The run that found it first, and the last run that saw it. */
    firstRunId: bigint('first_run_id', { mode: 'number' }).notNull(),
    lastRunId: bigint('last_run_id', { mode: 'number' }).notNull(),
    /** What the run did to heal it: signalled (the order's workflow took the fact), recorded-after-end. */
    healAction: text('heal_action'),
    healedAt: timestamp('healed_at', tz),
    resolvedBy: text('resolved_by'),
    resolutionNote: text('resolution_note'),
    resolvedAt: timestamp('resolved_at', tz),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('reconciliation_breaks_day_kind_ref_key').on(t.provider, t.billDate, t.kind, t.ref),
    index('reconciliation_breaks_status_idx').on(t.status, t.billDate),
    check(
      'reconciliation_breaks_status_known',
      sql`${t.status} in ('OPEN','EXPECTED','AUTO_HEALED','RESOLVED')`,
    ),
    check(
      'reconciliation_breaks_resolved_has_who',
      sql`${t.status} <> 'RESOLVED' or (${t.resolvedBy} is not null and ${t.resolutionNote} is not null)`,
    ),
  ],
);
