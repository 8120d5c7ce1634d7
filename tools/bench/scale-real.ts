import os from 'node:os';
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import Table from 'cli-table3';
import { createDatabase, type Sql } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { orderWorkflowId } from '../../src/domain';
import { createOrder } from '../../src/order/start';
import type { Config } from '../../src/platform/config';
import { connectTemporal } from '../../src/platform/temporal';
import { HttpPaymentGateway } from '../../src/provider/http';
import { migrateSimulatorSchema } from '../simulator/db/migrate';
import type { BenchContext } from './lib/context';
import { startDedicatedDevServer } from './lib/dev-server';
import { configEnv, prepareBroker, sleep } from './lib/env';
import { LatencyHistogram, type LatencySummary } from './lib/hist';
import { BenchProcess, readCpuSeconds, readMemory } from './lib/procs';
import { startSimulatorProcess } from './lib/simulator';

const { EventType } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * N waiting orders with the real order workflow (issue 14, "Scale with the real workflow"): per design
 * (ORDER_START_DELAY none or first-step), a fresh dedicated dev server, the real worker process
 * (workers/worker.ts, the real ladder), the payment simulator, and N orders created the way the shop does
 * (createOrder with the HttpPaymentGateway: trade at the simulator, row, workflow start) by K concurrent
 * creators (closed loop: the highest rate the machine takes), each with a pay deadline a day away so it
 * keeps waiting and checking. Every ladder check leaves a `payment_events` row (source poll), so the
 * ladder's lateness is measured on every order; a sample of histories splits it into timer, queue and
 * activity. The run ends when every order has run `checks` ladder checks, or at the timeout.
 */

export type StartDelayDesign = 'none' | 'first-step';

export interface ScaleRealOptions {
  size: number;
  designs: StartDelayDesign[];
  /** Orders being created at once (closed loop). */
  concurrency: number;
  /** Every order must have run this many ladder checks for the backlog to count as cleared. */
  checks: number;
  /** Per design, from the first creation: creation and measurement stop here. */
  timeoutMs: number;
  /** Workflow histories fetched for the timer / queue / first-task breakdown. */
  sample: number;
  serverPragmas: string[];
}

/** Lateness percentiles in ms (never negative; `early` counts the values clamped to 0). */
export interface Lateness extends LatencySummary {
  early: number;
}

export interface CheckStats {
  /** Ladder check number (1 = the first). */
  check: number;
  /** When it is due on the ladder, seconds after the order's creation (no lateness anywhere). */
  scheduledS: number;
  /** Orders that ran it (a `poll` row), of those created; orders it was due for by the end (on the
   * ladder's schedule) and had not run it. */
  done: number;
  pending: number;
  /** Its row's recorded_at − (created_at + scheduledS): how far behind the ladder's schedule. */
  behindSchedule: Lateness;
  /** The same with each pending order counted as (end of run − due): a lower bound of the truth. */
  behindAtLeast: Lateness;
  /** recorded_at − (the previous check's recorded_at + this step): this step's own lateness (check 1:
   * the same as behindSchedule). */
  stepLate: Lateness;
  /** Seconds from the first creation until every created order had run it (null: not within the run). */
  allDoneS: number | null;
}

export interface ProcessRss {
  /** MiB: before the burst, right after the last creation, at the end, and the peak. */
  beforeMb: number | null;
  afterBurstMb: number | null;
  endMb: number | null;
  peakMb: number | null;
  cpuS: number | null;
}

