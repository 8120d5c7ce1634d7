import { PAYMENT_PROVIDERS, type PaymentProvider, reconciledProvider } from '../domain/order';
import { PAID_TRADE_STATUSES, type PaidTradeStatus } from '../domain/trade';
import { billDayBounds, REFUND_ROW_STATUS, type StatementSummary } from '../provider/statement-format';
import type { Sql } from './client';
import type { BreakKind, BreakStatus } from './reconciliation-schema';
import type { StatementRecord } from './statements';

/**
 * The daily reconciliation's SQL: one day's staged statement rows matched against orders and refunds
 * set-based (hash joins over the whole day, never a lookup per row), breaks written under their unique
 * key so a re-run of the same day adds none, and the run's summary. Nothing here changes an order: a
 * break an order's workflow can settle is handed to that workflow (activities/reconciliation.ts).
 */

const PAID_STATUSES = `('PAID','PARTIALLY_REFUNDED','REFUNDED')`;
/** A statement row is a payment only when its status is one the provider gives a paid trade. */
const PAID_ROW_STATUSES = `(${PAID_TRADE_STATUSES.map((status) => `'${status}'`).join(',')})`;

/** The day as ISO strings: drizzle's postgres.js client takes and gives timestamps as text. */
function dayBounds(billDate: string): { start: string; end: string } {
  const { start, end } = billDayBounds(billDate);
  return { start: start.toISOString(), end: end.toISOString() };
}

export interface MatchInput {
  provider: string;
  billDate: string;
  statement: StatementRecord;
  /** The statement of the day before, if it was reconciled: rows carried across midnight. */
  previousStatementId: number | null;
  /** A trade this close to midnight may be on the other day's statement. */
  midnightEdgeMs: number;
  /** null: a dry run (count, write nothing). */
  runId: number | null;
}

export type BreakCounts = Partial<Record<BreakKind, Partial<Record<BreakStatus, number>>>>;

export interface ControlTotals {
  declared: StatementSummary | null;
  computed: StatementSummary;
}

/** What the staged rows add up to, beside what the statement says they add up to. */
export async function controlTotals(sql: Sql, statement: StatementRecord): Promise<ControlTotals> {
  const [sums] = await sql<Record<string, string>[]>`
    select count(*) as rows,
           count(*) filter (where type = 'pay') as pay_count,
           coalesce(sum(amount) filter (where type = 'pay'), 0) as pay_amount,
           count(*) filter (where type = 'refund') as refund_count,
           coalesce(sum(amount) filter (where type = 'refund'), 0) as refund_amount,
           coalesce(sum(fee), 0) as fee
    from reconciliation_statement_rows where statement_id = ${statement.id}`;
  const n = (key: string) => Number(sums?.[key] ?? 0);
  return {
    declared: statement.declaredSummary,
    computed: {
      rows: n('rows'),
      payCount: n('pay_count'),
      payAmount: n('pay_amount'),
      refundCount: n('refund_count'),
      refundAmount: n('refund_amount'),
      fee: n('fee'),
    },
  };
}

/** One CONTROL_TOTALS break per total that does not add up (and one for lines that could not be read). */
export function controlTotalBreaks(
  totals: ControlTotals,
  rejectedCount: number,
): { ref: string; ours: unknown; theirs: unknown }[] {
  const breaks: { ref: string; ours: unknown; theirs: unknown }[] = [];
  if (rejectedCount > 0)
    breaks.push({ ref: 'unreadable_lines', ours: { rejected: rejectedCount }, theirs: null });
  if (!totals.declared) {
    breaks.push({ ref: 'summary_missing', ours: totals.computed, theirs: null });
    return breaks;
  }
  for (const key of Object.keys(totals.computed) as (keyof StatementSummary)[]) {
    const computed = key === 'rows' ? totals.computed.rows + rejectedCount : totals.computed[key];
    if (computed !== totals.declared[key]) {
      breaks.push({ ref: key, ours: { [key]: computed }, theirs: { [key]: totals.declared[key] } });
    }
  }
  return breaks;
}

