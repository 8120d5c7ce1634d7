import { readdirSync, readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { createDatabase, type Sql } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import type { BreakCounts } from '../../src/db/reconciliation';
import type { Config } from '../../src/platform/config';
import { connectTemporal } from '../../src/platform/temporal';
import { billDayBounds, shiftBillDate } from '../../src/provider/statement-format';
import { startReconciliation } from '../../src/reconciliation/start';
import { type ReconciliationSummary, reconciliationPhaseQuery } from '../../workflows/reconciliation';
import { seedPaidTrades } from '../simulator/bulk';
import { migrateSimulatorSchema } from '../simulator/db/migrate';
import type { BenchContext } from './lib/context';
import { type DedicatedDevServer, startDedicatedDevServer } from './lib/dev-server';
import { BENCH_PREFIX, configEnv, sleep } from './lib/env';
import { BenchProcess, readCpuSeconds, readMemory } from './lib/procs';
import { startSimulatorProcess } from './lib/simulator';
import type { NaiveRequest, NaiveResult } from './recon-naive';

const { EventType } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * The daily reconciliation at scale (issue 13): one Asia/Shanghai day of N paid trades at the simulator
 * and N paid orders at payrecon, reconciled by the real worker process (reconciliationWorkflow on a
 * dedicated dev server, task queue payrecon-bench-recon) at each size, and the same 1M statement read by
 * a naive application loop (one SELECT per row: ./recon-naive.ts) beside it. The seed lives in a
 * database of its own (payrecon_bench_recon: the main bench database is emptied on every run) and is
 * reused while its counts are right, so a re-run spends its time reconciling, not seeding.
 */

export interface ReconOptions {
  /** Rows per day, one bill date each, smallest first (the RSS ratio is largest ÷ smallest). */
  sizes: number[];
  /** The naive loop reads the first this many rows of the largest day's statement. */
  naiveRows: number;
  naiveConcurrency: number;
  reseed: boolean;
  /** Leave out the bench's ANALYZE after staging (see installAnalyzeAfterStaging): the code as shipped. */
  asShipped: boolean;
  /** A run not done by then is terminated and reported as such. */
  timeoutMs: number;
  dedicated: DedicatedDevServer | null;
  serverPragmas: string[];
}

/** RSS samples of one process: [seconds since the run started, MiB]. */
export type RssSeries = [number, number][];

export interface PhaseTiming {
  activity: string;
  /** Scheduled → completed, from the workflow history (ms); of that, scheduled → started (queue). */
  ms: number;
  queuedMs: number;
  attempts: number;
}

export interface ReconRun {
  design: 'payrecon';
  rows: number;
  billDate: string;
  /** Seed: reused (counts right) or inserted now, and how long it took (s). */
  seed: { reused: boolean; seconds: number };
  /** startReconciliation → result (s), and statement rows ÷ that. */
  wallS: number;
  rowsPerS: number;
  statementRows: number;
  statementMb: number;
  phases: PhaseTiming[];
  /** Wall time outside the four activities: the workflow's local activities and its tasks (ms). */
  otherMs: number;
  worker: ProcessMemory;
  simulator: ProcessMemory;
  workerCpuS: number | null;
  /** Every postgres process on the machine (shared with other work), CPU seconds over the run. */
  postgresCpuS: number | null;
  summary: Pick<ReconciliationSummary, 'breaks' | 'totalBreaks' | 'matchedPayments' | 'status'> & {
    theirs: ReconciliationSummary['theirs'];
  };
  expectedBreaks: BreakCounts;
  breaksOk: boolean;
  /** Set when the run did not finish within the timeout: the phase it was in. */
  timedOut?: string;
}

export interface ProcessMemory {
  /** RSS when the run started (the process up and idle), the 200 ms samples' peak, VmHWM at the end. */
  startMb: number | null;
  peakMb: number | null;
  hwmMb: number | null;
  series: RssSeries;
}

export interface NaiveRun {
  design: 'naive';
  rows: number;
  billDate: string;
  concurrency: number;
  elapsedS: number;
  rowsPerS: number;
  firstRowS: number;
  amountMismatches: number;
  expectedAmountMismatches: number;
  missingLocally: number;
  statusMismatches: number;
  process: ProcessMemory;
  simulator: ProcessMemory;
  postgresCpuS: number | null;
  cpuS: number | null;
}

export interface ReconResult {
  database: string;
  /** What the planner knew of the freshly staged rows when the match ran. */
  statistics: string;
  temporalServer: string;
  midnightEdgeMs: number;
  runs: ReconRun[];
  naive: NaiveRun | null;
  /** Measured in this run: peak worker RSS at the largest size ÷ at the smallest; payrecon rows/s at the
   * largest size ÷ the naive loop's rows/s on the first rows of the same statement. */
  ratio: { workerPeakRss: number | null; hwm: number | null; rowsPerS: number | null };
  errors: string[];
  chart?: string;
}

const FIRST_DAY = '2025-02-04';
/** Days a week apart: no day is the day before another (no rows carried across midnight between them). */
const dayFor = (index: number) => shiftBillDate(FIRST_DAY, 7 * index);
/** The day is in the prefix too: a size that moves to another day (other --recon-rows) seeds anew. */
const prefixFor = (rows: number, billDate: string) => `rb${billDate.replaceAll('-', '')}n${rows}-`;
/** Every n-th order differs from its trade by 1 minor unit; every n-th from the middle is not on the statement. */
const DEFECT_EVERY = 1_000;
const OMIT_AT = 500;
const MIB = 1024 * 1024;

export function reconDatabaseUrl(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  if (env.BENCH_RECON_DATABASE_URL) return env.BENCH_RECON_DATABASE_URL;
  const url = new URL(config.DATABASE_URL);
  url.pathname = '/payrecon_bench_recon';
  return url.toString();
}

interface Day {
  rows: number;
  billDate: string;
  prefix: string;
}

/** The orders the simulator leaves off the day's statement (its omitPayments fault). */
function omitted(day: Day): string[] {
  const ids: string[] = [];
  for (let n = OMIT_AT; n <= day.rows; n += DEFECT_EVERY) ids.push(`${day.prefix}${n}`);
  return ids;
}

/**
 * The breaks the seed put there: an AMOUNT_MISMATCH per every 1000th order; a MISSING_AT_PROVIDER per
 * omitted row, EXPECTED when paid within the midnight edge (seedPaidTrades spaces payments evenly).
 */
function expectedBreaks(day: Day, edgeMs: number): BreakCounts {
  const { start, end } = billDayBounds(day.billDate);
  const stepMs = Math.floor(86_400_000 / day.rows);
  let open = 0;
  let expected = 0;
  for (const id of omitted(day)) {
    const n = Number(id.slice(day.prefix.length));
    const paidAt = start.getTime() + (n - 1) * stepMs;
    if (paidAt >= end.getTime() - edgeMs) expected++;
    else open++;
  }
  const counts: BreakCounts = { AMOUNT_MISMATCH: { OPEN: Math.floor(day.rows / DEFECT_EVERY) } };
  if (open + expected > 0)
    counts.MISSING_AT_PROVIDER = {
      ...(open ? { OPEN: open } : {}),
      ...(expected ? { EXPECTED: expected } : {}),
    };
  return counts;
}

/**
 * The day's fixture, reused when its counts are right: the simulator's trades (seedPaidTrades), then
 * payrecon's orders from them in one INSERT ... SELECT. This is bench seeding of a fixture day, not
 * how orders are paid (that is the order workflow's conditional update): each order is what that
 * update leaves (PAID, the trade's number, amount and paid_at) except every 1000th, 1 unit off.
 */
async function ensureSeed(
  sql: Sql,
  day: Day,
  reseed: boolean,
): Promise<{ reused: boolean; seconds: number }> {
  const t0 = performance.now();
  const { start, end } = billDayBounds(day.billDate);
  const [from, until] = [start.toISOString(), end.toISOString()];
  const skip = day.prefix.length + 1;
  const [counts] = await sql<{ trades: string; orders: string; mine: string; defects: string }[]>`
    select
      (select count(*) from provider.trades where paid_at >= ${from} and paid_at < ${until}) as trades,
      (select count(*) from orders where paid_at >= ${from} and paid_at < ${until}) as orders,
      (select count(*) from orders where paid_at >= ${from} and paid_at < ${until} and status = 'PAID'
         and id like ${`${day.prefix}%`}) as mine,
      (select count(*) from orders where paid_at >= ${from} and paid_at < ${until}
         and id like ${`${day.prefix}%`} and amount <> 1000 + substr(id, ${skip})::int % 9000) as defects`;
  const right =
    Number(counts?.trades) === day.rows &&
    Number(counts?.orders) === day.rows &&
    Number(counts?.mine) === day.rows &&
    Number(counts?.defects) === Math.floor(day.rows / DEFECT_EVERY);
  if (right && !reseed) return { reused: true, seconds: (performance.now() - t0) / 1000 };
  await sql`delete from provider.trades where paid_at >= ${from} and paid_at < ${until}`;
  await sql`delete from orders where paid_at >= ${from} and paid_at < ${until}`;
  await seedPaidTrades(sql, { count: day.rows, billDate: day.billDate, prefix: day.prefix });
  await sql`
    insert into orders
      (id, amount, currency, status, pay_deadline, paid_at, trade_no, provider_trade_no, settled_by,
       created_at, updated_at)
    select t.order_id,
           t.amount + case when substr(t.order_id, ${skip})::int % ${DEFECT_EVERY} = 0 then 1 else 0 end,
           t.currency, 'PAID', t.paid_at + interval '30 minutes', t.paid_at, t.trade_no, t.trade_no, 'mq',
           t.paid_at - interval '1 second', t.paid_at
      from provider.trades t
     where t.paid_at >= ${from} and t.paid_at < ${until} and t.order_id like ${`${day.prefix}%`}`;
  // As a live database would have them: planner statistics of the tables the match reads.
  await sql`analyze orders`;
  await sql`analyze provider.trades`;
  return { reused: false, seconds: (performance.now() - t0) / 1000 };
}

/**
 * The planner's statistics of reconciliation_statement_rows when the match runs. As shipped, the match
 * starts right after the COPY, before autovacuum has analyzed the new statement: the planner then
 * estimates the day's rows at 1 (a statement_id not in the statistics, or none at all) and anti-joins
 * the orders against them in a nested loop, N × N comparisons (20,000 rows: 23 s instead of 0.2 s;
 * a million would take hours). Unless --recon-as-shipped, a trigger in this bench database (never in
 * payrecon's schema) runs ANALYZE when a statement is marked parsed: what stageStatementRows should do.
 */
async function installAnalyzeAfterStaging(sql: Sql, enabled: boolean): Promise<string> {
  await sql`drop trigger if exists bench_analyze_staged on reconciliation_statements`;
  if (!enabled) return 'as shipped: no ANALYZE between staging and matching';
  await sql.unsafe(`
    create or replace function bench_analyze_staged() returns trigger language plpgsql as $$
    begin
      analyze reconciliation_statement_rows;
      return null;
    end $$`);
  await sql.unsafe(`
    create trigger bench_analyze_staged after update of parsed_at on reconciliation_statements
      for each row when (old.parsed_at is null and new.parsed_at is not null)
      execute function bench_analyze_staged()`);
  return 'ANALYZE reconciliation_statement_rows when staging ends (a bench trigger: the proposed fix)';
}

/** CPU seconds of every postgres process (backends, checkpointer, WAL writer): the database's share. */
function postgresCpuSeconds(): number | null {
  let total = 0;
  let found = false;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
      const cpu = readCpuSeconds(Number(entry));
      if (cpu !== null) {
        total += cpu;
        found = true;
      }
    } catch {
      // gone, or not ours to read
    }
  }
  return found ? total : null;
}

