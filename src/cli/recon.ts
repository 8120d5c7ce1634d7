import { type Command, InvalidArgumentError } from 'commander';
import ms from 'ms';
import type { ReconciliationSummary } from '../../workflows/reconciliation';
import {
  type BreakRow,
  findBreak,
  latestRun,
  listBreaks,
  type RunRow,
  resolveBreak,
} from '../db/reconciliation';
import { BREAK_KINDS, BREAK_STATUSES, type BreakKind } from '../db/reconciliation-schema';
import { reconciledProvider } from '../domain/order';
import { type Config, enabledProviders, reconciliationName, workflowUiLink } from '../platform/config';
import {
  billDateOf,
  billDayBounds,
  formatBillTime,
  isBillDate,
  STATEMENT_TIME_ZONE,
} from '../provider/statement-format';
import {
  backfillReconciliation,
  ensureReconciliationSchedule,
  reconciliationScheduleId,
  startReconciliation,
} from '../reconciliation/start';
import { type CliContext, CliError, choiceParser, describeError, intParser, UsageError } from './context';
import { cell, emit, formatFields, formatTable, money, withJson } from './output';

/**
 * `recon run | schedule | backfill | report | breaks | resolve`: the daily reconciliation against the
 * provider's statement (src/reconciliation/start.ts starts it, src/db/reconciliation.ts keeps its runs
 * and breaks). Every command works on one provider's reconciliation: --provider, else RECON_PROVIDER.
 */

export const RECON_DESCRIPTION =
  "the daily reconciliation against the provider's statement: run a day, the schedule, backfill, reports, breaks";

const MAX_BACKFILL_DAYS = 366;
/** `report --csv` exports a whole day; a day with more breaks than this is cut (with a warning). */
const CSV_MAX_ROWS = 1_000_000;
const CSV_COLUMNS = [
  'id',
  'bill_date',
  'kind',
  'ref',
  'order_id',
  'trade_no',
  'status',
  'ours',
  'theirs',
  'heal_action',
  'resolved_by',
  'resolution_note',
] as const;

const RECON_HELP = `
Bill dates are calendar days in ${STATEMENT_TIME_ZONE} (the statement's time zone), YYYY-MM-DD; a day's
statement is out the day after (T+1). Each provider's day is reconciled on its own, against that
provider's orders only: --provider (one of PAYMENT_PROVIDERS), else RECON_PROVIDER (default:
PAYMENT_PROVIDER). The schedule's time is RECON_SCHEDULE_AT, its catch-up window RECON_CATCHUP_WINDOW.

Examples:
  payrecon recon run 2026-04-01
  payrecon recon run --provider wechatpay 2026-04-01
  payrecon recon report 2026-04-01 --csv > breaks-2026-04-01.csv
  payrecon recon breaks --open
  payrecon recon resolve 42 --note "refunded by hand at the provider, ticket OPS-123"`;

/** `--provider`: a reconciliation's name (a payment provider, optionally -<label>). */
function parseReconProvider(raw: string): string {
  const parsed = reconciliationName.safeParse(raw.trim());
  if (!parsed.success) throw new InvalidArgumentError(parsed.error.issues[0]?.message ?? 'not a provider');
  return parsed.data;
}

function withProvider<C extends Command>(command: C): C {
  return command.option(
    '--provider <name>',
    `the provider whose day it is, one of PAYMENT_PROVIDERS (default: RECON_PROVIDER)`,
    parseReconProvider,
  ) as C;
}

/** The configuration with --provider as RECON_PROVIDER; a provider not enabled here is a usage error. */
function reconConfig(ctx: CliContext, options: { provider?: string }): Config {
  const config = ctx.getConfig();
  const name = options.provider ?? config.RECON_PROVIDER;
  const provider = reconciledProvider(name);
  const enabled = enabledProviders(config);
  if (!provider || !enabled.includes(provider)) {
    throw new UsageError(
      `provider ${name}: not enabled here (PAYMENT_PROVIDERS: ${enabled.join(', ')}); its statement cannot be fetched`,
    );
  }
  return { ...config, RECON_PROVIDER: name };
}

export function parseBillDate(raw: string): string {
  const text = raw.trim();
  if (!isBillDate(text)) {
    throw new InvalidArgumentError(
      `expected a date YYYY-MM-DD (a day in ${STATEMENT_TIME_ZONE}), e.g. 2026-04-01`,
    );
  }
  return text;
}