/** The payment provider whose orders a reconciliation (named `provider`) matches: only its own. */
function ordersProviderOf(name: string): PaymentProvider {
  const provider = reconciledProvider(name);
  if (!provider) {
    throw new RangeError(
      `reconciliation ${JSON.stringify(name)} names no payment provider (${PAYMENT_PROVIDERS.join(', ')}, optionally -<label>)`,
    );
  }
  return provider;
}

/** The ids of one provider's orders: a provider's statement is matched against its own orders only. */
function providerOrders(sql: Sql, provider: string) {
  return sql`select id from orders where provider = ${provider}`;
}

/**
 * Each trade the statement's pay rows name, once: its first line, and `copies`, how often the statement
 * prints it. `rank` 1 is the order's payment: the trade that paid our order, else the trade payrecon
 * opened, else the first paid row; every other trade of the order (rank > 1) is money the buyer paid
 * again, with our order's side beside it.
 */
function payTrades(sql: Sql, statementId: number, provider: string) {
  return sql`
    select p.order_id, p.trade_no, p.amount, p.currency, p.status, p.occurred_at, p.copies,
           o.status as our_status, o.amount as our_amount, o.currency as our_currency,
           o.trade_no as our_trade_no,
           row_number() over (
             partition by p.order_id
             order by p.trade_no = o.trade_no desc nulls last, p.trade_no = o.provider_trade_no desc nulls last,
                      p.status in ${sql.unsafe(PAID_ROW_STATUSES)} desc, p.line_no) as rank
    from (
      select distinct on (order_id, trade_no) order_id, trade_no, amount, currency, status, occurred_at, line_no,
             count(*) over (partition by order_id, trade_no) as copies
      from reconciliation_statement_rows
      where statement_id = ${statementId} and type = 'pay'
      order by order_id, trade_no, line_no
    ) p left join orders o on o.id = p.order_id and o.provider = ${provider}`;
}

/**
 * Every break of the day as (kind, ref, order_id, trade_no, ours, theirs, status): the statement's rows
 * against orders and refunds. An order's payment is matched once (`payTrades` rank 1): a line the
 * statement repeats is a DUPLICATE, and each other trade for the order an EXTRA_PAYMENT of its own. A
 * pay row whose status is not a paid one is no payment: never MISSING_LOCALLY, a STATUS_MISMATCH. Our
 * payment or refund on the wrong side of midnight is EXPECTED; one the statement of the day before
 * carried is no break.
 */