export interface ScaleRealRun {
  design: StartDelayDesign;
  target: number;
  created: number;
  failures: number;
  concurrency: number;
  /** First creation → last creation (s), orders ÷ that, and the best and worst 10-s window. */
  creationS: number;
  creationRate: number;
  creationRate10sMax: number;
  creationRate10sMin: number;
  /** First creation → end of measurement (s). */
  measuredS: number;
  /** The real ladder (ms) and pay deadline (ms) the orders ran with. */
  ladder: { stepsMs: number[]; repeatMs: number; payDeadlineMs: number };
  checks: CheckStats[];
  /** Seconds from the LAST creation until every order had run check 1, and `checksRequired` checks. */
  firstChecksClearedS: number | null;
  backlogClearedS: number | null;
  checksRequired: number;
  /** Sampled histories: first workflow task started − when it was due (start, or start + start delay). */
  sampled: number;
  firstTaskLag: LatencySummary;
  /** Sampled orders whose first workflow task had not started by the end, and the lag with those counted
   * as (end − due): a lower bound. */
  firstTaskPending: number;
  firstTaskLagAtLeast: LatencySummary;
  /** Order row created → first workflow task started (includes the designed start delay). */
  createdToFirstTask: LatencySummary;
  /** Timer due → TimerFired (server), TimerFired → next workflow task started (queue). */
  timerFiredLate: Lateness;
  firedToTask: LatencySummary;
  /** queryTrade scheduled → started (activity queue), and started − the ladder's schedule. */
  activityQueued: LatencySummary;
  queryBehindSchedule: Lateness;
  /** Provider queries per second: achieved (poll rows), what the ladder demanded (its schedule from
   * each order's creation), per 10-s window from the first creation. */
  queries: {
    achievedMean: number;
    achievedMax10s: number;
    demandedMean: number;
    demandedMax10s: number;
    /** Poll rows ÷ checks due on the schedule by the end of the run. */
    doneOfDue: number;
    /** N ÷ the ladder's repeat: what N waiting orders demand once past the steps. */
    steadyDemand: number;
    windowS: number;
    series: { t: number; achieved: number; demanded: number; created: number }[];
  };
  worker: ProcessRss;
  server: ProcessRss;
  simulator: ProcessRss;
  loadAvg: { start: number[]; end: number[] };
  outcome: 'ok' | 'timeout' | 'failed';
  note: string;
}

export interface ScaleRealResult {
  database: string;
  prefix: string;
  options: Omit<ScaleRealOptions, 'serverPragmas'> & { serverPragmas: string[] };
  runs: ScaleRealRun[];
}

const SCALE_PREFIX = 'payrecon-bench-scale';
const PAY_WITHIN_MS = 24 * 3600_000;
const WINDOW_MS = 10_000;
const EMPTY: LatencySummary = { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0 };

export function scaleDatabaseUrl(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  if (env.BENCH_SCALE_DATABASE_URL) return env.BENCH_SCALE_DATABASE_URL;
  const url = new URL(config.DATABASE_URL);
  url.pathname = '/payrecon_bench_scale';
  return url.toString();
}

class LatenessHistogram {
  private readonly h = new LatencyHistogram();
  private early = 0;
  record(ms: number) {
    if (ms < 0) this.early++;
    this.h.recordMs(Math.max(0, ms));
  }
  summary(): Lateness {
    return { ...this.h.summary(), early: this.early };
  }
}