/** Today in the statement's time zone. */
function today(): string {
  return billDateOf(new Date());
}

/** Days from `from` to `to`, both included. */
function daysBetween(from: string, to: string): number {
  return (
    Math.round((billDayBounds(to).start.getTime() - billDayBounds(from).start.getTime()) / 86_400_000) + 1
  );
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

// --- how a summary and a break read ------------------------------------------------------------------

/**
 * The summary's totals carry no currency (a statement may mix them): printed in major units, two
 * decimals, the way the statement prints them.
 */
function major(minor: number | null | undefined): string {
  return money(minor, null);
}

function breakCountsTable(summary: ReconciliationSummary): string {
  const kinds = BREAK_KINDS.filter((kind) => summary.breaks[kind]);
  return formatTable(
    kinds,
    [
      { header: 'KIND', value: (kind: BreakKind) => kind },
      ...BREAK_STATUSES.map((status) => ({
        header: status,
        value: (kind: BreakKind) => summary.breaks[kind]?.[status] ?? 0,
        align: 'right' as const,
      })),
    ],
    'no breaks',
  );
}

/** The lines `recon run` ends with and `recon report` shows: the stored summary of one run. */
export function formatSummary(summary: ReconciliationSummary, extra: Record<string, unknown> = {}): string {
  const { statement, theirs, declared, ours } = summary;
  const totals = formatTable(
    [
      { what: 'rows', theirs: theirs.rows, declared: declared?.rows, ours: null },
      { what: 'payments', theirs: theirs.payCount, declared: declared?.payCount, ours: ours.payCount },
      {
        what: 'paid amount',
        theirs: major(theirs.payAmount),
        declared: declared ? major(declared.payAmount) : null,
        ours: major(ours.payAmount),
      },
      {
        what: 'refunds',
        theirs: theirs.refundCount,
        declared: declared?.refundCount,
        ours: ours.refundCount,
      },
      {
        what: 'refunded amount',
        theirs: major(theirs.refundAmount),
        declared: declared ? major(declared.refundAmount) : null,
        ours: major(ours.refundAmount),
      },
      { what: 'fee', theirs: major(theirs.fee), declared: declared ? major(declared.fee) : null, ours: null },
    ],
    [
      { header: '', value: (r) => r.what },
      { header: 'THEIRS (rows)', value: (r) => r.theirs, align: 'right' },
      { header: 'DECLARED (summary line)', value: (r) => r.declared, align: 'right' },
      { header: 'OURS', value: (r) => r.ours, align: 'right' },
    ],
  );
  const healing = Object.entries(summary.healing)
    .map(([action, n]) => `${action} ${n}`)
    .join(', ');
  const lines = [
    `reconciliation of ${summary.billDate} (provider ${summary.provider})${summary.dryRun ? ', DRY RUN: nothing written, nothing healed' : ''}`,
    formatFields({
      ...extra,
      statement: `sha256 ${statement.sha256.slice(0, 12)}…, ${plural(statement.bytes, 'byte')}, ${plural(statement.urlRequests, 'URL request')}, ${statement.reused ? 'reused (same file as before)' : 'new'}, ${plural(statement.rejectedLines, 'rejected line')}`,
      'matched payments': summary.matchedPayments,
    }),
    '',
    totals,
    declared ? '' : '(the statement has no summary line)',
    `breaks: ${summary.totalBreaks} (${summary.open} open, ${summary.expected} expected, ${summary.healed} healed)`,
    breakCountsTable(summary),
    '',
    // Summaries stored before controlTotalsOk existed were of statements acted on.
    statement.controlTotalsOk === false
      ? 'the statement fails its own control totals: its breaks are reported, nothing healed, resolved or carried'
      : '',
    formatFields({ healing: healing || 'nothing to hand to an order', status: summary.status }),
    openLine(summary.billDate, summary.open, summary.expected),
  ];
  return lines.filter((line, index) => line !== '' || lines[index - 1] !== '').join('\n');
}

function openLine(billDate: string, open: number, expected: number): string {
  const line = `${plural(open, 'open break')}${expected > 0 ? ` (and ${expected} expected: due on the next day's statement)` : ''}`;
  return open + expected > 0 ? `${line}: payrecon recon breaks --open --date ${billDate}` : line;
}

const MONEY_KEYS = new Set(['amount', 'payAmount', 'refundAmount', 'fee']);
const SHOWN_FIRST = ['status', 'amount', 'tradeNo', 'copies'];
/** Times and ids that make a cell long and say little at a glance (the JSON and CSV have them). */
const LEFT_OUT = new Set(['currency', 'at', 'paidAt', 'settledAt', 'refundId', 'outRequestNo']);

function asNumber(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return Number(value);
  return null;
}

/** One side of a break in a few words: `PAID 25.00 CNY T2026...`, `payAmount 100.01`, `-`. */
export function shortSide(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value !== 'object' || Array.isArray(value)) return cell(value);
  const fields = value as Record<string, unknown>;
  const currency = typeof fields.currency === 'string' ? fields.currency : null;
  const parts: string[] = [];
  const show = (key: string, raw: unknown) => {
    const n = asNumber(raw);
    if (key === 'amount' && n !== null) parts.push(money(n, currency));
    else if (key === 'copies') parts.push(`${cell(raw)} copies`);
    else if (key === 'status' || key === 'tradeNo') parts.push(cell(raw));
    else parts.push(`${key} ${MONEY_KEYS.has(key) && n !== null ? major(n) : cell(raw)}`);
  };
  for (const key of SHOWN_FIRST) if (key in fields && fields[key] !== null) show(key, fields[key]);
  for (const [key, raw] of Object.entries(fields)) {
    if (!SHOWN_FIRST.includes(key) && !LEFT_OUT.has(key) && raw !== null) show(key, raw);
  }
  return parts.length > 0 ? parts.join(' ') : '-';
}

function breakJson(row: BreakRow) {
  return { ...row };
}

function breaksTable(rows: readonly BreakRow[], empty: string): string {
  return formatTable(
    rows,
    [
      { header: 'ID', value: (b) => b.id, align: 'right' },
      { header: 'DATE', value: (b) => b.billDate },
      { header: 'KIND', value: (b) => b.kind },
      { header: 'REF', value: (b) => b.ref, max: 36 },
      { header: 'ORDER', value: (b) => b.orderId, max: 36 },
      { header: 'STATUS', value: (b) => b.status },
      { header: 'OURS → THEIRS', value: (b) => `${shortSide(b.ours)} → ${shortSide(b.theirs)}`, max: 72 },
      { header: 'HEAL', value: (b) => b.healAction },
    ],
    empty,
  );
}

// --- CSV ---------------------------------------------------------------------------------------------

/** RFC 4180: a field with a comma, a quote or a line break is quoted, its quotes doubled. */
function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

function csvJson(value: unknown): string {
  return value === null || value === undefined ? '' : JSON.stringify(value);
}

export function breaksCsv(rows: readonly BreakRow[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const b of rows) {
    const fields = [
      String(b.id),
      b.billDate,
      b.kind,
      b.ref,
      b.orderId ?? '',
      b.tradeNo ?? '',
      b.status,
      csvJson(b.ours),
      csvJson(b.theirs),
      b.healAction ?? '',
      b.resolvedBy ?? '',
      b.resolutionNote ?? '',
    ];
    lines.push(fields.map(csvField).join(','));
  }
  return `${lines.join('\n')}\n`;
}

// --- the commands ------------------------------------------------------------------------------------

export function registerReconCommands(program: Command, ctx: CliContext): void {
  const recon = program.command('recon').description(RECON_DESCRIPTION).addHelpText('after', RECON_HELP);

  withJson(
    withProvider(recon.command('run'))
      .description(
        'reconcile one day now (or join its run in progress), wait for it and print its summary; exit 0 whether it balanced or found breaks',
      )
      .argument('<date>', `the bill date, YYYY-MM-DD (${STATEMENT_TIME_ZONE})`, parseBillDate)
      .option('--dry-run', 'count the breaks without writing or healing anything (a run of its own)')
      .option('--no-wait', 'start it and print its workflow id and Web UI link, without waiting'),
  ).action(
    async (
      billDate: string,
      options: { dryRun?: boolean; wait: boolean; json?: boolean; provider?: string },
    ) => {
      if (billDate > today()) {
        throw new UsageError(
          `${billDate} has not happened yet in ${STATEMENT_TIME_ZONE} (today is ${today()})`,
        );
      }
      const config = reconConfig(ctx, options);
      const client = await ctx.temporal();
      let handle: Awaited<ReturnType<typeof startReconciliation>>;
      try {
        handle = await startReconciliation(client, config, billDate, { dryRun: options.dryRun });
      } catch (error) {
        throw new CliError(`starting the reconciliation of ${billDate} failed: ${describeError(error)}`);
      }
      const workflowId = handle.workflowId;
      const webUi = workflowUiLink(config, workflowId);
      if (!options.wait) {
        emit(ctx, options, { workflowId, webUi }, () =>
          formatFields({
            workflow: workflowId,
            'web ui': webUi,
            report: `payrecon recon report ${billDate}`,
          }),
        );
        return;
      }
      if (billDate === today()) {
        ctx.warn(`the statement of ${billDate} is out tomorrow (T+1): the run asks for it until then`);
      }
      ctx.warn(`waiting for ${workflowId} (Ctrl-C stops waiting, not the run): ${webUi}`);
      let summary: ReconciliationSummary;
      try {
        summary = await waitForSummary(ctx, handle);
      } catch (error) {
        // describeError follows the failure's causes: the workflow's own reason is in them.
        throw new CliError(
          `the reconciliation of ${billDate} (${workflowId}) did not complete: ${describeError(error)}; see ${webUi}`,
        );
      }
      emit(ctx, options, { workflowId, webUi, summary }, () =>
        formatSummary(summary, { workflow: workflowId, 'web ui': webUi }),
      );
    },
  );

  withJson(
    withProvider(recon.command('schedule')).description(
      'create the daily schedule, or bring it up to date with the configuration (one schedule however often it runs)',
    ),
  ).action(async (options: { json?: boolean; provider?: string }) => {
    const config = reconConfig(ctx, options);
    const client = await ctx.temporal();
    const ensured = await scheduleCall('creating or updating the schedule', () =>
      ensureReconciliationSchedule(client, config),
    );
    const description = await scheduleCall(`reading the schedule ${ensured.scheduleId}`, () =>
      client.schedule.getHandle(ensured.scheduleId).describe(),
    );
    const { spec, policies, info, state } = description;
    const timezone = spec.timezone ?? 'UTC';
    const times = (spec.calendars ?? []).map(calendarTime);
    const next = info.nextActionTimes.slice(0, 5);
    const result = {
      scheduleId: ensured.scheduleId,
      created: ensured.created,
      spec: { dailyAt: times, timezone },
      overlap: policies.overlap,
      catchupWindowMs: policies.catchupWindow,
      paused: state.paused,
      nextActionTimes: next.map((at) => at.toISOString()),
    };
    emit(ctx, options, result, () =>
      [
        `schedule ${ensured.scheduleId} ${ensured.created ? 'created' : 'updated'}`,
        formatFields({
          runs: `daily at ${times.join(', ') || '?'} ${timezone}, each run reconciles the day before`,
          overlap: `${policies.overlap} (a day still running holds the next one back)`,
          'catch-up window': `${ms(policies.catchupWindow, { long: true })} (runs missed while Temporal was down are taken within it)`,
          ...(state.paused ? { paused: `yes${state.note ? ` (${state.note})` : ''}` } : {}),
          'next runs': next.length === 0 ? 'none' : `${next.length} (below)`,
        }),
        // One a line: formatFields keeps a value on one line.
        ...next.map((at) => `  ${formatBillTime(at)} ${STATEMENT_TIME_ZONE} (${at.toISOString()})`),
      ].join('\n'),
    );
  });

  withJson(
    withProvider(recon.command('backfill'))
      .description(
        `reconcile past days through the schedule, one after another (at most ${MAX_BACKFILL_DAYS} days)`,
      )
      .requiredOption('--from <date>', 'the first bill date, YYYY-MM-DD', parseBillDate)
      .requiredOption('--to <date>', 'the last bill date (included), YYYY-MM-DD', parseBillDate),
  ).action(async (options: { from: string; to: string; json?: boolean; provider?: string }) => {
    const { from, to } = options;
    if (from > to) throw new UsageError(`--from ${from} is after --to ${to}`);
    const days = daysBetween(from, to);
    if (days > MAX_BACKFILL_DAYS) {
      throw new UsageError(`${from} to ${to} is ${days} days; at most ${MAX_BACKFILL_DAYS} at a time`);
    }
    if (to >= today()) {
      throw new UsageError(
        `--to ${to}: a day's statement is out the day after (T+1); backfill days before ${today()}`,
      );
    }
    const config = reconConfig(ctx, options);
    const client = await ctx.temporal();
    const scheduleId = reconciliationScheduleId(config.RECON_PROVIDER);
    const asked = await scheduleCall(`backfilling through the schedule ${scheduleId}`, () =>
      backfillReconciliation(client, config, from, to),
    );
    emit(ctx, options, { scheduleId, from, to, days: asked.days }, () =>
      [
        `asked the schedule ${scheduleId} to reconcile ${plural(asked.days, 'day')}, ${from} to ${to}, one after another`,
        `each day runs as reconciliation-${config.RECON_PROVIDER}-<date>; then: payrecon recon report <date>`,
      ].join('\n'),
    );
  });

  withJson(
    withProvider(recon.command('report'))
      .description(
        "the latest run of a day: statement, totals theirs vs ours, breaks by kind; or the day's breaks as CSV",
      )
      .argument('<date>', `the bill date, YYYY-MM-DD (${STATEMENT_TIME_ZONE})`, parseBillDate)
      .option('--csv', `print the day's breaks as CSV (${CSV_COLUMNS.join(',')})`),
  ).action(async (billDate: string, options: { json?: boolean; csv?: boolean; provider?: string }) => {
    if (options.json && options.csv) throw new UsageError('--json and --csv: choose one');
    const provider = reconConfig(ctx, options).RECON_PROVIDER;
    const { sql } = await ctx.db();
    const run = await latestRun(sql, provider, billDate);
    if (!run) {
      throw new CliError(
        `no reconciliation run of ${billDate} (provider ${provider}); start one: payrecon recon run ${billDate}`,
      );
    }
    if (options.csv) {
      if (run.status !== 'COMPLETED') ctx.warn(`the run of ${billDate} is still running: its breaks so far`);
      const rows = await listBreaks(sql, { provider, billDate, limit: CSV_MAX_ROWS });
      if (rows.length === CSV_MAX_ROWS) ctx.warn(`only the first ${CSV_MAX_ROWS} breaks`);
      ctx.io.stdout.write(breaksCsv(rows));
      return;
    }
    const summary = completedSummary(run, billDate);
    if (options.json) {
      ctx.json(summary);
      return;
    }
    // The summary is the run's; operators have resolved some since, maybe.
    const openNow = await listBreaks(sql, { provider, billDate, open: true, limit: 1000 });
    ctx.out(
      formatSummary(summary, {
        run: `${run.id}, finished ${instant(run.finishedAt)}`,
        workflow: run.workflowId,
      }),
    );
    if (openNow.length !== summary.open + summary.expected) {
      ctx.out(`now: ${openNow.length === 1000 ? '1000 or more' : openNow.length} open or expected`);
    }
  });

  withJson(
    withProvider(recon.command('breaks'))
      .description('list breaks, newest day first (--open: those still to look at, OPEN and EXPECTED)')
      .option('--open', 'only OPEN and EXPECTED breaks')
      .option('--date <date>', 'only this bill date, YYYY-MM-DD', parseBillDate)
      .option(
        '--kind <kind>',
        `only this kind: ${BREAK_KINDS.join(', ')}`,
        choiceParser('break kind', BREAK_KINDS),
      )
      .option('--limit <n>', 'at most n (1-10000)', intParser('--limit', 1, 10_000), 100),
  ).action(
    async (options: {
      open?: boolean;
      date?: string;
      kind?: BreakKind;
      limit: number;
      json?: boolean;
      provider?: string;
    }) => {
      const provider = reconConfig(ctx, options).RECON_PROVIDER;
      const { sql } = await ctx.db();
      const rows = await listBreaks(sql, {
        provider,
        billDate: options.date,
        open: options.open,
        kind: options.kind,
        limit: options.limit,
      });
      emit(ctx, options, { breaks: rows.map(breakJson) }, () =>
        breaksTable(rows, `no ${options.open ? 'open ' : ''}breaks (provider ${provider})`),
      );
    },
  );

  withJson(
    recon
      .command('resolve')
      .description('close an OPEN or EXPECTED break by hand; who and why are kept with it')
      .argument(
        '<breakId>',
        'the break (see: payrecon recon breaks --open)',
        intParser('the break id', 1, Number.MAX_SAFE_INTEGER),
      )
      .requiredOption('--note <text>', 'why it is resolved (what was checked or done)')
      .option('--by <name>', 'who resolves it (default: $USER, else operator)'),
  ).action(async (id: number, options: { note: string; by?: string; json?: boolean }) => {
    const note = options.note.trim();
    if (note === '') throw new UsageError('--note must say why the break is resolved');
    const by = options.by?.trim() || ctx.io.env.USER?.trim() || 'operator';
    const { sql } = await ctx.db();
    const found = await findBreak(sql, id);
    if (!found) throw new CliError(`no break ${id} (see: payrecon recon breaks)`);
    const resolved = await resolveBreak(sql, { id, by, note });
    if (!resolved) {
      const now = (await findBreak(sql, id)) ?? found;
      const who = now.resolvedBy ? ` by ${now.resolvedBy}: ${now.resolutionNote ?? ''}` : '';
      throw new CliError(`break ${id} is ${now.status}${who}; only OPEN and EXPECTED breaks are resolved`);
    }
    emit(
      ctx,
      options,
      { break: breakJson(resolved) },
      () => `break ${id} (${resolved.kind} ${resolved.ref}, ${resolved.billDate}) resolved by ${by}: ${note}`,
    );
  });
}

const RETRY_CHECK_MS = 5_000;

/**
 * The run's result. Its activities retry for hours (a statement not out yet, a provider down), so while
 * waiting a failing attempt is told on stderr, once per attempt: the operator sees why it takes long.
 */
async function waitForSummary(
  ctx: CliContext,
  handle: Awaited<ReturnType<typeof startReconciliation>>,
): Promise<ReconciliationSummary> {
  const result = handle.result().then((summary) => ({ summary: summary as ReconciliationSummary }));
  const told = new Set<string>();
  for (;;) {
    let timer: NodeJS.Timeout | undefined;
    const tick = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), RETRY_CHECK_MS);
    });
    const done = await Promise.race([result, tick]).finally(() => clearTimeout(timer));
    if (done) return done.summary;
    try {
      for (const activity of (await handle.describe()).raw.pendingActivities ?? []) {
        const attempt = activity.attempt ?? 0;
        const failure = activity.lastFailure?.message;
        const key = `${activity.activityId}/${attempt}`;
        if (attempt > 1 && failure && !told.has(key)) {
          told.add(key);
          ctx.warn(
            `${activity.activityType?.name ?? 'an activity'} is retrying (attempt ${attempt}): ${failure}`,
          );
        }
      }
    } catch {
      // Only a hint: the result tells what went wrong for good.
    }
  }
}