function candidates(sql: Sql, input: MatchInput, control: { ref: string; ours: unknown; theirs: unknown }[]) {
  const { start, end } = dayBounds(input.billDate);
  const edge = `${Math.round(input.midnightEdgeMs)} milliseconds`;
  const previous = input.previousStatementId ?? -1;
  const payer = ordersProviderOf(input.provider);
  return sql`
    with pay_trades as (${payTrades(sql, input.statement.id, payer)}
    ), theirs as (
      select * from pay_trades where rank = 1
    ), their_refunds as (
      select distinct on (out_request_no) out_request_no, order_id, trade_no, amount, status, occurred_at,
             count(*) over (partition by out_request_no) as copies
      from reconciliation_statement_rows
      where statement_id = ${input.statement.id} and type = 'refund'
      order by out_request_no, line_no
    ), ours as (
      select id, amount, currency, status, trade_no, paid_at from orders
      where provider = ${payer}
        and paid_at >= ${start} and paid_at < ${end} and status in ${sql.unsafe(PAID_STATUSES)}
    ), our_refunds as (
      select id, order_id, out_request_no, amount, settled_at from refunds
      where status = 'SUCCEEDED' and settled_at >= ${start} and settled_at < ${end}
        and order_id in (select id from orders where provider = ${payer})
    )
    select 'DUPLICATE' as kind, t.order_id as ref, t.order_id, t.trade_no, null::jsonb as ours,
           jsonb_build_object('tradeNo', t.trade_no, 'amount', t.amount, 'copies', t.copies) as theirs,
           'OPEN' as status
    from theirs t where t.copies > 1
    union all
    -- Another trade for an order the statement already has a payment of: the buyer paid twice, and
    -- that money goes back. One break per trade, keyed by it.
    select 'EXTRA_PAYMENT', t.order_id || ':' || t.trade_no, t.order_id, t.trade_no,
           case when t.our_status is null then null
                else jsonb_build_object('status', t.our_status, 'amount', t.our_amount,
                                        'tradeNo', t.our_trade_no) end,
           jsonb_build_object('tradeNo', t.trade_no, 'amount', t.amount, 'currency', t.currency,
                              'status', t.status, 'at', t.occurred_at, 'copies', t.copies),
           'OPEN'
    from pay_trades t where t.rank > 1
    union all
    select 'DUPLICATE', t.out_request_no, t.order_id, t.trade_no, null,
           jsonb_build_object('outRequestNo', t.out_request_no, 'amount', t.amount, 'copies', t.copies), 'OPEN'
    from their_refunds t where t.copies > 1
    union all
    select 'MISSING_LOCALLY', t.order_id, t.order_id, t.trade_no,
           case when o.id is null then null
                else jsonb_build_object('status', o.status, 'amount', o.amount, 'tradeNo', o.trade_no) end,
           jsonb_build_object('tradeNo', t.trade_no, 'amount', t.amount, 'currency', t.currency,
                              'status', t.status, 'at', t.occurred_at),
           'OPEN'
    from theirs t left join orders o on o.id = t.order_id and o.provider = ${payer}
    where (o.id is null or o.status not in ${sql.unsafe(PAID_STATUSES)})
      and t.status in ${sql.unsafe(PAID_ROW_STATUSES)}
    union all
    select 'AMOUNT_MISMATCH', t.order_id, t.order_id, t.trade_no,
           jsonb_build_object('amount', o.amount, 'currency', o.currency),
           jsonb_build_object('amount', t.amount, 'currency', t.currency), 'OPEN'
    from theirs t join orders o on o.id = t.order_id and o.provider = ${payer}
    where o.status in ${sql.unsafe(PAID_STATUSES)} and (t.amount <> o.amount or t.currency <> o.currency)
    union all
    select 'STATUS_MISMATCH', t.order_id, t.order_id, t.trade_no,
           case when o.id is null then null else jsonb_build_object('status', o.status, 'tradeNo', o.trade_no) end,
           jsonb_build_object('status', t.status, 'tradeNo', t.trade_no), 'OPEN'
    from theirs t left join orders o on o.id = t.order_id and o.provider = ${payer}
    where t.status not in ${sql.unsafe(PAID_ROW_STATUSES)}
       or (o.status in ${sql.unsafe(PAID_STATUSES)} and t.trade_no is distinct from o.trade_no)
    union all
    select 'MISSING_AT_PROVIDER', o.id, o.id, o.trade_no,
           jsonb_build_object('status', o.status, 'amount', o.amount, 'tradeNo', o.trade_no, 'paidAt', o.paid_at),
           null,
           case when o.paid_at >= ${end}::timestamptz - ${edge}::interval then 'EXPECTED' else 'OPEN' end
    from ours o
    where not exists (select 1 from theirs t where t.order_id = o.id)
      and not (o.paid_at < ${start}::timestamptz + ${edge}::interval and exists (
        select 1 from reconciliation_statement_rows p
        where p.statement_id = ${previous} and p.type = 'pay' and p.order_id = o.id))
    union all
    select 'REFUND_MISMATCH', t.out_request_no, t.order_id, t.trade_no,
           case when r.id is null then null
                else jsonb_build_object('refundId', r.id, 'status', r.status, 'amount', r.amount) end,
           jsonb_build_object('amount', t.amount, 'status', t.status, 'at', t.occurred_at), 'OPEN'
    from their_refunds t left join refunds r on r.out_request_no = t.out_request_no
      and r.order_id in (select id from orders where provider = ${payer})
    where r.id is null or r.status <> 'SUCCEEDED' or r.amount <> t.amount or t.status <> ${REFUND_ROW_STATUS}
    union all
    -- Our settled_at is when we learned of the refund, which can lag the provider's: a refund the
    -- statement of the day before listed is no break, whenever we learned of it.
    select 'REFUND_MISMATCH', r.out_request_no, r.order_id, null,
           jsonb_build_object('refundId', r.id, 'status', 'SUCCEEDED', 'amount', r.amount, 'settledAt', r.settled_at),
           null,
           case when r.settled_at >= ${end}::timestamptz - ${edge}::interval then 'EXPECTED' else 'OPEN' end
    from our_refunds r
    where not exists (select 1 from their_refunds t where t.out_request_no = r.out_request_no)
      and not exists (
        select 1 from reconciliation_statement_rows p
        where p.statement_id = ${previous} and p.type = 'refund' and p.order_id = r.order_id
          and p.out_request_no = r.out_request_no)
    union all
    select 'CONTROL_TOTALS', c.ref, null, null, c.ours, c.theirs, 'OPEN'
    from jsonb_to_recordset(${JSON.stringify(control)}::jsonb) as c(ref text, ours jsonb, theirs jsonb)
  `;
}