/** Seconds after creation at which check k (1-based) is due on the ladder. */
function cumulativeSchedule(ladder: { stepsMs: number[]; repeatMs: number }, checks: number): number[] {
  const out: number[] = [];
  let at = 0;
  for (let k = 0; k < checks; k++) {
    at += ladder.stepsMs[k] ?? ladder.repeatMs;
    out.push(at);
  }
  return out;
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** Creates the phase's database (payrecon's and the simulator's tables) and empties it. */
async function prepareScaleDatabase(url: string, sql: Sql) {
  await migrateDatabase(url);
  await migrateSimulatorSchema(url);
  await sql`truncate orders, payment_events, payment_discrepancies, provider.trades cascade`;
}

export async function runScaleReal(ctx: BenchContext, options: ScaleRealOptions): Promise<ScaleRealResult> {
  const databaseUrl = scaleDatabaseUrl(ctx.config);
  const runs: ScaleRealRun[] = [];
  for (const design of options.designs) {
    ctx.log(
      `  ${design}: ${options.size.toLocaleString('en-US')} orders, ${options.concurrency} creators, until ${options.checks} checks each or ${options.timeoutMs / 1000} s`,
    );
    const run = await runDesign(ctx, databaseUrl, design, options);
    runs.push(run);
    ctx.log(renderScaleReal([run]));
  }
  return {
    database: new URL(databaseUrl).pathname.slice(1),
    prefix: SCALE_PREFIX,
    options,
    runs,
  };
}

async function runDesign(
  ctx: BenchContext,
  databaseUrl: string,
  design: StartDelayDesign,
  options: ScaleRealOptions,
): Promise<ScaleRealRun> {
  const database = createDatabase(databaseUrl, { max: options.concurrency + 4 });
  const sql = database.sql;
  const ladder = {
    stepsMs: ctx.config.POLL_LADDER,
    repeatMs: ctx.config.POLL_REPEAT,
    payDeadlineMs: PAY_WITHIN_MS,
  };
  const run: ScaleRealRun = {
    design,
    target: options.size,
    created: 0,
    failures: 0,
    concurrency: options.concurrency,
    creationS: 0,
    creationRate: 0,
    creationRate10sMax: 0,
    creationRate10sMin: 0,
    measuredS: 0,
    ladder,
    checks: [],
    firstChecksClearedS: null,
    backlogClearedS: null,
    checksRequired: options.checks,
    sampled: 0,
    firstTaskLag: EMPTY,
    firstTaskPending: 0,
    firstTaskLagAtLeast: EMPTY,
    createdToFirstTask: EMPTY,
    timerFiredLate: { ...EMPTY, early: 0 },
    firedToTask: EMPTY,
    activityQueued: EMPTY,
    queryBehindSchedule: { ...EMPTY, early: 0 },
    queries: {
      achievedMean: 0,
      achievedMax10s: 0,
      demandedMean: 0,
      demandedMax10s: 0,
      doneOfDue: 0,
      steadyDemand: round1(options.size / (ladder.repeatMs / 1000)),
      windowS: WINDOW_MS / 1000,
      series: [],
    },
    worker: { beforeMb: null, afterBurstMb: null, endMb: null, peakMb: null, cpuS: null },
    server: { beforeMb: null, afterBurstMb: null, endMb: null, peakMb: null, cpuS: null },
    simulator: { beforeMb: null, afterBurstMb: null, endMb: null, peakMb: null, cpuS: null },
    loadAvg: { start: [], end: [] },
    outcome: 'ok',
    note: '',
  };
  let server: Awaited<ReturnType<typeof startDedicatedDevServer>> | null = null;
  let simulator: Awaited<ReturnType<typeof startSimulatorProcess>> | null = null;
  let worker: BenchProcess | null = null;
  let client: Client | null = null;
  let serverPeak = 0;
  const serverSampler = setInterval(() => {
    const m = server ? readMemory(server.pid) : null;
    if (m) serverPeak = Math.max(serverPeak, m.rssMb);
  }, 500);
  try {
    await prepareScaleDatabase(databaseUrl, sql);
    server = await startDedicatedDevServer(options.serverPragmas);
    const serverPid = server.pid;
    const config: Config = {
      ...ctx.config,
      DATABASE_URL: databaseUrl,
      AMQP_PREFIX: SCALE_PREFIX,
      TEMPORAL_TASK_QUEUE: SCALE_PREFIX,
      TEMPORAL_ADDRESS: server.address,
      PAY_DEADLINE: PAY_WITHIN_MS,
      ORDER_START_DELAY: design,
    };
    await prepareBroker(config);
    simulator = await startSimulatorProcess(config, { name: 'scale-real-simulator' });
    const withProvider: Config = { ...config, PROVIDER_URL: simulator.client.url };
    // The real worker process with its real configuration (ladder, cache, pool); only the place differs.
    worker = new BenchProcess('scale-real-worker', 'workers/worker.ts', configEnv(withProvider));
    await worker.waitFor(/"msg":"worker started"/, 120_000);
    client = await connectTemporal(withProvider);
    await sleep(1_000);
    const rssOf = (p: BenchProcess | null) => (p ? p.rssMb() : null);
    run.worker.beforeMb = rssOf(worker);
    run.simulator.beforeMb = rssOf(simulator.process);
    run.server.beforeMb = readMemory(serverPid)?.rssMb ?? null;
    const cpu0 = {
      worker: worker.cpuSeconds(),
      server: readCpuSeconds(serverPid),
      simulator: simulator.process.cpuSeconds(),
    };
    run.loadAvg.start = os.loadavg().map(round1);

    // The burst: K creators, each creating its next order as soon as the last one is created.
    const gateway = new HttpPaymentGateway({ baseUrl: simulator.client.url });
    const deps = { db: database.db, client, config: withProvider, gateway };
    const began = Date.now();
    const deadline = began + options.timeoutMs;
    let next = 0;
    let lastError = '';
    const burst = Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < options.size && Date.now() < deadline && run.failures < 50) {
          next++;
          try {
            const { tradeError } = await createOrder(deps, {
              amount: 9900,
              currency: 'CNY',
              payWithinMs: PAY_WITHIN_MS,
            });
            if (tradeError) throw new Error(`trade not opened: ${tradeError}`);
            run.created++;
          } catch (error) {
            run.failures++;
            lastError = error instanceof Error ? error.message : String(error);
          }
        }
      }),
    );
    let burstDone = false;
    void burst.then(() => {
      burstDone = true;
    });
    let afterBurst = false;
    let lastLog = 0;
    const progress = async () => {
      const [row] = await sql<{ polls: number; one: number; required: number }[]>`
        select coalesce(sum(n), 0)::int as polls,
               count(*) filter (where n >= 1)::int as one,
               count(*) filter (where n >= ${options.checks})::int as required
        from (select order_id, count(*) as n from payment_events where source = 'poll' group by order_id) per_order`;
      return row ?? { polls: 0, one: 0, required: 0 };
    };
    for (;;) {
      await sleep(2_000);
      if (burstDone && !afterBurst) {
        afterBurst = true;
        run.worker.afterBurstMb = rssOf(worker);
        run.simulator.afterBurstMb = rssOf(simulator.process);
        run.server.afterBurstMb = readMemory(serverPid)?.rssMb ?? null;
        ctx.log(
          `    ${run.created} created in ${round1((Date.now() - began) / 1000)} s (${run.failures} failed); worker ${run.worker.afterBurstMb?.toFixed(0)} MiB, server ${run.server.afterBurstMb?.toFixed(0)} MiB`,
        );
      }
      const now = Date.now();
      const due = now - lastLog >= 30_000;
      if (!burstDone && !due && now < deadline) continue;
      const p = await progress();
      if (due) {
        lastLog = now;
        ctx.log(
          `    +${Math.round((now - began) / 1000)} s: ${run.created} created, ${p.one} checked once, ${p.required} checked ${options.checks}×, ${p.polls} provider queries; worker ${worker.rssMb()?.toFixed(0)} MiB, server ${readMemory(serverPid)?.rssMb.toFixed(0)} MiB, load ${os.loadavg()[0]?.toFixed(1)}`,
        );
      }
      if (burstDone && run.created > 0 && p.required >= run.created) break;
      if (now >= deadline) {
        await burst;
        run.outcome = 'timeout';
        run.note += `timed out after ${options.timeoutMs / 1000} s with ${p.required}/${run.created} orders checked ${options.checks}×; `;
        break;
      }
    }
    const endedAt = Date.now();
    run.measuredS = round1((endedAt - began) / 1000);
    run.loadAvg.end = os.loadavg().map(round1);
    run.worker.endMb = rssOf(worker);
    run.simulator.endMb = rssOf(simulator.process);
    run.server.endMb = readMemory(serverPid)?.rssMb ?? null;
    run.worker.peakMb = worker.peakMb();
    run.simulator.peakMb = simulator.process.peakMb();
    run.server.peakMb = Math.max(serverPeak, readMemory(serverPid)?.hwmMb ?? 0) || null;
    const cpu1 = {
      worker: worker.cpuSeconds(),
      server: readCpuSeconds(serverPid),
      simulator: simulator.process.cpuSeconds(),
    };
    const cpu = (a: number | null, b: number | null) => (a !== null && b !== null ? round1(b - a) : null);
    run.worker.cpuS = cpu(cpu0.worker, cpu1.worker);
    run.server.cpuS = cpu(cpu0.server, cpu1.server);
    run.simulator.cpuS = cpu(cpu0.simulator, cpu1.simulator);
    if (run.failures > 0) run.note += `${run.failures} creations failed (last: ${lastError.slice(0, 160)}); `;
    // The worker stops before the analysis: the rows and histories are then what the run did.
    await worker.stop();
    await analyseRows(sql, run, options, began, endedAt);
    await analyseHistories(sql, client, run, options, endedAt);
  } catch (error) {
    run.outcome = 'failed';
    run.note += error instanceof Error ? error.message : String(error);
  } finally {
    clearInterval(serverSampler);
    await worker?.stop();
    await simulator?.process.stop();
    await client?.connection.close().catch(() => {});
    await server?.stop();
    await database.close();
  }
  run.note = run.note.replace(/; $/, '');
  return run;
}

