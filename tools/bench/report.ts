import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Table from 'cli-table3';
import type { CronBaselineResult } from './cron-baseline';
import type { E2EResult, PayreconVariant } from './e2e';
import type { FallbackResult } from './fallback';
import { ROOT } from './lib/procs';
import type { NotifyResult } from './notify';
import type { ReconResult } from './recon';
import type { ScaleResult } from './scale';
import { renderScaleReal, type ScaleRealResult } from './scale-real';
import type { FloorResult } from './temporal-floor';

export interface LoadStats {
  before: number[];
  min: number;
  mean: number;
  max: number;
  samples: number;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  command: string;
  machine: ReturnType<typeof machineInfo>;
  load: LoadStats;
  options: Record<string, unknown>;
  payrecon: {
    variant: PayreconVariant;
    e2e: E2ERow[];
    fallback: FallbackResult | null;
  };
  floor: FloorResult[] | null;
  cron: { e2e: Omit<E2EResult, 'orderIds' | 'sentAt'>[]; fallback: FallbackResult | null } | null;
  ratios: Ratio[];
  /** The issue's three goals, per ORDER_START_DELAY design, each from this run (see goals()). */
  goals: Goal[];
  /** ORDER_START_DELAY=first-step against none at each rate both ran (--start-delay both). */
  startDelayCost: StartDelayCost[];
  /** VERIFY_PAID_NOTICES=always against on-mismatch at each rate both ran (--verify-notices both). */
  verifyCost: VerifyCost[];
  scale: ScaleResult[];
  /** N waiting orders with the real order workflow, per ORDER_START_DELAY design (--scale-real). */
  scaleReal?: ScaleRealResult | null;
  /** Merchant notification ladder: the seed's TTL + dead-letter queue beside payrecon's workflows (--notify). */
  notify: NotifyResult | null;
  /** The daily reconciliation at scale beside a naive row-by-row loop (--recon). */
  recon: ReconResult | null;
  /** Status queries one never-paid order costs until its deadline, computed from the ladder and the scan. */
  neverPaidQueries: { deadlineMin: number; payrecon: number; cron: number; cronIntervalS: number } | null;
}

/** Checks the workflow makes for an order that is never paid: every rung, then every repeat, then the final one. */
export function neverPaidQueries(
  ladder: number[],
  repeatMs: number,
  deadlineMs: number,
  cronIntervalMs: number,
) {
  let at = 0;
  let checks = 0;
  for (let step = 0; ; step++) {
    at += ladder[step] ?? repeatMs;
    if (at >= deadlineMs) break;
    checks++;
  }
  return {
    deadlineMin: deadlineMs / 60_000,
    payrecon: checks + 1,
    cron: Math.floor(deadlineMs / cronIntervalMs),
    cronIntervalS: cronIntervalMs / 1000,
  };
}

export interface Ratio {
  rate: number;
  /** The payrecon design of the row (its ORDER_START_DELAY). */
  startDelay: E2EResult['startDelay'];
  /** payrecon ÷ the Temporal floor, and payrecon ÷ the cron baseline: latency (higher = payrecon slower)
   * and throughput (lower = payrecon slower). */
  vsFloor: { p50: number | null; p99: number | null; throughput: number | null };
  vsCron: { p50: number | null; p99: number | null; throughput: number | null };
}

type E2ERow = Omit<E2EResult, 'orderIds' | 'sentAt'>;

/** What VERIFY_PAID_NOTICES=always costs at one offered rate: both rows, and always ÷ on-mismatch. */
export interface VerifyCost {
  rate: number;
  onMismatch: VerifySide;
  always: VerifySide;
  /** always ÷ on-mismatch: throughput (lower = always slower), latency and CPU (higher = always costlier). */
  ratio: {
    throughput: number | null;
    p50: number | null;
    p95: number | null;
    workerCpu: number | null;
    serverCpu: number | null;
  };
}

interface VerifySide {
  throughput: number;
  p50: number;
  p95: number;
  workerCpuMsPerOrder: number | null;
  serverCpuMsPerOrder: number | null;
  providerQueriesPerPaidOrder: number | null;
  /** Medians over the sampled histories: activity tasks and local activities per order. */
  activities: number | null;
  localActivities: number | null;
  events: number | null;
}