function countsFrom(rows: readonly { kind: BreakKind; status: BreakStatus; n: string }[]): BreakCounts {
  const counts: BreakCounts = {};
  for (const row of rows) {
    const byStatus = counts[row.kind] ?? {};
    byStatus[row.status] = Number(row.n);
    counts[row.kind] = byStatus;
  }
  return counts;
}

/**
 * Matches the day. A real run upserts the breaks (a break seen again keeps its status and gets this
 * run's id); when the statement passes its own control totals (`control` empty) it also settles the day
 * before's EXPECTED breaks that this statement carried (RESOLVED) or did not (OPEN), and resolves the
 * day's open breaks this run no longer finds. A statement that fails them is reported, never acted on:
 * its absence of a row proves nothing. A dry run only counts.
 */
export async function matchStatement(
  sql: Sql,
  input: MatchInput,
  control: { ref: string; ours: unknown; theirs: unknown }[],
): Promise<BreakCounts> {
  if (input.runId === null) {
    const rows = await sql<{ kind: BreakKind; status: BreakStatus; n: string }[]>`
      select kind, status, count(*) as n from (${candidates(sql, input, control)}) c group by kind, status`;
    return countsFrom(rows);
  }
  const runId = input.runId;
  return sql.begin(async (tx) => {
    const rows = await tx<{ kind: BreakKind; status: BreakStatus; n: string }[]>`
      with found as (${candidates(tx as unknown as Sql, input, control)}),
      written as (
        insert into reconciliation_breaks
          (provider, bill_date, kind, ref, order_id, trade_no, ours, theirs, status, first_run_id, last_run_id)
        select ${input.provider}, ${input.billDate}, kind, ref, order_id, trade_no, ours, theirs, status,
               ${runId}, ${runId}
        from found
        on conflict (provider, bill_date, kind, ref) do update
          set last_run_id = excluded.last_run_id, ours = excluded.ours, theirs = excluded.theirs,
              updated_at = now()
        returning kind, status
      )
      select kind, status, count(*) as n from written group by kind, status`;
    if (control.length > 0) return countsFrom(rows);
    await tx`
      update reconciliation_breaks
      set status = 'RESOLVED', resolved_by = 'reconciliation', resolved_at = now(), updated_at = now(),
          resolution_note = ${`no longer found by reconciliation run ${runId}`}
      where provider = ${input.provider} and bill_date = ${input.billDate}
        and status in ('OPEN', 'EXPECTED') and last_run_id <> ${runId}`;
    await settleCarriedBreaks(tx as unknown as Sql, input);
    return countsFrom(rows);
  });
}