/** 200 ms samples of VmRSS of some processes, from /proc/<pid>/status. */
function rssSampler(pids: Record<string, number>) {
  const t0 = performance.now();
  const series: Record<string, RssSeries> = Object.fromEntries(Object.keys(pids).map((k) => [k, []]));
  const sample = () => {
    const t = Math.round((performance.now() - t0) / 100) / 10;
    for (const [name, pid] of Object.entries(pids)) {
      const memory = readMemory(pid);
      if (memory) series[name]?.push([t, Math.round(memory.rssMb * 10) / 10]);
    }
  };
  sample();
  const timer = setInterval(sample, 200);
  return {
    stop(): Record<string, ProcessMemory> {
      clearInterval(timer);
      sample();
      return Object.fromEntries(
        Object.entries(series).map(([name, s]) => {
          const pid = pids[name] ?? -1;
          const hwm = readMemory(pid)?.hwmMb ?? null;
          return [
            name,
            {
              startMb: s[0]?.[1] ?? null,
              peakMb: s.length ? Math.max(...s.map(([, mb]) => mb)) : null,
              hwmMb: hwm === null ? null : Math.round(hwm * 10) / 10,
              series: s,
            },
          ];
        }),
      );
    },
  };
}

const millis = (event: HistoryEvent) =>
  Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;