const side = (r: E2ERow): VerifySide => ({
  throughput: r.throughput,
  p50: r.latency.p50,
  p95: r.latency.p95,
  workerCpuMsPerOrder: r.workerCpuMsPerOrder,
  serverCpuMsPerOrder: r.serverCpuMsPerOrder,
  providerQueriesPerPaidOrder: r.providerQueriesPerPaidOrder,
  activities: r.breakdown?.activities ?? null,
  localActivities: r.breakdown?.localActivities ?? null,
  events: r.breakdown?.events ?? null,
});

export function verifyCost(payrecon: E2ERow[]): VerifyCost[] {
  const costs: VerifyCost[] = [];
  // A rate given twice (--rates 10,20,20,10) pairs its first always row with its first on-mismatch row, ...
  const used = new Set<E2ERow>();
  for (const always of payrecon.filter((r) => r.verifyNotices === 'always')) {
    const base = payrecon.find(
      (r) =>
        r.verifyNotices === 'on-mismatch' &&
        r.startDelay === always.startDelay &&
        r.offeredRate === always.offeredRate &&
        !used.has(r),
    );
    if (!base) continue;
    used.add(base);
    const a = side(always);
    const b = side(base);
    costs.push({
      rate: always.offeredRate,
      onMismatch: b,
      always: a,
      ratio: {
        throughput: div(a.throughput, b.throughput),
        p50: div(a.p50, b.p50),
        p95: div(a.p95, b.p95),
        workerCpu: div(a.workerCpuMsPerOrder ?? undefined, b.workerCpuMsPerOrder ?? undefined),
        serverCpu: div(a.serverCpuMsPerOrder ?? undefined, b.serverCpuMsPerOrder ?? undefined),
      },
    });
  }
  return costs;
}

/** The report's name of a payrecon row: the variant, VERIFY_PAID_NOTICES when always, ORDER_START_DELAY. */
export function payreconRowName(
  variant: PayreconVariant,
  r: Pick<E2EResult, 'verifyNotices' | 'startDelay'>,
): string {
  return `payrecon (${variant.name}${r.verifyNotices === 'always' ? ', VERIFY_PAID_NOTICES=always' : ''}${r.startDelay ? `, start delay ${r.startDelay}` : ''})`;
}

/** One ORDER_START_DELAY design's numbers at one rate, for the before/after table. */
interface StartDelaySide {
  throughput: number;
  p50: number;
  p95: number;
  p99: number;
  workerCpuMsPerOrder: number | null;
  consumerCpuMsPerOrder: number | null;
  serverCpuMsPerOrder: number | null;
  machineCpuMsPerMqOrder: number | null;
  designCpuMsPerMqOrder: number | null;
}

/** ORDER_START_DELAY first-step against none at one offered rate (run back to back on the same processes). */
export interface StartDelayCost {
  rate: number;
  none: StartDelaySide;
  firstStep: StartDelaySide;
  /** first-step ÷ none. */
  ratio: Record<keyof StartDelaySide, number | null>;
}

const delaySide = (r: E2ERow): StartDelaySide => ({
  throughput: r.throughput,
  p50: r.latency.p50,
  p95: r.latency.p95,
  p99: r.latency.p99,
  workerCpuMsPerOrder: r.workerCpuMsPerOrder,
  consumerCpuMsPerOrder: r.consumerCpuMsPerOrder,
  serverCpuMsPerOrder: r.serverCpuMsPerOrder,
  machineCpuMsPerMqOrder: r.machineCpuMsPerMqOrder,
  designCpuMsPerMqOrder: r.designCpuMsPerMqOrder,
});

export function startDelayCost(payrecon: E2ERow[]): StartDelayCost[] {
  const costs: StartDelayCost[] = [];
  const used = new Set<E2ERow>();
  for (const after of payrecon.filter((r) => r.startDelay === 'first-step')) {
    const before = payrecon.find(
      (r) =>
        r.startDelay === 'none' &&
        r.verifyNotices === after.verifyNotices &&
        r.offeredRate === after.offeredRate &&
        !used.has(r),
    );
    if (!before) continue;
    used.add(before);
    const a = delaySide(after);
    const b = delaySide(before);
    const ratio = Object.fromEntries(
      (Object.keys(a) as (keyof StartDelaySide)[]).map((k) => [k, div(a[k] ?? undefined, b[k] ?? undefined)]),
    ) as StartDelayCost['ratio'];
    costs.push({ rate: after.offeredRate, none: b, firstStep: a, ratio });
  }
  return costs;
}