/** Every order's ladder checks from its `poll` rows: lateness per check, when each check was done by all. */
async function analyseRows(
  sql: Sql,
  run: ScaleRealRun,
  options: ScaleRealOptions,
  began: number,
  endedAt: number,
) {
  const created = await sql<{ id: string; t: number }[]>`
    select id, (extract(epoch from created_at) * 1000)::float8 as t from orders order by created_at`;
  const polls = await sql<{ id: string; t: number }[]>`
    select order_id as id, (extract(epoch from recorded_at) * 1000)::float8 as t
    from payment_events where source = 'poll' order by order_id, recorded_at, id`;
  const pollsOf = new Map<string, number[]>();
  for (const p of polls) {
    const list = pollsOf.get(p.id);
    if (list) list.push(p.t);
    else pollsOf.set(p.id, [p.t]);
  }
  const first = created[0]?.t ?? began;
  const last = created[created.length - 1]?.t ?? first;
  run.creationS = round1((last - first) / 1000);
  run.creationRate = run.creationS > 0 ? round1(created.length / run.creationS) : 0;
  // The DB clock and this process's clock agree on this machine (same host); the series uses the DB's.
  const windows = Math.max(1, Math.ceil((endedAt - began) / WINDOW_MS) + 1);
  const series = Array.from({ length: windows }, (_, i) => ({
    t: (i * WINDOW_MS) / 1000,
    achieved: 0,
    demanded: 0,
    created: 0,
  }));
  const slot = (t: number) => series[Math.min(windows - 1, Math.max(0, Math.floor((t - first) / WINDOW_MS)))];
  let maxChecks = options.checks;
  for (const list of pollsOf.values()) maxChecks = Math.max(maxChecks, list.length);
  const schedule = cumulativeSchedule(run.ladder, maxChecks + 400);
  const stepOf = (k: number) => run.ladder.stepsMs[k] ?? run.ladder.repeatMs;
  const perCheck = Array.from({ length: maxChecks }, () => ({
    behind: new LatenessHistogram(),
    atLeast: new LatenessHistogram(),
    pending: 0,
    step: new LatenessHistogram(),
    done: 0,
    lastAt: 0,
  }));
  let due = 0;
  const end = endedAt;
  for (const order of created) {
    const s = slot(order.t);
    if (s) s.created++;
    const list = pollsOf.get(order.id) ?? [];
    for (const [k, offset] of schedule.entries()) {
      const at = order.t + offset;
      if (at > end) break;
      due++;
      const w = slot(at);
      if (w) w.demanded++;
      const stats = perCheck[k];
      if (stats && k >= list.length) {
        stats.pending++;
        stats.atLeast.record(end - at);
      }
    }
    list.forEach((t, k) => {
      const stats = perCheck[k];
      if (!stats) return;
      stats.done++;
      stats.lastAt = Math.max(stats.lastAt, t);
      stats.behind.record(t - (order.t + (schedule[k] ?? 0)));
      stats.atLeast.record(t - (order.t + (schedule[k] ?? 0)));
      const previous = k === 0 ? order.t : (list[k - 1] ?? order.t);
      stats.step.record(t - previous - stepOf(k));
      const w = slot(t);
      if (w) w.achieved++;
    });
  }
  run.checks = perCheck.slice(0, Math.max(options.checks, 1) + 2).map((c, k) => ({
    check: k + 1,
    scheduledS: (schedule[k] ?? 0) / 1000,
    done: c.done,
    pending: c.pending,
    behindSchedule: c.behind.summary(),
    behindAtLeast: c.atLeast.summary(),
    stepLate: c.step.summary(),
    allDoneS: c.done >= created.length && created.length > 0 ? round1((c.lastAt - first) / 1000) : null,
  }));
  const clearedAt = (k: number) => {
    const c = perCheck[k];
    return c && c.done >= created.length && created.length > 0 ? round1((c.lastAt - last) / 1000) : null;
  };
  run.firstChecksClearedS = clearedAt(0);
  run.backlogClearedS = clearedAt(options.checks - 1);
  const rates = series.map((w) => w.created / (WINDOW_MS / 1000));
  const creating = rates.slice(0, Math.max(1, Math.floor((last - first) / WINDOW_MS)));
  run.creationRate10sMax = round1(Math.max(0, ...creating));
  run.creationRate10sMin = round1(Math.min(...creating));
  const spanS = (end - first) / 1000;
  run.queries.achievedMean = round1(polls.length / spanS);
  run.queries.demandedMean = round1(due / spanS);
  run.queries.achievedMax10s = round1(Math.max(0, ...series.map((w) => w.achieved)) / (WINDOW_MS / 1000));
  run.queries.demandedMax10s = round1(Math.max(0, ...series.map((w) => w.demanded)) / (WINDOW_MS / 1000));
  run.queries.doneOfDue = due > 0 ? Math.round((polls.length / due) * 1000) / 1000 : 0;
  run.queries.series = series;
}