/** Each activity of the run: scheduled → completed, scheduled → started, attempts. */
function phasesOf(events: HistoryEvent[]): PhaseTiming[] {
  const phases: PhaseTiming[] = [];
  for (const scheduled of events) {
    if (scheduled.eventType !== EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) continue;
    const id = Number(scheduled.eventId);
    const started = events.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED &&
        Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === id,
    );
    const completed = events.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED &&
        Number(e.activityTaskCompletedEventAttributes?.scheduledEventId) === id,
    );
    if (!completed) continue;
    phases.push({
      activity: scheduled.activityTaskScheduledEventAttributes?.activityType?.name ?? '?',
      ms: Math.round(millis(completed) - millis(scheduled)),
      queuedMs: started ? Math.round(millis(started) - millis(scheduled)) : 0,
      attempts: started?.activityTaskStartedEventAttributes?.attempt ?? 1,
    });
  }
  return phases;
}

const sameCounts = (a: BreakCounts, b: BreakCounts) => {
  const norm = (c: BreakCounts) =>
    JSON.stringify(
      Object.entries(c)
        .map(([kind, byStatus]) => [kind, Object.entries(byStatus ?? {}).sort()] as const)
        .sort(),
    );
  return norm(a) === norm(b);
};

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a !== null && a !== undefined && b !== null && b !== undefined && b > 0 ? round(a / b, 2) : null;