/**
 * Issue 14's goals for one payrecon design, from one run:
 * (a) throughput ceiling ÷ the Temporal floor's ceiling ≥ 1.5 (ceiling: the highest orders/s settled at any
 *     offered rate; a side that kept up with every rate offered only gives a lower bound);
 * (b) p99 at about half its ceiling ÷ the floor's p99 at that same offered rate ≤ 1.5 (the rate both ran
 *     nearest to half the ceiling: --probe-half adds it);
 * (c) whole-machine CPU per MQ-settled order ÷ the seeds' design's at that same rate ≤ 3.
 */
export interface Goal {
  startDelay: E2EResult['startDelay'];
  verifyNotices: E2EResult['verifyNotices'];
  goal: 'a' | 'b' | 'c' | "c'";
  what: string;
  /** payrecon's figure and the baseline's it is divided by. */
  payrecon: number | null;
  baseline: number | null;
  ratio: number | null;
  target: string;
  verdict: 'PASS' | 'FAIL' | 'n/a';
  note: string;
}

/** Kept up: settled ≥ 90% of the offered rate, so the ceiling is above this rate. */
const keptUp = (r: { offeredRate: number; throughput: number }) => r.throughput >= 0.9 * r.offeredRate;

export function goals(
  payrecon: E2ERow[],
  floor: FloorResult[] | null,
  cron: CronBaselineResult | null,
): Goal[] {
  const out: Goal[] = [];
  const keys = [...new Set(payrecon.map((r) => `${r.verifyNotices}|${r.startDelay}`))];
  for (const key of keys) {
    const rows = payrecon.filter((r) => `${r.verifyNotices}|${r.startDelay}` === key);
    const first = rows[0];
    if (!first) continue;
    const base = { startDelay: first.startDelay, verifyNotices: first.verifyNotices };
    const top = rows.reduce((a, b) => (b.throughput > a.throughput ? b : a));
    const floorTop =
      floor && floor.length > 0 ? floor.reduce((a, b) => (b.throughput > a.throughput ? b : a)) : null;
    const payreconBound = rows.every(keptUp);
    const floorBound = floor ? floor.every(keptUp) : false;
    const ceilingRatio = div(top.throughput, floorTop?.throughput);
    let aVerdict: Goal['verdict'] = ceilingRatio === null ? 'n/a' : ceilingRatio >= 1.5 ? 'PASS' : 'FAIL';
    const aNotes: string[] = [
      `payrecon's at ${top.offeredRate}/s offered, the floor's at ${floorTop?.offeredRate ?? '-'}/s`,
    ];
    if (payreconBound)
      aNotes.push('payrecon kept up with every rate offered: its ceiling is higher (a lower bound)');
    if (floorBound) aNotes.push('the floor kept up with every rate offered: its ceiling is higher');
    // A lower bound of payrecon's ceiling that already passes still passes; one that fails proves nothing,
    // and a floor below its ceiling makes the ratio too high.
    if ((payreconBound && aVerdict === 'FAIL') || (floorBound && aVerdict === 'PASS')) aVerdict = 'n/a';
    out.push({
      ...base,
      goal: 'a',
      what: 'throughput ceiling ÷ Temporal floor ceiling (orders/s)',
      payrecon: top.throughput,
      baseline: floorTop?.throughput ?? null,
      ratio: ceilingRatio,
      target: '≥ 1.5',
      verdict: aVerdict,
      note: aNotes.join('; '),
    });

    const half = top.throughput / 2;
    const common = rows.filter((r) => floor?.some((f) => f.offeredRate === r.offeredRate));
    const near = common.length
      ? common.reduce((a, b) => (Math.abs(b.offeredRate - half) < Math.abs(a.offeredRate - half) ? b : a))
      : null;
    const floorNear = near ? floor?.find((f) => f.offeredRate === near.offeredRate) : undefined;
    const p99Ratio = div(near?.latency.p99, floorNear?.latency.p99);
    out.push({
      ...base,
      goal: 'b',
      what: `p99 at half the ceiling (${near?.offeredRate ?? '-'}/s offered; half of ${top.throughput} is ${Math.round(half * 10) / 10}) ÷ floor p99 at that rate (ms)`,
      payrecon: near?.latency.p99 ?? null,
      baseline: floorNear?.latency.p99 ?? null,
      ratio: p99Ratio,
      target: '≤ 1.5',
      verdict: p99Ratio === null ? 'n/a' : p99Ratio <= 1.5 ? 'PASS' : 'FAIL',
      note:
        near && Math.abs(near.offeredRate - half) > 0.2 * half
          ? `the nearest rate both ran is ${near.offeredRate}/s, more than 20% from half the ceiling (use --probe-half)`
          : '',
    });

    // (c) at the same rate as (b): below both designs' ceilings, so each settles what is offered.
    const cronAt = near ? cron?.e2e.find((c) => c.offeredRate === near.offeredRate) : undefined;
    const cpuRatio = div(
      near?.machineCpuMsPerMqOrder ?? undefined,
      cronAt?.machineCpuMsPerMqOrder ?? undefined,
    );
    out.push({
      ...base,
      goal: 'c',
      what: `whole-machine CPU per MQ-settled order at ${near?.offeredRate ?? '-'}/s ÷ seeds' design's (ms)`,
      payrecon: near?.machineCpuMsPerMqOrder ?? null,
      baseline: cronAt?.machineCpuMsPerMqOrder ?? null,
      ratio: cpuRatio,
      target: '≤ 3',
      verdict: cpuRatio === null ? 'n/a' : cpuRatio <= 3 ? 'PASS' : 'FAIL',
      note: "/proc/stat: every process on the machine over the phase, others' work too (see c')",
    });
    const designRatio = div(
      near?.designCpuMsPerMqOrder ?? undefined,
      cronAt?.designCpuMsPerMqOrder ?? undefined,
    );
    out.push({
      ...base,
      goal: "c'",
      what: `CPU of the design's processes per MQ-settled order at ${near?.offeredRate ?? '-'}/s ÷ seeds' design's (ms)`,
      payrecon: near?.designCpuMsPerMqOrder ?? null,
      baseline: cronAt?.designCpuMsPerMqOrder ?? null,
      ratio: designRatio,
      target: '≤ 3',
      verdict: designRatio === null ? 'n/a' : designRatio <= 3 ? 'PASS' : 'FAIL',
      note: 'services, simulator, Temporal server (payrecon only), bench-database Postgres backends, broker, bench driver',
    });
  }
  return out;
}