const millis = (event: HistoryEvent) =>
  Number(event.eventTime?.seconds ?? 0) * 1000 + Math.floor((event.eventTime?.nanos ?? 0) / 1e6);
const durationMs = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  d ? Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6) : 0;

/** A sample of histories, spread over the burst: first-task lag, timers, the activity queue. */
async function analyseHistories(
  sql: Sql,
  client: Client,
  run: ScaleRealRun,
  options: ScaleRealOptions,
  endedAt: number,
) {
  const every = Math.max(1, Math.floor(run.created / Math.max(1, options.sample)));
  const rows = await sql<{ id: string; t: number }[]>`
    select id, t from (
      select id, (extract(epoch from created_at) * 1000)::float8 as t, row_number() over (order by created_at) as n
      from orders) o
    where (n - 1) % ${every} = 0 limit ${options.sample}`;
  const firstTask = new LatencyHistogram();
  const firstTaskAtLeast = new LatencyHistogram();
  let firstTaskPending = 0;
  const createdToFirst = new LatencyHistogram();
  const timerLate = new LatenessHistogram();
  const firedToTask = new LatencyHistogram();
  const queued = new LatencyHistogram();
  const queryBehind = new LatenessHistogram();
  const schedule = cumulativeSchedule(run.ladder, 400);
  let sampled = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < rows.length) {
        const row = rows[next++];
        if (!row) break;
        const history = await client.workflow
          .getHandle(orderWorkflowId(row.id))
          .fetchHistory()
          .catch(() => null);
        const events = history?.events ?? [];
        if (events.length === 0) continue;
        sampled++;
        const started = events[0];
        const firstWft = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
        const backoff = durationMs(
          started?.workflowExecutionStartedEventAttributes?.firstWorkflowTaskBackoff ?? null,
        );
        if (started && firstWft) {
          const lag = Math.max(0, millis(firstWft) - (millis(started) + backoff));
          firstTask.recordMs(lag);
          firstTaskAtLeast.recordMs(lag);
          createdToFirst.recordMs(Math.max(0, millis(firstWft) - row.t));
        } else if (started) {
          firstTaskPending++;
          firstTaskAtLeast.recordMs(Math.max(0, endedAt - (millis(started) + backoff)));
        }
        const byId = new Map(events.map((e) => [Number(e.eventId), e]));
        let query = 0;
        for (const [index, e] of events.entries()) {
          if (e.eventType === EventType.EVENT_TYPE_TIMER_FIRED) {
            const timer = byId.get(Number(e.timerFiredEventAttributes?.startedEventId));
            const timeout = durationMs(timer?.timerStartedEventAttributes?.startToFireTimeout ?? null);
            if (timer) timerLate.record(millis(e) - (millis(timer) + timeout));
            const task = events
              .slice(index)
              .find((x) => x.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED);
            if (task) firedToTask.recordMs(Math.max(0, millis(task) - millis(e)));
          }
          if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
            const scheduled = byId.get(Number(e.activityTaskStartedEventAttributes?.scheduledEventId));
            if (scheduled?.activityTaskScheduledEventAttributes?.activityType?.name !== 'queryTrade')
              continue;
            queued.recordMs(Math.max(0, millis(e) - millis(scheduled)));
            // Only the first attempt's start is in the history: check `query` + 1 of the ladder.
            queryBehind.record(millis(e) - (row.t + (schedule[query] ?? 0)));
            query++;
          }
        }
      }
    }),
  );
  run.sampled = sampled;
  run.firstTaskLag = firstTask.summary();
  run.firstTaskPending = firstTaskPending;
  run.firstTaskLagAtLeast = firstTaskAtLeast.summary();
  run.createdToFirstTask = createdToFirst.summary();
  run.timerFiredLate = timerLate.summary();
  run.firedToTask = firedToTask.summary();
  run.activityQueued = queued.summary();
  run.queryBehindSchedule = queryBehind.summary();
}