export async function runRecon(ctx: BenchContext, options: ReconOptions): Promise<ReconResult> {
  const databaseUrl = reconDatabaseUrl(ctx.config);
  const dbName = new URL(databaseUrl).pathname.slice(1);
  const errors: string[] = [];
  const days: Day[] = [...options.sizes]
    .sort((a, b) => a - b)
    .map((rows, i) => ({ rows, billDate: dayFor(i), prefix: prefixFor(rows, dayFor(i)) }));

  await migrateDatabase(databaseUrl);
  await migrateSimulatorSchema(databaseUrl);
  const database = createDatabase(databaseUrl, { max: 4 });
  const sql = database.sql;
  let server = options.dedicated;
  const own = server ? null : await startDedicatedDevServer(options.serverPragmas);
  server = server ?? own;
  if (!server) throw new Error('no dev server for the reconciliation phase');
  let client: Client | null = null;
  let simulator: Awaited<ReturnType<typeof startSimulatorProcess>> | null = null;
  try {
    if (options.reseed) {
      // This database is the phase's own: nothing else lives in it.
      await sql`truncate orders, refunds, provider.trades, provider.refunds cascade`;
    }
    const statistics = await installAnalyzeAfterStaging(sql, !options.asShipped);
    const seeds = new Map<string, { reused: boolean; seconds: number }>();
    for (const day of days) {
      const seed = await ensureSeed(sql, day, options.reseed);
      seeds.set(day.billDate, seed);
      ctx.log(
        `  ${day.billDate}: ${day.rows.toLocaleString('en-US')} trades and orders ${seed.reused ? 'reused' : 'seeded'} (${round(seed.seconds)} s)`,
      );
    }

    const base: Config = {
      ...ctx.config,
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_TASK_QUEUE: `${BENCH_PREFIX}-recon`,
      RECON_PROVIDER: 'simulator-bench',
    };
    simulator = await startSimulatorProcess(base, { name: 'recon-simulator' });
    const config: Config = { ...base, PROVIDER_URL: simulator.client.url };
    for (const day of days)
      await simulator.client.setBillFaults(day.billDate, { omitPayments: omitted(day) });
    client = await connectTemporal(config);

    const runs: ReconRun[] = [];
    for (const day of days) {
      // Every run stages and matches from scratch: earlier runs' statements, rows and breaks go.
      await sql`truncate reconciliation_statement_rows, reconciliation_statement_chunks,
        reconciliation_statements, reconciliation_breaks, reconciliation_runs`;
      const run = await runPayrecon(
        config,
        client,
        sql,
        simulator.process,
        day,
        seeds.get(day.billDate),
        options,
      );
      runs.push(run);
      if (run.timedOut) {
        errors.push(
          `${day.billDate} (${day.rows} rows): not done after ${options.timeoutMs / 1000} s, in ${run.timedOut}`,
        );
      } else if (!run.breaksOk) {
        errors.push(
          `${day.billDate} (${day.rows} rows): breaks ${JSON.stringify(run.summary.breaks)}, the seed put ${JSON.stringify(run.expectedBreaks)}`,
        );
      }
      ctx.log(
        `  payrecon ${day.rows.toLocaleString('en-US')} rows: ${run.wallS} s (${run.rowsPerS.toLocaleString('en-US')} rows/s), ${run.phases.map((p) => `${p.activity} ${round(p.ms / 1000)} s`).join(', ')}; worker peak ${run.worker.peakMb} MiB; breaks ${run.breaksOk ? 'as seeded' : 'WRONG'}`,
      );
    }

    const largest = days[days.length - 1];
    let naive: NaiveRun | null = null;
    if (largest && options.naiveRows > 0) {
      naive = await runNaive(config, simulator.process, largest, options);
      if (naive.amountMismatches !== naive.expectedAmountMismatches || naive.missingLocally > 0) {
        errors.push(
          `naive: ${naive.amountMismatches} amount mismatches (expected ${naive.expectedAmountMismatches}), ${naive.missingLocally} missing locally (expected 0)`,
        );
      }
      ctx.log(
        `  naive loop, first ${naive.rows.toLocaleString('en-US')} rows of ${largest.billDate}: ${naive.elapsedS} s (${naive.rowsPerS.toLocaleString('en-US')} rows/s), peak ${naive.process.peakMb} MiB`,
      );
    }
    const first = runs[0];
    const last = runs[runs.length - 1];
    return {
      database: dbName,
      statistics,
      temporalServer: `dedicated dev server (pid ${server.pid}${own ? ', this phase' : ''})`,
      midnightEdgeMs: config.RECON_MIDNIGHT_EDGE,
      runs,
      naive,
      ratio: {
        workerPeakRss: runs.length > 1 ? ratio(last?.worker.peakMb, first?.worker.peakMb) : null,
        hwm: runs.length > 1 ? ratio(last?.worker.hwmMb, first?.worker.hwmMb) : null,
        rowsPerS: ratio(last?.rowsPerS, naive?.rowsPerS),
      },
      errors,
    };
  } finally {
    await simulator?.process.stop();
    await client?.connection.close();
    await database.close();
    await own?.stop();
  }
}