function temporalVersion(): string {
  for (const bin of ['temporal', path.join(ROOT, '.venv', 'bin', 'temporal')]) {
    try {
      if (bin.includes('/') && !existsSync(bin)) continue;
      return execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 5_000 }).trim();
    } catch {
      // try the next one
    }
  }
  return 'unknown';
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryMb: Math.round(os.totalmem() / 2 ** 20),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    temporalCli: temporalVersion(),
  };
}

const div = (a: number | undefined, b: number | undefined) =>
  a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 100) / 100 : null;

export function ratios(
  payrecon: E2EResult[],
  floor: FloorResult[] | null,
  cron: CronBaselineResult | null,
): Ratio[] {
  return payrecon.map((p) => {
    const f = floor?.find((r) => r.offeredRate === p.offeredRate);
    const c = cron?.e2e.find((r) => r.offeredRate === p.offeredRate);
    return {
      rate: p.offeredRate,
      startDelay: p.startDelay,
      vsFloor: {
        p50: div(p.latency.p50, f?.latency.p50),
        p99: div(p.latency.p99, f?.latency.p99),
        throughput: div(p.throughput, f?.throughput),
      },
      vsCron: {
        p50: div(p.latency.p50, c?.latency.p50),
        p99: div(p.latency.p99, c?.latency.p99),
        throughput: div(p.throughput, c?.throughput),
      },
    };
  });
}

/** Colours only on a terminal: a log file or CI output gets plain text. */
const newTable = (options: { head: string[] }) =>
  new Table(process.stdout.isTTY ? options : { ...options, style: { head: [], border: [] } });

const mb = (value: number | null | undefined) =>
  value === null || value === undefined ? '-' : value.toFixed(0);
const paths = (byPath: Record<string, number>) =>
  Object.entries(byPath)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || '-';
const x = (value: number | null) => (value === null ? '-' : `${value}×`);