/** The stored summary of a completed run; a run still going (or one that died) has none yet. */
function completedSummary(run: RunRow, billDate: string): ReconciliationSummary {
  if (run.status === 'COMPLETED' && run.summary) return run.summary as ReconciliationSummary;
  throw new CliError(
    `the reconciliation of ${billDate} has not completed (run ${run.id}, started ${instant(run.startedAt)}, workflow ${run.workflowId}); wait for it: payrecon recon run ${billDate}`,
  );
}

/** An instant as ISO 8601: the raw client hands timestamps over as Postgres prints them, not as Dates. */
function instant(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return '-';
  const time = new Date(value).getTime();
  return Number.isNaN(time) ? String(value) : new Date(time).toISOString();
}

/** `HH:MM` of a calendar that fires once a day, else its ranges as JSON. */
function calendarTime(calendar: {
  hour?: { start: number; end?: number }[];
  minute?: { start: number; end?: number }[];
}): string {
  const single = (ranges: { start: number; end?: number }[] | undefined) =>
    ranges?.length === 1 && (ranges[0]?.end ?? ranges[0]?.start) === ranges[0]?.start
      ? ranges[0]?.start
      : undefined;
  const hour = single(calendar.hour);
  const minute = single(calendar.minute);
  if (hour === undefined || minute === undefined)
    return JSON.stringify({ hour: calendar.hour, minute: calendar.minute });
  return `${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
}

/** A schedule call; a Temporal that answers with an error is named with what was being done. */
async function scheduleCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw new CliError(`${what} failed: ${describeError(error)}`);
  }
}