async function runPayrecon(
  config: Config,
  client: Client,
  sql: Sql,
  simulator: BenchProcess,
  day: Day,
  seed: { reused: boolean; seconds: number } | undefined,
  options: ReconOptions,
): Promise<ReconRun> {
  // A fresh worker per size: each peak is that day's alone, not what an earlier day left in the heap.
  const worker = new BenchProcess(`recon-worker-${day.rows}`, 'workers/worker.ts', {
    ...configEnv(config),
    RECON_PROVIDER: config.RECON_PROVIDER,
    RECON_MIDNIGHT_EDGE: String(config.RECON_MIDNIGHT_EDGE),
    RECON_HEAL_WAIT: String(config.RECON_HEAL_WAIT),
  });
  try {
    await worker.waitFor(/"msg":"worker started"/, 120_000);
    await sleep(1_000);
    for (const p of [worker, simulator]) p.resetPeak();
    const sampler = rssSampler({ worker: worker.pid, simulator: simulator.pid });
    const cpu0 = { worker: worker.cpuSeconds(), postgres: postgresCpuSeconds() };
    const t0 = performance.now();
    const handle = await startReconciliation(client, config, day.billDate);
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      handle.result() as Promise<ReconciliationSummary>,
      new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), options.timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    const wallMs = performance.now() - t0;
    let timedOut: string | undefined;
    if (!outcome) {
      timedOut = await handle.query(reconciliationPhaseQuery).catch(() => 'unknown phase');
      await handle.terminate('bench: reconciliation run timed out');
      // The statement the worker's connection is running goes on without it: cancel it (this
      // database is the bench's own).
      await sql`select pg_cancel_backend(pid) from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid() and state = 'active'`;
    }
    const summary: ReconciliationSummary =
      outcome ??
      ({
        breaks: {},
        totalBreaks: 0,
        matchedPayments: 0,
        status: 'BREAKS',
        theirs: { rows: 0, payCount: 0, payAmount: 0, refundCount: 0, refundAmount: 0, fee: 0 },
        statement: { bytes: 0 },
      } as unknown as ReconciliationSummary);
    const memory = sampler.stop();
    const cpu1 = { worker: worker.cpuSeconds(), postgres: postgresCpuSeconds() };
    const history = await handle.fetchHistory();
    const phases = phasesOf(history.events ?? []);
    const expected = expectedBreaks(day, config.RECON_MIDNIGHT_EDGE);
    const statementRows = summary.theirs.rows;
    const empty: ProcessMemory = { startMb: null, peakMb: null, hwmMb: null, series: [] };
    return {
      design: 'payrecon',
      rows: day.rows,
      billDate: day.billDate,
      seed: seed ?? { reused: true, seconds: 0 },
      wallS: round(wallMs / 1000),
      rowsPerS: Math.round(statementRows / (wallMs / 1000)),
      statementRows,
      statementMb: round(summary.statement.bytes / MIB),
      phases,
      otherMs: Math.round(wallMs - phases.reduce((a, p) => a + p.ms, 0)),
      worker: memory.worker ?? empty,
      simulator: memory.simulator ?? empty,
      workerCpuS: cpu0.worker !== null && cpu1.worker !== null ? round(cpu1.worker - cpu0.worker) : null,
      postgresCpuS:
        cpu0.postgres !== null && cpu1.postgres !== null ? round(cpu1.postgres - cpu0.postgres) : null,
      summary: {
        breaks: summary.breaks,
        totalBreaks: summary.totalBreaks,
        matchedPayments: summary.matchedPayments,
        status: summary.status,
        theirs: summary.theirs,
      },
      expectedBreaks: expected,
      ...(timedOut ? { timedOut } : {}),
      breaksOk:
        !timedOut &&
        sameCounts(summary.breaks, expected) &&
        summary.matchedPayments === day.rows - Math.floor(day.rows / DEFECT_EVERY) - omitted(day).length,
    };
  } finally {
    await worker.stop();
  }
}