export function renderReport(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  out.push(
    `payrecon bench ${report.startedAt}: ${m.cpus} × ${m.cpuModel}, ${m.memoryMb} MiB, node ${m.node}, ${m.temporalCli.split('\n')[0]}`,
  );
  out.push(`Temporal server: ${String(report.options.temporalServer ?? '-')}`);
  out.push(
    `load average (1 min) before: ${report.load.before.map((l) => l.toFixed(2)).join(' / ')}; during: min ${report.load.min.toFixed(2)}, mean ${report.load.mean.toFixed(2)}, max ${report.load.max.toFixed(2)}`,
  );

  const e2e = newTable({
    head: [
      'end to end: pay sent → PAID',
      'offered/s',
      'orders',
      'settled',
      'orders/s',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      'max ms',
      'settled by',
      'provider queries/paid order',
      'worker MiB',
      'consumer MiB',
      'CPU ms/order (worker / consumer)',
      'server CPU ms/order',
      'machine CPU ms/order (MQ-settled)',
      "design's processes CPU ms/MQ order",
      'machine busy %',
    ],
  });
  // The floor has no processes of its own to measure: its worker runs in the bench process.
  const row = (
    design: string,
    r: Pick<E2EResult, 'offeredRate' | 'orders' | 'settled' | 'throughput' | 'latency'> &
      Partial<Omit<E2EResult, 'orderIds' | 'sentAt'>> & { machineCpuMsPerOrder?: number | null },
    own = true,
  ) =>
    e2e.push([
      design,
      r.offeredRate,
      r.orders,
      r.settled,
      r.throughput,
      r.latency.p50,
      r.latency.p95,
      r.latency.p99,
      r.latency.max,
      own && r.byPath ? paths(r.byPath) : '-',
      r.providerQueriesPerPaidOrder ?? '-',
      own ? mb(r.workerPeakMb ?? null) : '(in bench)',
      own ? mb(r.consumerPeakMb ?? null) : '-',
      own ? `${r.workerCpuMsPerOrder ?? '-'} / ${r.consumerCpuMsPerOrder ?? '-'}` : '-',
      r.serverCpuMsPerOrder ?? '-',
      r.machineCpuMsPerMqOrder ?? r.machineCpuMsPerOrder ?? '-',
      r.designCpuMsPerMqOrder ?? '-',
      r.machineBusyPct ?? '-',
    ]);
  for (const r of report.payrecon.e2e) row(payreconRowName(report.payrecon.variant, r), r);
  for (const r of report.floor ?? []) row('Temporal floor (signal → activity)', r, false);
  for (const r of report.cron?.e2e ?? []) row('seeds: consumer + 20 s cron', r);
  if (e2e.length > 0) out.push(e2e.toString());

  const withBreakdown = report.payrecon.e2e.filter((r) => r.breakdown);
  if (withBreakdown.length > 0) {
    const table = newTable({
      head: [
        'payrecon: where the time goes (medians, ms)',
        'sampled',
        'pay sent → signal',
        'signal → workflow task',
        'task incl. local DB writes',
        'signal → completed',
        'history: events / workflow tasks / activities / local activities / timers',
      ],
    });
    const v = (n: number | null | undefined) => (n === null || n === undefined ? '-' : n);
    for (const r of withBreakdown) {
      const b = r.breakdown;
      if (!b) continue;
      table.push([
        `${r.offeredRate}/s${r.verifyNotices === 'always' ? ', verify always' : ''}${r.startDelay ? `, start delay ${r.startDelay}` : ''}`,
        b.sampled,
        b.toSignal,
        v(b.signalToTask),
        v(b.taskRun),
        b.signalToCompleted,
        `${v(b.events)} / ${v(b.workflowTasks)} / ${v(b.activities)} / ${v(b.localActivities)} / ${v(b.timers)}`,
      ]);
    }
    out.push(table.toString());
  }

  if (report.verifyCost.length > 0) {
    const table = newTable({
      head: [
        'VERIFY_PAID_NOTICES always vs on-mismatch',
        'offered/s',
        'orders/s',
        'p50 ms',
        'p95 ms',
        'worker CPU ms/order',
        'server CPU ms/order',
        'provider queries/paid order',
        'activities / local activities per order',
      ],
    });
    const pair = (a: number | null, b: number | null, ratio?: number | null) =>
      `${a ?? '-'} → ${b ?? '-'}${ratio === undefined ? '' : ` (${x(ratio)})`}`;
    for (const c of report.verifyCost) {
      const m = c.onMismatch;
      const a = c.always;
      table.push([
        'on-mismatch → always (always ÷ on-mismatch)',
        c.rate,
        pair(m.throughput, a.throughput, c.ratio.throughput),
        pair(m.p50, a.p50, c.ratio.p50),
        pair(m.p95, a.p95, c.ratio.p95),
        pair(m.workerCpuMsPerOrder, a.workerCpuMsPerOrder, c.ratio.workerCpu),
        pair(m.serverCpuMsPerOrder, a.serverCpuMsPerOrder, c.ratio.serverCpu),
        pair(m.providerQueriesPerPaidOrder, a.providerQueriesPerPaidOrder),
        `${m.activities ?? '-'} / ${m.localActivities ?? '-'} → ${a.activities ?? '-'} / ${a.localActivities ?? '-'}`,
      ]);
    }
    out.push(table.toString());
  }

  if (report.startDelayCost.length > 0) {
    const table = newTable({
      head: [
        'ORDER_START_DELAY none → first-step (first-step ÷ none)',
        'offered/s',
        'orders/s',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'worker CPU ms/order',
        'consumer CPU ms/order',
        'server CPU ms/order',
        'machine CPU ms/MQ order',
        "design's processes CPU ms/MQ order",
      ],
    });
    for (const c of report.startDelayCost) {
      const cell = (k: keyof StartDelaySide) =>
        `${c.none[k] ?? '-'} → ${c.firstStep[k] ?? '-'} (${x(c.ratio[k])})`;
      table.push([
        'none → first-step',
        c.rate,
        cell('throughput'),
        cell('p50'),
        cell('p95'),
        cell('p99'),
        cell('workerCpuMsPerOrder'),
        cell('consumerCpuMsPerOrder'),
        cell('serverCpuMsPerOrder'),
        cell('machineCpuMsPerMqOrder'),
        cell('designCpuMsPerMqOrder'),
      ]);
    }
    out.push(table.toString());
  }

  if (report.ratios.some((r) => r.vsFloor.p50 !== null || r.vsCron.p50 !== null)) {
    const table = newTable({
      head: ['payrecon ÷', 'offered/s', 'p50', 'p99', 'orders/s'],
    });
    const tag = (r: Ratio) => (r.startDelay ? ` (start delay ${r.startDelay})` : '');
    for (const r of report.ratios) {
      table.push([
        `Temporal floor${tag(r)}`,
        r.rate,
        x(r.vsFloor.p50),
        x(r.vsFloor.p99),
        x(r.vsFloor.throughput),
      ]);
    }
    for (const r of report.ratios) {
      table.push([
        `seeds design (cron)${tag(r)}`,
        r.rate,
        x(r.vsCron.p50),
        x(r.vsCron.p99),
        x(r.vsCron.throughput),
      ]);
    }
    out.push(table.toString());
  }

  if (report.goals.length > 0) {
    const table = newTable({
      head: [
        'issue 14 goals (this run)',
        'goal',
        'payrecon',
        'baseline',
        'ratio',
        'target',
        'verdict',
        'note',
      ],
    });
    for (const g of report.goals) {
      table.push([
        `payrecon${g.startDelay ? `, start delay ${g.startDelay}` : ''}${g.verifyNotices === 'always' ? ', verify always' : ''}`,
        `(${g.goal}) ${g.what}`,
        g.payrecon ?? '-',
        g.baseline ?? '-',
        x(g.ratio),
        g.target,
        g.verdict,
        g.note || '-',
      ]);
    }
    out.push(table.toString());
  }

  const fallbacks = [report.payrecon.fallback, report.cron?.fallback].filter((f): f is FallbackResult =>
    Boolean(f),
  );
  if (fallbacks.length > 0) {
    const table = newTable({
      head: [
        'fallback: notice dropped → PAID',
        'how',
        'orders',
        'settled',
        'p50 ms',
        'p95 ms',
        'max ms',
        'provider queries/order',
      ],
    });
    for (const f of fallbacks) {
      table.push([
        f.design,
        f.mechanism,
        f.orders,
        f.settled,
        f.latency.p50,
        f.latency.p95,
        f.latency.max,
        f.providerQueriesPerOrder,
      ]);
    }
    out.push(table.toString());
    const q = report.neverPaidQueries;
    if (q) {
      out.push(
        `an order never paid costs, over its ${q.deadlineMin} min deadline, ${q.payrecon} provider queries on payrecon's ladder (+1 close) and ${q.cron} on a ${q.cronIntervalS} s scan (computed)`,
      );
    }
  }

  if (report.scale.length > 0) {
    const table = newTable({
      head: [
        'scale: waiting orders',
        'started',
        'starts/s',
        'waiting at once',
        'first task lag p50 / p99 ms',
        'worker caught up after s',
        'worker MiB waiting / peak',
        'server MiB before / waiting',
        'cache',
        'sampled timers fired',
        'fire rate/s',
        'timer late p50 / p99 / max ms',
        'processed late p99 ms',
        'outcome',
      ],
    });
    for (const s of report.scale) {
      table.push([
        s.target,
        s.started,
        s.startRate,
        s.waitingAtOnce,
        `${s.firstTaskLag?.p50 ?? '-'} / ${s.firstTaskLag?.p99 ?? '-'}`,
        s.catchUpSeconds ?? '-',
        `${mb(s.workerRssWaitingMb)} / ${mb(s.workerPeakMb)}`,
        `${mb(s.serverRssBeforeMb)} / ${mb(s.serverRssWaitingMb)}`,
        s.workerCache,
        `${s.fired}/${s.sampled}`,
        s.fireRate,
        `${s.timerLateness.p50} / ${s.timerLateness.p99} / ${s.timerLateness.max}`,
        s.processedLateness.p99,
        s.note ? `${s.outcome}: ${s.note}` : s.outcome,
      ]);
    }
    out.push(table.toString());
  }

  if (report.scaleReal && report.scaleReal.runs.length > 0) out.push(renderScaleReal(report.scaleReal.runs));
  if (report.notify) out.push(...renderNotify(report.notify));
  if (report.recon) out.push(...renderRecon(report.recon));
  return out.join('\n');
}