const mb = (v: number | null) => (v === null ? '-' : Math.round(v).toLocaleString('en-US'));
const s1 = (ms: number) => (ms / 1000).toFixed(1);
const lat = (l: LatencySummary) => `${s1(l.p50)} / ${s1(l.p99)} / ${s1(l.max)}`;

export function renderScaleReal(runs: ScaleRealRun[]): string {
  const out: string[] = [];
  const table = new Table({
    head: [
      'scale, real workflow',
      'created (failed)',
      'created/s (10 s min-max)',
      'first task late p50/p99/max s (≥: not yet = end − due)',
      'check 1 behind schedule p50/p99/max s (≥)',
      'check 2 behind schedule p50/p99/max s (≥)',
      'timer fired late p50/p99 s',
      'checks cleared after last creation: 1st / all',
      'queries/s achieved / demanded (peak 10 s)',
      'worker MiB burst / end / peak',
      'server MiB burst / end / peak',
      'outcome',
    ],
    style: { head: [], border: [] },
  });
  for (const r of runs) {
    const c1 = r.checks[0];
    const c2 = r.checks[1];
    table.push([
      `${r.target.toLocaleString('en-US')} ${r.design}`,
      `${r.created} (${r.failures})`,
      `${r.creationRate} (${r.creationRate10sMin}-${r.creationRate10sMax})`,
      `${lat(r.firstTaskLagAtLeast)} (${r.sampled} sampled, ${r.firstTaskPending} not yet)`,
      c1 ? `${lat(c1.behindAtLeast)} (${c1.done} done, ${c1.pending} not yet)` : '-',
      c2 ? `${lat(c2.behindAtLeast)} (${c2.done} done, ${c2.pending} not yet)` : '-',
      `${s1(r.timerFiredLate.p50)} / ${s1(r.timerFiredLate.p99)}`,
      `${r.firstChecksClearedS ?? '-'} / ${r.backlogClearedS ?? '-'} s`,
      `${r.queries.achievedMean} / ${r.queries.demandedMean} (${r.queries.achievedMax10s} / ${r.queries.demandedMax10s}); ${Math.round(r.queries.doneOfDue * 100)}% of due`,
      `${mb(r.worker.afterBurstMb)} / ${mb(r.worker.endMb)} / ${mb(r.worker.peakMb)}`,
      `${mb(r.server.afterBurstMb)} / ${mb(r.server.endMb)} / ${mb(r.server.peakMb)}`,
      r.note ? `${r.outcome}: ${r.note}` : r.outcome,
    ]);
  }
  out.push(table.toString());
  return out.join('\n');
}