/** The day before's EXPECTED breaks: carried by this statement (RESOLVED), or not (now OPEN). */
async function settleCarriedBreaks(sql: Sql, input: MatchInput): Promise<void> {
  const dayBefore = await sql<{ bill_date: string }[]>`
    select distinct bill_date from reconciliation_breaks
    where provider = ${input.provider} and status = 'EXPECTED'
      and bill_date = to_char(${input.billDate}::date - 1, 'YYYY-MM-DD')`;
  if (dayBefore.length === 0) return;
  const previousDate = dayBefore[0]?.bill_date as string;
  await sql`
    update reconciliation_breaks b
    set status = 'RESOLVED', resolved_by = 'reconciliation', resolved_at = now(), updated_at = now(),
        resolution_note = ${`carried by the ${input.billDate} statement`}
    where b.provider = ${input.provider} and b.bill_date = ${previousDate} and b.status = 'EXPECTED'
      and exists (
        select 1 from reconciliation_statement_rows r
        where r.statement_id = ${input.statement.id}
          and ((b.kind = 'MISSING_AT_PROVIDER' and r.type = 'pay' and r.order_id = b.ref)
            or (b.kind = 'REFUND_MISMATCH' and r.type = 'refund' and r.order_id = b.order_id
                and r.out_request_no = b.ref)))`;
  await sql`
    update reconciliation_breaks
    set status = 'OPEN', updated_at = now(),
        resolution_note = ${`not carried by the ${input.billDate} statement either`}
    where provider = ${input.provider} and bill_date = ${previousDate} and status = 'EXPECTED'`;
}

/** Totals on both sides of the day, for the run's summary. */
export async function dayTotals(sql: Sql, input: Pick<MatchInput, 'provider' | 'billDate' | 'statement'>) {
  const { start, end } = dayBounds(input.billDate);
  const payer = ordersProviderOf(input.provider);
  const [row] = await sql<Record<string, string>[]>`
    select
      (select count(*) from orders where provider = ${payer} and paid_at >= ${start}
         and paid_at < ${end} and status in ${sql.unsafe(PAID_STATUSES)}) as our_pay_count,
      (select coalesce(sum(amount), 0) from orders where provider = ${payer} and paid_at >= ${start}
         and paid_at < ${end} and status in ${sql.unsafe(PAID_STATUSES)}) as our_pay_amount,
      (select count(*) from refunds where status = 'SUCCEEDED' and settled_at >= ${start}
         and settled_at < ${end} and order_id in (${providerOrders(sql, payer)})) as our_refund_count,
      (select coalesce(sum(amount), 0) from refunds where status = 'SUCCEEDED' and settled_at >= ${start}
         and settled_at < ${end} and order_id in (${providerOrders(sql, payer)})) as our_refund_amount,
      (select count(*) from (${payTrades(sql, input.statement.id, payer)}) t
       where t.rank = 1 and t.our_status in ${sql.unsafe(PAID_STATUSES)} and t.our_amount = t.amount
         and t.our_currency = t.currency and t.status in ${sql.unsafe(PAID_ROW_STATUSES)} and t.our_trade_no = t.trade_no) as matched_payments`;
  const n = (key: string) => Number(row?.[key] ?? 0);
  return {
    ours: {
      payCount: n('our_pay_count'),
      payAmount: n('our_pay_amount'),
      refundCount: n('our_refund_count'),
      refundAmount: n('our_refund_amount'),
    },
    matchedPayments: n('matched_payments'),
  };
}

// --- runs ----------------------------------------------------------------------------------------------

export async function startRun(
  sql: Sql,
  input: { provider: string; billDate: string; workflowId: string; workflowRunId: string },
): Promise<number> {
  const [row] = await sql<{ id: string }[]>`
    insert into reconciliation_runs (provider, bill_date, workflow_id, workflow_run_id)
    values (${input.provider}, ${input.billDate}, ${input.workflowId}, ${input.workflowRunId})
    on conflict (workflow_run_id) do update set workflow_id = excluded.workflow_id
    returning id`;
  return Number(row?.id);
}

export async function attachStatement(sql: Sql, runId: number, statementId: number): Promise<void> {
  await sql`update reconciliation_runs set statement_id = ${statementId} where id = ${runId}`;
}