const ms1 = (value: number) => (value >= 100 ? Math.round(value).toLocaleString('en-US') : String(value));

function renderNotify(n: NotifyResult): string[] {
  const out: string[] = [];
  const table = newTable({
    head: [
      `merchant notification ladder (${n.events} events at ${n.rate}/s; ladder ${n.ladder} × ${n.ladderScale})`,
      'events',
      'delivered',
      'attempts at merchant',
      'retries measured',
      'retry late p50 / p95 / p99 / max ms',
      'merchant-seen extra wait p50 / p99 / max ms',
      'span s',
      'server CPU ms/event (less its idle rate)',
      'worker or consumer CPU ms/event',
      'per event: history events (wf tasks / activities / local / timers), or broker messages',
      'machine busy %',
    ],
  });
  for (const d of n.designs) {
    const l = d.lateness;
    const m = d.merchantSeen;
    const h = d.history;
    table.push([
      d.design === 'payrecon'
        ? 'payrecon: workflow + durable timers'
        : 'seed: 1 delay queue, per-message TTL + DLX',
      d.events,
      d.exhausted > 0 ? `${d.delivered} (${d.exhausted} exhausted)` : d.delivered,
      d.attempts,
      l.count,
      `${ms1(l.p50)} / ${ms1(l.p95)} / ${ms1(l.p99)} / ${ms1(l.max)}`,
      `${ms1(m.p50)} / ${ms1(m.p99)} / ${ms1(m.max)}`,
      d.spanS,
      `${d.serverCpuMsPerEvent ?? '-'} (net of idle ${d.serverCpuNetMsPerEvent ?? '-'})`,
      d.processCpuMsPerEvent ?? '-',
      h
        ? `${h.events} events (${h.workflowTasks} / ${h.activityTasks} / ${h.localActivities} / ${h.timers})`
        : `${d.brokerMessagesPerEvent ?? '-'} messages`,
      d.machineBusyPct ?? '-',
    ]);
  }
  out.push(table.toString());

  const steps = [...new Set(n.designs.flatMap((d) => d.byStep.map((s) => s.stepMs)))].sort((a, b) => a - b);
  if (steps.length > 0) {
    const byStep = newTable({
      head: [
        'retry late by ladder step: p50 / p99 / max ms (count)',
        ...steps.map((s) => `after ${s / 1000}s`),
      ],
    });
    for (const d of n.designs) {
      byStep.push([
        d.design,
        ...steps.map((stepMs) => {
          const s = d.byStep.find((b) => b.stepMs === stepMs);
          return s ? `${ms1(s.p50)} / ${ms1(s.p99)} / ${ms1(s.max)} (${s.count})` : '-';
        }),
      ]);
    }
    out.push(byStep.toString());
  }
  const r = n.ratio;
  out.push(
    `seed ÷ payrecon in this run: retry lateness p50 ${x(r.p50)}, p99 ${x(r.p99)}, max ${x(r.max)}; merchant-seen p99 ${x(r.merchantSeenP99)}; server CPU/event ${x(r.serverCpu)} (net of idle ${x(r.serverCpuNet)}); consumer ÷ worker CPU/event ${x(r.processCpu)}`,
  );
  for (const d of n.designs) {
    out.push(
      `  ${d.design}: server ${d.server}, idle ${d.serverIdleCpuMsPerS ?? '-'} ms CPU/s; span ${d.spanS} s (first event → last settled)`,
    );
    const fired = d.byStep.filter((s) => s.timerFired);
    if (fired.length > 0) {
      out.push(
        `  ${d.design}: of which timer due → TimerFired by step: ${fired.map((s) => `${s.stepMs / 1000}s p50 ${s.timerFired?.p50} / p99 ${s.timerFired?.p99} ms`).join(', ')}`,
      );
    }
    for (const [name, c] of Object.entries(d.components)) {
      out.push(`  ${d.design}: ${name} p50 ${c.p50} ms, p99 ${c.p99} ms, max ${c.max} ms`);
    }
    if (d.errors.length > 0) out.push(`  ${d.design} errors: ${d.errors.join('; ')}`);
  }
  if (n.chart) out.push(`chart: ${n.chart}`);
  return out;
}