async function runNaive(config: Config, simulator: BenchProcess, day: Day, options: ReconOptions) {
  const request: NaiveRequest = {
    billDate: day.billDate,
    rows: Math.min(options.naiveRows, day.rows),
    concurrency: options.naiveConcurrency,
    providerUrl: config.PROVIDER_URL,
    databaseUrl: config.DATABASE_URL,
  };
  const child = new BenchProcess(
    'recon-naive',
    'tools/bench/recon-naive.ts',
    { ...configEnv(config), BENCH_NAIVE: JSON.stringify(request) },
    { ipc: true },
  );
  try {
    const next = <T>(type: string, timeoutMs: number) =>
      new Promise<T>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`recon-naive: no ${type} in ${timeoutMs / 1000}s`)),
          timeoutMs,
        );
        child.child.on('message', (m: { type?: string }) => {
          if (m.type !== type) return;
          clearTimeout(timer);
          resolve(m as T);
        });
        child.exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`recon-naive exited with code ${code} (log: .run/bench-recon-naive.log)`));
        });
      });
    await next('ready', 60_000);
    for (const p of [child, simulator]) p.resetPeak();
    const sampler = rssSampler({ naive: child.pid, simulator: simulator.pid });
    const cpu0 = { naive: child.cpuSeconds(), postgres: postgresCpuSeconds() };
    const done = next<NaiveResult>('result', 30 * 60_000);
    child.send({ type: 'go' });
    const result = await done;
    const memory = sampler.stop();
    const cpu1 = { naive: child.cpuSeconds(), postgres: postgresCpuSeconds() };
    const lastN = result.lastOrderId ? Number(result.lastOrderId.slice(day.prefix.length)) : 0;
    const empty: ProcessMemory = { startMb: null, peakMb: null, hwmMb: null, series: [] };
    return {
      design: 'naive' as const,
      rows: result.rows,
      billDate: day.billDate,
      concurrency: request.concurrency,
      elapsedS: round(result.elapsedMs / 1000),
      rowsPerS: Math.round(result.rows / (result.elapsedMs / 1000)),
      firstRowS: round(result.firstRowMs / 1000, 2),
      amountMismatches: result.amountMismatches,
      expectedAmountMismatches: Math.floor(lastN / DEFECT_EVERY),
      missingLocally: result.missingLocally,
      statusMismatches: result.statusMismatches,
      process: memory.naive ?? empty,
      simulator: memory.simulator ?? empty,
      cpuS: cpu0.naive !== null && cpu1.naive !== null ? round(cpu1.naive - cpu0.naive) : null,
      postgresCpuS:
        cpu0.postgres !== null && cpu1.postgres !== null ? round(cpu1.postgres - cpu0.postgres) : null,
    };
  } finally {
    await child.stop();
  }
}