export async function finishRun(sql: Sql, runId: number, summary: unknown): Promise<void> {
  await sql`
    update reconciliation_runs set status = 'COMPLETED', summary = ${JSON.stringify(summary)}::jsonb,
      finished_at = coalesce(finished_at, now())
    where id = ${runId}`;
}

/** The statement of the latest completed run of a day, if any. */
export async function latestStatementOf(
  sql: Sql,
  provider: string,
  billDate: string,
): Promise<number | null> {
  const [row] = await sql<{ statement_id: string }[]>`
    select statement_id from reconciliation_runs
    where provider = ${provider} and bill_date = ${billDate} and status = 'COMPLETED' and statement_id is not null
    order by id desc limit 1`;
  return row ? Number(row.statement_id) : null;
}

// --- healing -------------------------------------------------------------------------------------------

export interface HealableBreak {
  id: number;
  orderId: string;
  tradeNo: string;
  /** The row's status: a paid one (TRADE_SUCCESS, TRADE_FINISHED). */
  status: PaidTradeStatus;
  amount: number;
  currency: string;
  occurredAt: string;
}

/**
 * This run's MISSING_LOCALLY breaks of orders we have whose row the provider reports paid: the
 * statement's payment, for their workflows (which check it with the provider before it pays).
 */
export async function healableBreaks(sql: Sql, runId: number): Promise<HealableBreak[]> {
  const rows = await sql<
    {
      id: string;
      order_id: string;
      trade_no: string;
      theirs: { amount: number; currency: string; status: PaidTradeStatus; at: string };
    }[]
  >`
    select b.id, b.order_id, b.trade_no, b.theirs from reconciliation_breaks b
    -- Only an order of the reconciled provider (the name's part before a dash, reconciledProvider).
    join orders o on o.id = b.order_id and o.provider = split_part(b.provider, '-', 1)
    where b.last_run_id = ${runId} and b.kind = 'MISSING_LOCALLY' and b.status = 'OPEN'
      and b.heal_action is null and b.theirs->>'status' in ${sql.unsafe(PAID_ROW_STATUSES)}
    order by b.id`;
  return rows.map((row) => ({
    id: Number(row.id),
    orderId: row.order_id,
    tradeNo: row.trade_no,
    status: row.theirs.status,
    amount: Number(row.theirs.amount),
    currency: row.theirs.currency,
    occurredAt: new Date(row.theirs.at).toISOString(),
  }));
}

export async function noteHealAction(sql: Sql, breakId: number, action: string): Promise<void> {
  await sql`
    update reconciliation_breaks set heal_action = ${action}, updated_at = now()
    where id = ${breakId} and heal_action is null`;
}

/**
 * Breaks whose order its workflow has since paid with the statement's trade: AUTO_HEALED. Returns how
 * many were healed now and how many signalled orders still wait.
 */
export async function confirmHealed(sql: Sql, runId: number): Promise<{ healed: number; waiting: number }> {
  // Counted before the update: an order its workflow pays between the two statements is then seen
  // paid by the update, or counted as waiting (and healed on the next check), never neither.
  const [waiting] = await sql<{ n: string }[]>`
    select count(*) as n from reconciliation_breaks b join orders o on o.id = b.order_id
    where b.last_run_id = ${runId} and b.kind = 'MISSING_LOCALLY' and b.status = 'OPEN'
      and b.heal_action = 'signalled' and o.status = 'UNPAID'`;
  const healed = await sql`
    update reconciliation_breaks b
    set status = 'AUTO_HEALED', healed_at = now(), updated_at = now()
    from orders o
    where b.last_run_id = ${runId} and b.kind = 'MISSING_LOCALLY' and b.status = 'OPEN'
      and b.heal_action = 'signalled' and o.id = b.order_id
      and o.status in ${sql.unsafe(PAID_STATUSES)} and o.trade_no = b.trade_no`;
  return { healed: healed.count, waiting: Number(waiting?.n ?? 0) };
}