function renderRecon(r: ReconResult): string[] {
  const out: string[] = [];
  const s = (ms: number | undefined) => (ms === undefined ? '-' : (ms / 1000).toFixed(1));
  const table = newTable({
    head: [
      'daily reconciliation',
      'statement rows',
      'MiB',
      'wall s',
      'rows/s',
      'fetch + store s',
      'stage (COPY) s',
      'match s',
      'heal s',
      'other s',
      'worker MiB start / peak / VmHWM',
      'simulator MiB peak',
      'CPU s: worker / postgres',
      'breaks (as seeded?)',
    ],
  });
  const phase = (run: ReconResult['runs'][number], name: string) =>
    run.phases.find((p) => p.activity === name)?.ms;
  for (const run of r.runs) {
    const w = run.worker;
    table.push([
      `payrecon ${run.rows.toLocaleString('en-US')} (${run.billDate})${run.seed.reused ? '' : `, seeded in ${run.seed.seconds.toFixed(0)} s`}`,
      run.statementRows.toLocaleString('en-US'),
      run.statementMb,
      run.wallS,
      run.rowsPerS.toLocaleString('en-US'),
      s(phase(run, 'fetchStatement')),
      s(phase(run, 'stageStatement')),
      s(phase(run, 'matchStatement')),
      s(phase(run, 'healBreaks')),
      s(run.otherMs),
      `${mb(w.startMb)} / ${mb(w.peakMb)} / ${mb(w.hwmMb)}`,
      mb(run.simulator.peakMb),
      `${run.workerCpuS ?? '-'} / ${run.postgresCpuS ?? '-'}`,
      `${run.summary.totalBreaks} (${run.breaksOk ? 'yes' : 'NO'})`,
    ]);
  }
  const n = r.naive;
  if (n) {
    table.push([
      `naive: 1 SELECT per row, ${n.concurrency} in flight (${n.billDate})`,
      n.rows.toLocaleString('en-US'),
      '-',
      n.elapsedS,
      n.rowsPerS.toLocaleString('en-US'),
      `(first row after ${n.firstRowS})`,
      '-',
      '-',
      '-',
      '-',
      `${mb(n.process.startMb)} / ${mb(n.process.peakMb)} / ${mb(n.process.hwmMb)}`,
      mb(n.simulator.peakMb),
      `${n.cpuS ?? '-'} / ${n.postgresCpuS ?? '-'}`,
      `${n.amountMismatches} amount (${n.amountMismatches === n.expectedAmountMismatches ? 'yes' : 'NO'})`,
    ]);
  }
  out.push(table.toString());
  const last = r.runs[r.runs.length - 1];
  const first = r.runs[0];
  out.push(
    `in this run: worker peak RSS ${last?.rows.toLocaleString('en-US')} ÷ ${first?.rows.toLocaleString('en-US')} rows ${x(r.ratio.workerPeakRss)} (VmHWM ${x(r.ratio.hwm)}); payrecon ÷ naive rows/s ${x(r.ratio.rowsPerS)}; ${r.database}, ${r.temporalServer}, midnight edge ${r.midnightEdgeMs / 60_000} min`,
  );
  out.push(`planner statistics at the match: ${r.statistics}`);
  for (const e of r.errors) out.push(`  FAILED: ${e}`);
  if (r.chart) out.push(`chart: ${r.chart}`);
  return out;
}

/** Writes the report as JSON; returns the path (main.ts then draws the chart beside it: chart.ts). */
export function writeReport(report: BenchReport, file?: string): string {
  const target =
    file ??
    path.join(ROOT, 'tools', 'bench', 'results', `bench-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(target), { recursive: true });
  writeFileSync(target, `${JSON.stringify(report, null, 2)}\n`);
  return target;
}