/** The --scale-real options (tools/bench/main.ts spreads them into its parseArgs options). */
export const SCALE_REAL_OPTIONS = {
  'scale-real': { type: 'string', default: '0' },
  'scale-real-start-delay': { type: 'string', default: 'both' },
  'scale-real-concurrency': { type: 'string', default: '32' },
  'scale-real-checks': { type: 'string', default: '2' },
  'scale-real-timeout': { type: 'string', default: '30m' },
  'scale-real-sample': { type: 'string', default: '200' },
} as const;

export const SCALE_REAL_USAGE = `  --scale-real N            N waiting orders with the REAL order workflow (workers/worker.ts, the real ladder,
                            pay deadline a day away), created like the shop does (trade at the simulator, row,
                            workflow start) by --scale-real-concurrency creators at once, on a dedicated dev
                            server, database payrecon_bench_scale, prefix and task queue payrecon-bench-scale
                            (0: skip; default 0): creation rate, first-task lag, ladder lateness, RSS, backlog
  --scale-real-start-delay both   ORDER_START_DELAY of the orders: none, first-step or both (one run each)
  --scale-real-concurrency 32     orders being created at once (closed loop; default 32)
  --scale-real-checks 2     the backlog has cleared when every order has run this many ladder checks
                            (default 2); the run ends then or at --scale-real-timeout
  --scale-real-timeout 30m  per design, from the first creation; creation stops there too (default 30m)
  --scale-real-sample 200   workflow histories sampled for the timer and queue breakdown (default 200)`;

export function parseScaleReal(
  values: { [K in keyof typeof SCALE_REAL_OPTIONS]: string },
  serverPragmas: string[],
  duration: (name: string, raw: string) => number,
): ScaleRealOptions | null {
  const whole = (name: string, raw: string, min: number) => {
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < min || n > 10_000_000)
      throw new Error(`--${name} must be a whole number from ${min} to 10000000, got "${raw}"`);
    return n;
  };
  const size = whole('scale-real', values['scale-real'], 0);
  if (size === 0) return null;
  const raw = values['scale-real-start-delay'];
  const choices: Record<string, StartDelayDesign[]> = {
    none: ['none'],
    'first-step': ['first-step'],
    both: ['none', 'first-step'],
  };
  const designs = choices[raw];
  if (!designs) throw new Error(`--scale-real-start-delay must be none, first-step or both, got "${raw}"`);
  return {
    size,
    designs,
    concurrency: whole('scale-real-concurrency', values['scale-real-concurrency'], 1),
    checks: whole('scale-real-checks', values['scale-real-checks'], 1),
    timeoutMs: duration('scale-real-timeout', values['scale-real-timeout']),
    sample: whole('scale-real-sample', values['scale-real-sample'], 0),
    serverPragmas,
  };
}