/** This run's breaks by kind and status, as they stand now (after healing). */
export async function runBreakCounts(sql: Sql, runId: number): Promise<BreakCounts> {
  const rows = await sql<{ kind: BreakKind; status: BreakStatus; n: string }[]>`
    select kind, status, count(*) as n from reconciliation_breaks where last_run_id = ${runId}
    group by kind, status`;
  return countsFrom(rows);
}

// --- operators -----------------------------------------------------------------------------------------

export interface RunRow {
  id: number;
  provider: string;
  billDate: string;
  workflowId: string;
  status: 'RUNNING' | 'COMPLETED';
  summary: unknown;
  startedAt: string;
  finishedAt: string | null;
}

/** The day's latest run (completed or not). */
export async function latestRun(sql: Sql, provider: string, billDate: string): Promise<RunRow | undefined> {
  const [row] = await sql<
    {
      id: string;
      provider: string;
      bill_date: string;
      workflow_id: string;
      status: 'RUNNING' | 'COMPLETED';
      summary: unknown;
      started_at: string;
      finished_at: string | null;
    }[]
  >`
    select id, provider, bill_date, workflow_id, status, summary, started_at, finished_at
    from reconciliation_runs where provider = ${provider} and bill_date = ${billDate}
    order by id desc limit 1`;
  if (!row) return undefined;
  return {
    id: Number(row.id),
    provider: row.provider,
    billDate: row.bill_date,
    workflowId: row.workflow_id,
    status: row.status,
    summary: row.summary,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export interface BreakRow {
  id: number;
  billDate: string;
  kind: BreakKind;
  ref: string;
  orderId: string | null;
  tradeNo: string | null;
  ours: unknown;
  theirs: unknown;
  status: BreakStatus;
  healAction: string | null;
  resolvedBy: string | null;
  resolutionNote: string | null;
  firstRunId: number;
  lastRunId: number;
}

function toBreak(row: Record<string, unknown>): BreakRow {
  return {
    id: Number(row.id),
    billDate: row.bill_date as string,
    kind: row.kind as BreakKind,
    ref: row.ref as string,
    orderId: (row.order_id as string | null) ?? null,
    tradeNo: (row.trade_no as string | null) ?? null,
    ours: row.ours ?? null,
    theirs: row.theirs ?? null,
    status: row.status as BreakStatus,
    healAction: (row.heal_action as string | null) ?? null,
    resolvedBy: (row.resolved_by as string | null) ?? null,
    resolutionNote: (row.resolution_note as string | null) ?? null,
    firstRunId: Number(row.first_run_id),
    lastRunId: Number(row.last_run_id),
  };
}

/** Breaks, newest day first; `open`: those an operator still has to look at (OPEN and EXPECTED). */
export async function listBreaks(
  sql: Sql,
  filter: { provider: string; billDate?: string; open?: boolean; kind?: BreakKind; limit?: number },
): Promise<BreakRow[]> {
  const rows = await sql`
    select * from reconciliation_breaks
    where provider = ${filter.provider}
      ${filter.billDate ? sql`and bill_date = ${filter.billDate}` : sql``}
      ${filter.open ? sql`and status in ('OPEN', 'EXPECTED')` : sql``}
      ${filter.kind ? sql`and kind = ${filter.kind}` : sql``}
    order by bill_date desc, kind, ref
    limit ${filter.limit ?? 1000}`;
  return rows.map(toBreak);
}

export async function findBreak(sql: Sql, id: number): Promise<BreakRow | undefined> {
  const [row] = await sql`select * from reconciliation_breaks where id = ${id}`;
  return row ? toBreak(row) : undefined;
}

/** An operator's resolution of an open break: who and why. Null when it is not open (or not there). */
export async function resolveBreak(
  sql: Sql,
  input: { id: number; by: string; note: string },
): Promise<BreakRow | null> {
  const [row] = await sql`
    update reconciliation_breaks
    set status = 'RESOLVED', resolved_by = ${input.by}, resolution_note = ${input.note},
        resolved_at = now(), updated_at = now()
    where id = ${input.id} and status in ('OPEN', 'EXPECTED')
    returning *`;
  return row ? toBreak(row) : null;
}
