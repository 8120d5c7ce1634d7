import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type * as Vega from 'vega';
// vega-lite's types are under its package exports only, which this project's node10 resolution does not read.
import type * as VegaLite from 'vega-lite/build/index';
import type { BenchReport } from './report';
import { payreconRowName } from './report';

/**
 * The bench run as one chart: a Vega-Lite spec built from the run's JSON alone (so an old run can be
 * drawn again: `npm run bench:chart -- <results.json>`), rendered to SVG by Vega without a canvas
 * (renderer 'none') and rasterised to PNG by resvg. Each panel is drawn only when the run measured it.
 */

/** Panel titles; test/bench-chart.test.ts checks each one appears. */
export const PANEL_TITLES = {
  latency: 'End to end: pay sent → PAID, latency percentiles against offered rate',
  throughput: 'Throughput: settled orders/s against offered rate',
  machineCpu: 'Whole-machine CPU per MQ-settled order',
  breakdown: 'payrecon: where the time goes (medians of sampled histories)',
  fallback: 'Fallback: dropped notice → PAID',
  notifySteps: 'Merchant notification retries: lateness by ladder step',
  notifyCdf: 'Merchant notification retries: share of retries at most x late',
  reconRate: 'Daily reconciliation: statement rows per second',
  reconRss: 'Daily reconciliation: memory (RSS) while it runs',
  scaleLateness: 'Scale probe: timer lateness and first-task lag',
  scaleMemory: 'Scale probe: memory while all orders wait',
  scaleRealLateness: 'Scale, real order workflow: how late the first tasks, timers and checks ran',
  scaleRealQueries: 'Scale, real order workflow: provider queries made and due',
  scaleRealMemory: 'Scale, real order workflow: memory',
} as const;

/** Names the report tables use for the baselines (report.ts). */
export const FLOOR_NAME = 'Temporal floor (signal → activity)';
export const CRON_NAME = 'seeds: consumer + 20 s cron';
export const NOTIFY_NAMES: Record<string, string> = {
  payrecon: 'payrecon: workflow + durable timers',
  'ttl-dlx': 'seed: one delay queue, per-message TTL + DLX',
};

/** PNG pixels per SVG unit: sharp enough to read a legend in a README. */
export const PNG_SCALE = 1.5;
const FONT = 'DejaVu Sans';

const PAYRECON_COLOURS = ['#1f77b4', '#2ca02c', '#9467bd', '#17becf', '#8c564b', '#e377c2', '#bcbd22'];
const BASELINE_COLOURS: Record<string, string> = {
  [FLOOR_NAME]: '#ff7f0e',
  [CRON_NAME]: '#d62728',
  [NOTIFY_NAMES['ttl-dlx'] as string]: '#d62728',
};

/** The JSON of any run, old or new: every section may be missing. */
export type ChartInput = Partial<BenchReport>;

type Spec = Record<string, unknown>;
type Row = Record<string, string | number | null>;

/** A colour scale for these design names: baselines keep their colour in every panel, payrecon's variants
 * take blues and greens in order. */
function colours(names: string[]) {
  const domain = [...new Set(names)];
  let next = 0;
  const range = domain.map(
    (name) => BASELINE_COLOURS[name] ?? PAYRECON_COLOURS[next++ % PAYRECON_COLOURS.length] ?? '#333',
  );
  return { domain, range };
}

/** The colour channel every panel uses: one colour per design, the baselines' fixed. */
function designColour(names: string[]) {
  return { field: 'design', type: 'nominal', scale: colours(names), legend: legend('design') };
}

/** The offered-rate x axis of the end-to-end panels (whole numbers: d3's ~g writes 10 as 1e+1). */
const RATE_AXIS = {
  field: 'rate',
  type: 'quantitative',
  title: 'offered rate (orders/s)',
  axis: { format: 'd' },
} as const;

const legend = (title: string) => ({
  title,
  orient: 'bottom',
  direction: 'vertical',
  labelLimit: 700,
  titleLimit: 700,
});

/** A log scale when the values span more than a factor of 20 (log needs positive values: each panel
 * draws values below 1 at 1). */
function yScale(values: number[]): { type: 'log' | 'linear' } {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return { type: 'linear' };
  return Math.max(...positive) / Math.max(1, Math.min(...positive)) > 20
    ? { type: 'log' }
    : { type: 'linear' };
}
const axisTitle = (base: string, scale: { type: string }) =>
  scale.type === 'log' ? `${base}, log scale` : base;
const atLeastOne = (ms: number) => Math.max(1, ms);

const fmtMs = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

/** Every end-to-end row of the run with its design's name (the table's names). */
function e2eRows(report: ChartInput) {
  const rows: {
    design: string;
    rate: number;
    throughput: number;
    latency: { p50: number; p95: number; p99: number; max: number };
    machineCpuMsPerMqOrder: number | null;
    breakdown: NonNullable<BenchReport['payrecon']['e2e'][number]['breakdown']> | null;
  }[] = [];
  const variant = report.payrecon?.variant ?? { name: 'defaults' };
  const cpu = (r: object) => {
    const value = (r as { machineCpuMsPerMqOrder?: number | null }).machineCpuMsPerMqOrder;
    return typeof value === 'number' ? value : null;
  };
  for (const r of report.payrecon?.e2e ?? []) {
    rows.push({
      design: payreconRowName(variant, r),
      rate: r.offeredRate,
      throughput: r.throughput,
      latency: r.latency,
      machineCpuMsPerMqOrder: cpu(r),
      breakdown: r.breakdown ?? null,
    });
  }
  for (const r of report.floor ?? []) {
    rows.push({
      design: FLOOR_NAME,
      rate: r.offeredRate,
      throughput: r.throughput,
      latency: r.latency,
      machineCpuMsPerMqOrder: null,
      breakdown: null,
    });
  }
  for (const r of report.cron?.e2e ?? []) {
    rows.push({
      design: CRON_NAME,
      rate: r.offeredRate,
      throughput: r.throughput,
      latency: r.latency,
      machineCpuMsPerMqOrder: cpu(r),
      breakdown: null,
    });
  }
  return rows.filter((r) => r.rate > 0);
}

function latencyPanel(rows: ReturnType<typeof e2eRows>): Spec | null {
  if (rows.length === 0) return null;
  const data: Row[] = rows.flatMap((r) =>
    (['p50', 'p95', 'p99'] as const).map((p) => ({
      design: r.design,
      rate: r.rate,
      percentile: p,
      ms: atLeastOne(r.latency[p]),
    })),
  );
  const scale = yScale(data.map((d) => Number(d.ms)));
  return {
    title: {
      text: PANEL_TITLES.latency,
      subtitle: 'one line per design; a rate run twice gives two points',
      anchor: 'start',
    },
    data: { values: data },
    facet: {
      column: {
        field: 'percentile',
        type: 'nominal',
        sort: ['p50', 'p95', 'p99'],
        header: { title: null, labelFontSize: 13, labelFontWeight: 'bold' },
      },
    },
    spec: {
      width: 240,
      height: 220,
      mark: { type: 'line', point: { size: 50 } },
      encoding: {
        x: { ...RATE_AXIS, scale: { zero: true } },
        y: {
          field: 'ms',
          type: 'quantitative',
          title: `${axisTitle('pay sent → PAID (ms', scale)})`,
          scale,
        },
        color: designColour(rows.map((r) => r.design)),
        order: { field: 'rate' },
      },
    },
  };
}

function throughputPanel(rows: ReturnType<typeof e2eRows>): Spec | null {
  if (rows.length === 0) return null;
  const maxRate = Math.max(...rows.map((r) => r.rate));
  return {
    title: {
      text: PANEL_TITLES.throughput,
      subtitle: 'dashed: settled = offered (below the ceiling)',
      anchor: 'start',
    },
    width: 300,
    height: 220,
    layer: [
      {
        data: {
          values: [
            { rate: 0, settled: 0 },
            { rate: maxRate, settled: maxRate },
          ],
        },
        mark: { type: 'line', color: '#999', strokeDash: [4, 4] },
        encoding: {
          x: { field: 'rate', type: 'quantitative' },
          y: { field: 'settled', type: 'quantitative' },
        },
      },
      {
        data: { values: rows.map((r) => ({ design: r.design, rate: r.rate, settled: r.throughput })) },
        mark: { type: 'line', point: { size: 50 } },
        encoding: {
          x: RATE_AXIS,
          y: { field: 'settled', type: 'quantitative', title: 'settled (orders/s)' },
          color: designColour(rows.map((r) => r.design)),
          order: { field: 'rate' },
        },
      },
    ],
  };
}

function machineCpuPanel(rows: ReturnType<typeof e2eRows>): Spec | null {
  const measured = rows.filter((r) => r.machineCpuMsPerMqOrder !== null);
  if (measured.length === 0) return null;
  return {
    title: {
      text: PANEL_TITLES.machineCpu,
      subtitle: 'busy CPU of every process on the machine over the phase ÷ orders settled by MQ',
      anchor: 'start',
    },
    width: 300,
    height: 220,
    data: {
      values: measured.map((r) => ({ design: r.design, rate: r.rate, cpu: r.machineCpuMsPerMqOrder })),
    },
    mark: { type: 'line', point: { size: 50 } },
    encoding: {
      x: RATE_AXIS,
      y: { field: 'cpu', type: 'quantitative', title: 'CPU ms per MQ-settled order' },
      color: designColour(measured.map((r) => r.design)),
      order: { field: 'rate' },
    },
  };
}

function breakdownPanel(rows: ReturnType<typeof e2eRows>): Spec | null {
  const sampled = rows.filter((r) => r.breakdown);
  if (sampled.length === 0) return null;
  const parts = [
    'pay sent → signal',
    'signal → workflow task',
    'that task (incl. DB writes)',
    'rest → completed',
  ];
  const data: Row[] = sampled.flatMap((r, index) => {
    const b = r.breakdown;
    if (!b) return [];
    const toTask = b.signalToTask ?? 0;
    const task = b.taskRun ?? 0;
    const rest = Math.max(0, b.signalToCompleted - toTask - task);
    const label = `${r.design} @ ${r.rate}/s`;
    return [b.toSignal, toTask, task, rest].map((ms, i) => ({
      row: label,
      index,
      part: parts[i] ?? '',
      order: i,
      ms,
    }));
  });
  return {
    title: {
      text: PANEL_TITLES.breakdown,
      subtitle: 'medians of each part, stacked: pay request sent → workflow completed',
      anchor: 'start',
    },
    width: 520,
    height: { step: 18 },
    data: { values: data },
    mark: 'bar',
    encoding: {
      y: { field: 'row', type: 'nominal', title: null, sort: { field: 'index' }, axis: { labelLimit: 520 } },
      x: { field: 'ms', type: 'quantitative', title: 'ms (medians, stacked)', stack: 'zero' },
      color: {
        field: 'part',
        type: 'nominal',
        sort: parts,
        scale: { domain: parts, range: ['#9ecae1', '#fd8d3c', '#31a354', '#bdbdbd'] },
        legend: legend('part'),
      },
      order: { field: 'order' },
    },
  };
}

function fallbackPanel(report: ChartInput): Spec | null {
  const fallbacks = [
    report.payrecon?.fallback ? { ...report.payrecon.fallback, name: payreconName(report) } : null,
    report.cron?.fallback ? { ...report.cron.fallback, name: CRON_NAME } : null,
  ].filter((f): f is NonNullable<typeof f> => f !== null && f.settled > 0);
  if (fallbacks.length === 0) return null;
  const stats = ['p50', 'p95', 'p99', 'max'] as const;
  const data: Row[] = fallbacks.flatMap((f) =>
    stats.map((s) => ({ design: f.name, stat: s, ms: f.latency[s], label: fmtMs(f.latency[s]) })),
  );
  const colour = colours(fallbacks.map((f) => f.name));
  return {
    title: {
      text: PANEL_TITLES.fallback,
      subtitle: fallbacks.map(
        (f) =>
          `${f.name}: ${f.mechanism}; ${f.settled}/${f.orders} settled, ${f.providerQueriesPerOrder} provider queries/order`,
      ),
      anchor: 'start',
    },
    width: 360,
    height: 220,
    data: { values: data },
    encoding: {
      x: { field: 'stat', type: 'nominal', sort: [...stats], title: 'percentile', axis: { labelAngle: 0 } },
      xOffset: { field: 'design', type: 'nominal' },
      y: { field: 'ms', type: 'quantitative', title: 'dropped notice → PAID (ms)' },
      color: { field: 'design', type: 'nominal', scale: colour, legend: legend('design') },
    },
    layer: [
      { mark: 'bar' },
      {
        mark: { type: 'text', dy: -6, fontSize: 10 },
        encoding: { text: { field: 'label' } },
      },
    ],
  };
}

const payreconName = (report: ChartInput) => `payrecon (${report.payrecon?.variant?.name ?? 'defaults'})`;

function notifyPanels(report: ChartInput): Spec[] {
  const notify = report.notify;
  if (!notify || notify.designs.length === 0) return [];
  const name = (design: string) => NOTIFY_NAMES[design] ?? design;
  const colour = colours(notify.designs.map((d) => name(d.design)));
  const panels: Spec[] = [];
  const subtitle = `${notify.events} events at ${notify.rate}/s, ladder ${notify.ladder} × ${notify.ladderScale} (${notify.ladderMs.map((s) => `${s / 1000}s`).join(' ')}); the merchant fails each event's first k attempts, k ∈ {${Object.keys(notify.failFirstMix).join(',')}}`;
  const steps: Row[] = notify.designs.flatMap((d) =>
    d.byStep.flatMap((s) =>
      (['p50', 'p99', 'max'] as const).map((stat) => ({
        design: name(d.design),
        stepMs: s.stepMs,
        step: `${s.stepMs / 1000} s`,
        stat,
        ms: atLeastOne(s[stat]),
        count: s.count,
      })),
    ),
  );
  if (steps.length > 0) {
    const scale = yScale(steps.map((s) => Number(s.ms)));
    const order = [...new Set(notify.designs.flatMap((d) => d.byStep.map((s) => s.stepMs)))]
      .sort((a, b) => a - b)
      .map((ms) => `${ms / 1000} s`);
    panels.push({
      title: { text: PANEL_TITLES.notifySteps, subtitle, anchor: 'start' },
      data: { values: steps },
      facet: {
        column: {
          field: 'stat',
          type: 'nominal',
          sort: ['p50', 'p99', 'max'],
          header: { title: null, labelFontSize: 13, labelFontWeight: 'bold' },
        },
      },
      spec: {
        width: 220,
        height: 200,
        mark: { type: 'line', point: { size: 50 } },
        encoding: {
          x: {
            field: 'step',
            type: 'ordinal',
            sort: order,
            title: 'ladder step (wait before the retry)',
            axis: { labelAngle: 0 },
          },
          y: { field: 'ms', type: 'quantitative', title: `${axisTitle('retry late (ms', scale)})`, scale },
          color: { field: 'design', type: 'nominal', scale: colour, legend: legend('design') },
        },
      },
    });
  }
  const cdf: Row[] = notify.designs.flatMap((d) =>
    d.cdf.map((ms, percent) => ({ design: name(d.design), percent, ms: atLeastOne(ms) })),
  );
  if (cdf.length > 0) {
    panels.push({
      title: {
        text: PANEL_TITLES.notifyCdf,
        subtitle: notify.designs.map(
          (d) =>
            `${name(d.design)}: p50 ${fmtMs(d.lateness.p50)}, p99 ${fmtMs(d.lateness.p99)}, max ${fmtMs(d.lateness.max)} (${d.lateness.count} retries)`,
        ),
        anchor: 'start',
      },
      width: 420,
      height: 240,
      data: { values: cdf },
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: {
          field: 'ms',
          type: 'quantitative',
          title: 'retry went out − its due time (ms, log scale; under 1 ms drawn at 1)',
          scale: { type: 'log' },
        },
        y: { field: 'percent', type: 'quantitative', title: 'retries at most that late (%)' },
        color: { field: 'design', type: 'nominal', scale: colour, legend: legend('design') },
        order: { field: 'percent' },
      },
    });
  }
  return panels;
}

function reconPanels(report: ChartInput): Spec[] {
  const recon = report.recon;
  if (!recon || (recon.runs.length === 0 && !recon.naive)) return [];
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  const bars = [
    ...recon.runs.map((r) => ({ run: `payrecon, ${n(r.rows)} rows`, rowsPerS: r.rowsPerS, wallS: r.wallS })),
    ...(recon.naive
      ? [
          {
            run: `naive loop, ${n(recon.naive.rows)} rows`,
            rowsPerS: recon.naive.rowsPerS,
            wallS: recon.naive.elapsedS,
          },
        ]
      : []),
  ];
  const barColour = colours(bars.map((b) => b.run));
  barColour.range = barColour.domain.map((d, i) =>
    d.startsWith('naive') ? '#d62728' : (PAYRECON_COLOURS[i % PAYRECON_COLOURS.length] ?? '#333'),
  );
  const panels: Spec[] = [
    {
      title: {
        text: PANEL_TITLES.reconRate,
        subtitle: [
          `in this run: payrecon ÷ naive rows/s ${recon.ratio.rowsPerS ?? '-'}×; worker peak RSS largest ÷ smallest day ${recon.ratio.workerPeakRss ?? '-'}×`,
          `${recon.database}; ${recon.temporalServer}`,
        ],
        anchor: 'start',
      },
      width: 340,
      height: 240,
      data: { values: bars.map((b) => ({ ...b, label: `${n(b.rowsPerS)}/s (${b.wallS} s)` })) },
      encoding: {
        x: {
          field: 'run',
          type: 'nominal',
          sort: bars.map((b) => b.run),
          title: null,
          axis: { labelAngle: 0, labelExpr: "split(datum.label, ', ')" },
        },
        y: { field: 'rowsPerS', type: 'quantitative', title: 'statement rows/s (wall time)' },
        color: { field: 'run', type: 'nominal', scale: barColour, legend: null },
      },
      layer: [
        { mark: 'bar' },
        { mark: { type: 'text', dy: -6, fontSize: 10 }, encoding: { text: { field: 'label' } } },
      ],
    },
  ];
  const mb = (v: number | null) => (v === null ? '-' : n(v));
  const series: { label: string; points: [number, number][]; dashed: boolean }[] = [
    ...recon.runs.map((r) => ({
      label: `worker, ${n(r.rows)} rows (peak ${mb(r.worker.peakMb)} MiB)`,
      points: r.worker.series,
      dashed: false,
    })),
    ...(recon.naive
      ? [
          {
            label: `naive loop, ${n(recon.naive.rows)} rows (peak ${mb(recon.naive.process.peakMb)} MiB)`,
            points: recon.naive.process.series,
            dashed: false,
          },
        ]
      : []),
    ...recon.runs.slice(-1).map((r) => ({
      label: `simulator, ${n(r.rows)} rows (peak ${mb(r.simulator.peakMb)} MiB)`,
      points: r.simulator.series,
      dashed: true,
    })),
  ].filter((s) => s.points.length > 0);
  if (series.length > 0) {
    const rssColour = {
      domain: series.map((s) => s.label),
      range: series.map((s, i) =>
        s.dashed
          ? '#7f7f7f'
          : s.label.startsWith('naive')
            ? '#d62728'
            : (PAYRECON_COLOURS[i % PAYRECON_COLOURS.length] ?? '#333'),
      ),
    };
    panels.push({
      title: {
        text: PANEL_TITLES.reconRss,
        subtitle: 'VmRSS every 200 ms of each run’s process; the simulator (serving the statement) dashed',
        anchor: 'start',
      },
      width: 440,
      height: 240,
      data: {
        values: series.flatMap((s) =>
          s.points.map(([t, mib]) => ({ series: s.label, t, mib, dashed: s.dashed })),
        ),
      },
      mark: { type: 'line' },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'seconds since the run started' },
        y: { field: 'mib', type: 'quantitative', title: 'RSS (MiB)' },
        color: { field: 'series', type: 'nominal', scale: rssColour, legend: legend('process') },
        strokeDash: {
          field: 'dashed',
          type: 'nominal',
          scale: {
            domain: [false, true],
            range: [
              [1, 0],
              [5, 4],
            ],
          },
          legend: null,
        },
        order: { field: 't' },
      },
    });
  }
  return panels;
}

/** The scale probe's design, should a run hold more than one (e.g. the real order workflow). */
const scaleDesign = (s: object) => {
  const named = s as { design?: unknown; workflow?: unknown };
  return typeof named.design === 'string'
    ? named.design
    : typeof named.workflow === 'string'
      ? named.workflow
      : 'reduced workflow (tools/bench/scale-workflows)';
};

function scalePanels(report: ChartInput): Spec[] {
  const scale = (report.scale ?? []).filter((s) => s.started > 0);
  if (scale.length === 0) return [];
  const designs = new Set(scale.map(scaleDesign));
  const series = (s: (typeof scale)[number], metric: string) =>
    designs.size > 1 ? `${scaleDesign(s)}: ${metric}` : metric;
  const lateness: Row[] = scale.flatMap((s) =>
    [
      ['timer due → task started, p50', s.timerLateness.p50],
      ['timer due → task started, p99', s.timerLateness.p99],
      ['timer due → worker processed, p99', s.processedLateness.p99],
      ['start → first task, p99', s.firstTaskLag?.p99 ?? null],
    ]
      .filter((m): m is [string, number] => typeof m[1] === 'number')
      .map(([metric, ms]) => ({ series: series(s, metric), waiting: s.target, ms: atLeastOne(ms) })),
  );
  const memory: Row[] = scale.flatMap((s) =>
    [
      ['worker RSS, all waiting', s.workerRssWaitingMb],
      ['worker RSS, peak', s.workerPeakMb],
      ['server RSS, all waiting', s.serverRssWaitingMb],
    ]
      .filter((m): m is [string, number] => typeof m[1] === 'number')
      .map(([metric, mib]) => ({ series: series(s, metric), waiting: s.target, mib })),
  );
  const targets = scale.map((s) => s.target);
  const xScale =
    Math.max(...targets) / Math.max(1, Math.min(...targets)) > 20 ? { type: 'log' } : { zero: true };
  const x = {
    field: 'waiting',
    type: 'quantitative',
    title: `waiting workflows${'type' in xScale ? ' (log scale)' : ''}`,
    scale: xScale,
  };
  const subtitle = `per size a fresh dev server and worker; ${scale[0]?.sampled ?? '-'} sampled timers due at ${scale[0]?.fireRate ?? '-'}/s while the rest wait`;
  const panels: Spec[] = [];
  if (lateness.length > 0) {
    const y = yScale(lateness.map((l) => Number(l.ms)));
    panels.push({
      title: { text: PANEL_TITLES.scaleLateness, subtitle, anchor: 'start' },
      width: 360,
      height: 220,
      data: { values: lateness },
      mark: { type: 'line', point: { size: 50 } },
      encoding: {
        x,
        y: {
          field: 'ms',
          type: 'quantitative',
          title: `${axisTitle('ms', y)}; under 1 drawn at 1`,
          scale: y,
        },
        color: { field: 'series', type: 'nominal', legend: legend('measure') },
        order: { field: 'waiting' },
      },
    });
  }
  if (memory.length > 0) {
    panels.push({
      title: {
        text: PANEL_TITLES.scaleMemory,
        subtitle: 'worker process and dedicated dev server',
        anchor: 'start',
      },
      width: 360,
      height: 220,
      data: { values: memory },
      mark: { type: 'line', point: { size: 50 } },
      encoding: {
        x,
        y: { field: 'mib', type: 'quantitative', title: 'RSS (MiB)' },
        color: { field: 'series', type: 'nominal', legend: legend('measure') },
        order: { field: 'waiting' },
      },
    });
  }
  return panels;
}

/** What the chart reads of a real-workflow scale run (report.scaleReal, tools/bench/scale-real.ts). */
interface ScaleRealRun {
  design: string;
  target: number;
  creationRate?: number;
  outcome?: string;
  firstTaskLag?: { p50: number; p99: number } | null;
  timerFiredLate?: { p50: number; p99: number } | null;
  firedToTask?: { p50: number; p99: number } | null;
  queryBehindSchedule?: { p50: number; p99: number } | null;
  queries?: { windowS: number; series: { t: number; achieved: number; demanded: number }[] } | null;
  worker?: Record<string, number | null> | null;
  server?: Record<string, number | null> | null;
}

function scaleRealPanels(report: ChartInput): Spec[] {
  const runs = ((report as { scaleReal?: { runs?: ScaleRealRun[] } | null }).scaleReal?.runs ?? []).filter(
    (r) => r.target > 0,
  );
  if (runs.length === 0) return [];
  const name = (r: ScaleRealRun) => `${r.target.toLocaleString('en-US')} orders, start delay ${r.design}`;
  const colour = colours(runs.map(name));
  const subtitle = runs.map((r) => `${name(r)}: created at ${r.creationRate ?? '-'}/s; ${r.outcome ?? '-'}`);
  const measures = [
    ['created → first workflow task', 'firstTaskLag'],
    ['timer due → TimerFired', 'timerFiredLate'],
    ['TimerFired → its task', 'firedToTask'],
    ['provider query behind its schedule', 'queryBehindSchedule'],
  ] as const;
  const lateness: Row[] = runs.flatMap((r) =>
    measures.flatMap(([measure, key]) => {
      const summary = r[key];
      if (!summary) return [];
      return (['p50', 'p99'] as const).map((stat) => ({
        run: name(r),
        measure,
        stat,
        ms: atLeastOne(summary[stat]),
      }));
    }),
  );
  const panels: Spec[] = [];
  if (lateness.length > 0) {
    panels.push({
      title: { text: PANEL_TITLES.scaleRealLateness, subtitle, anchor: 'start' },
      data: { values: lateness },
      facet: {
        column: {
          field: 'stat',
          type: 'nominal',
          sort: ['p50', 'p99'],
          header: { title: null, labelFontSize: 13, labelFontWeight: 'bold' },
        },
      },
      spec: {
        width: 300,
        height: { step: 34 },
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          y: {
            field: 'measure',
            type: 'nominal',
            sort: measures.map(([m]) => m),
            title: null,
            axis: { labelLimit: 300 },
          },
          yOffset: { field: 'run', type: 'nominal' },
          x: {
            field: 'ms',
            type: 'quantitative',
            title: 'ms (log scale; under 1 drawn at 1)',
            scale: { type: 'log' },
          },
          color: { field: 'run', type: 'nominal', scale: colour, legend: legend('run') },
        },
      },
    });
  }
  const queries: Row[] = runs.flatMap((r) =>
    (r.queries?.series ?? []).flatMap((point) =>
      (['achieved', 'demanded'] as const).map((kind) => ({
        run: name(r),
        kind: kind === 'achieved' ? 'made' : 'due (ladder)',
        t: point.t,
        perS: Math.round((point[kind] / Math.max(1, r.queries?.windowS ?? 10)) * 10) / 10,
      })),
    ),
  );
  if (queries.length > 0) {
    panels.push({
      title: {
        text: PANEL_TITLES.scaleRealQueries,
        subtitle: 'solid: queries made; dashed: queries the ladder had due (per window ÷ its seconds)',
        anchor: 'start',
      },
      width: 420,
      height: 220,
      data: { values: queries },
      mark: { type: 'line' },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'seconds since the burst started' },
        y: { field: 'perS', type: 'quantitative', title: 'provider queries/s' },
        color: { field: 'run', type: 'nominal', scale: colour, legend: legend('run') },
        strokeDash: {
          field: 'kind',
          type: 'nominal',
          scale: {
            domain: ['made', 'due (ladder)'],
            range: [
              [1, 0],
              [5, 4],
            ],
          },
          legend: legend('queries'),
        },
        order: { field: 't' },
      },
    });
  }
  const phases = [
    ['before', 'beforeMb'],
    ['after burst', 'afterBurstMb'],
    ['end', 'endMb'],
    ['peak', 'peakMb'],
  ] as const;
  const memory: Row[] = runs.flatMap((r) =>
    (['worker', 'server'] as const).flatMap((proc) =>
      phases.flatMap(([phase, key]) => {
        const mib = r[proc]?.[key];
        return typeof mib === 'number'
          ? [
              {
                run: name(r),
                proc: proc === 'worker' ? 'worker' : 'Temporal server',
                phase,
                mib: Math.round(mib),
              },
            ]
          : [];
      }),
    ),
  );
  if (memory.length > 0) {
    panels.push({
      title: {
        text: PANEL_TITLES.scaleRealMemory,
        subtitle: 'RSS of the worker process and the dedicated dev server',
        anchor: 'start',
      },
      data: { values: memory },
      facet: {
        column: {
          field: 'proc',
          type: 'nominal',
          header: { title: null, labelFontSize: 13, labelFontWeight: 'bold' },
        },
      },
      spec: {
        width: 220,
        height: 220,
        mark: 'bar',
        encoding: {
          x: {
            field: 'phase',
            type: 'nominal',
            sort: phases.map(([p]) => p),
            title: null,
            axis: { labelAngle: 0, labelExpr: "split(datum.label, ' the ')" },
          },
          xOffset: { field: 'run', type: 'nominal' },
          y: { field: 'mib', type: 'quantitative', title: 'RSS (MiB)' },
          color: { field: 'run', type: 'nominal', scale: colour, legend: legend('run') },
        },
      },
    });
  }
  return panels;
}

const INDEPENDENT = {
  scale: { color: 'independent', strokeDash: 'independent', x: 'independent', y: 'independent' },
  legend: { color: 'independent', strokeDash: 'independent' },
};

/** The Vega-Lite spec of a run: one row of panels per phase the run measured. */
export function benchChartSpec(report: ChartInput): VegaLite.TopLevelSpec {
  const e2e = e2eRows(report);
  const rows = [
    [latencyPanel(e2e), throughputPanel(e2e)],
    [machineCpuPanel(e2e), breakdownPanel(e2e)],
    [fallbackPanel(report), ...scalePanels(report)],
    notifyPanels(report),
    reconPanels(report),
    scaleRealPanels(report).slice(0, 2),
    scaleRealPanels(report).slice(2),
  ]
    .map((row) => row.filter((panel): panel is Spec => panel !== null))
    .filter((row) => row.length > 0);
  const m = report.machine;
  const load = report.load;
  const subtitle = [
    report.command ?? '',
    m ? `${m.cpus} × ${m.cpuModel}, ${m.memoryMb} MiB, node ${m.node}, ${m.temporalCli.split('\n')[0]}` : '',
    `Temporal server: ${String(report.options?.temporalServer ?? '-')}${load ? `; load average (1 min) during the run: min ${load.min.toFixed(2)}, mean ${load.mean.toFixed(2)}, max ${load.max.toFixed(2)}` : ''}`,
  ].filter(Boolean);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: `payrecon bench ${report.startedAt ?? ''}`.trim(),
      subtitle,
      anchor: 'start',
      fontSize: 18,
      subtitleFontSize: 12,
      offset: 16,
      // A long command line would otherwise widen the whole picture.
      limit: 1500,
    },
    background: 'white',
    padding: 16,
    spacing: 40,
    config: {
      font: FONT,
      title: { fontSize: 14, subtitleFontSize: 11, subtitleColor: '#555', orient: 'top', offset: 10 },
      axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
      legend: { labelFontSize: 11, titleFontSize: 12 },
      concat: { spacing: 48 },
    },
    vconcat:
      rows.length > 0
        ? rows.map((row) => ({ hconcat: row, spacing: 56, resolve: INDEPENDENT }))
        : [
            {
              mark: 'text',
              data: { values: [{ t: 'this run measured nothing to chart' }] },
              encoding: { text: { field: 't' } },
            },
          ],
    resolve: INDEPENDENT,
  };
  return spec as unknown as VegaLite.TopLevelSpec;
}

// vega and vega-lite are ES modules (vega-canvas has a top-level await): loaded with import(), which
// tsx and vitest keep as a real dynamic import in this CommonJS project (require() cannot load them).
const VEGA_LITE: string = 'vega-lite';
let modules: Promise<[typeof Vega, typeof VegaLite]> | undefined;
const load = () => {
  modules ??= Promise.all([import('vega'), import(VEGA_LITE) as Promise<typeof VegaLite>]);
  return modules;
};

export interface RenderedChart {
  svg: string;
  png: Buffer;
  /** The PNG's size in pixels: the SVG's size × PNG_SCALE. */
  width: number;
  height: number;
}

interface TextItem {
  fontSize?: number;
  fontWeight?: string | number;
}

/**
 * Without a canvas Vega guesses every text 0.8 em per character wide, far wider than DejaVu Sans (which
 * resvg draws with), so the layout leaves gaps. Vega takes a width function in its place (what vl-convert
 * does); these are DejaVu Sans's mean advances over the chart's kind of text, measured with resvg
 * (0.51 em regular, 0.57 em bold), rounded up.
 */
function dejaVuWidth(item: TextItem, text: string): number {
  const size = item.fontSize ?? 11;
  const weight = item.fontWeight;
  const bold = weight === 'bold' || (typeof weight === 'number' && weight >= 600) || weight === '600';
  return Math.ceil(String(text).length * size * (bold ? 0.59 : 0.53));
}

export async function renderBenchChart(report: ChartInput): Promise<RenderedChart> {
  const [vega, vl] = await load();
  const { Resvg } = await import('@resvg/resvg-js');
  (vega as unknown as { textMetrics: { width: typeof dejaVuWidth } }).textMetrics.width = dejaVuWidth;
  const compiled = vl.compile(benchChartSpec(report)).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    const image = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: PNG_SCALE },
      background: 'white',
      font: { loadSystemFonts: true, defaultFontFamily: FONT, sansSerifFamily: FONT },
    }).render();
    return { svg, png: image.asPng(), width: image.width, height: image.height };
  } finally {
    view.finalize();
  }
}

/** Draws the run's chart beside its JSON: <name>.svg and <name>.png; returns both paths. */
export async function writeBenchChart(
  report: ChartInput,
  jsonPath: string,
): Promise<{ svg: string; png: string }> {
  const chart = await renderBenchChart(report);
  const stem = jsonPath.replace(/\.json$/, '');
  mkdirSync(path.dirname(stem), { recursive: true });
  const files = { svg: `${stem}.svg`, png: `${stem}.png` };
  writeFileSync(files.svg, chart.svg);
  writeFileSync(files.png, chart.png);
  return files;
}

/** The bench's hook at the end of a run: the chart beside the JSON. A chart that fails is reported (the
 * JSON is written already, and `npm run bench:chart` draws it again); the run's exit code stays. */
export async function chartRun(
  report: ChartInput,
  jsonPath: string,
  log: (line: string) => void,
): Promise<void> {
  try {
    const files = await writeBenchChart(report, jsonPath);
    log(`chart: ${files.png} (and .svg)`);
  } catch (error) {
    console.error(
      `chart failed (redraw with npm run bench:chart -- ${jsonPath}): ${error instanceof Error ? error.stack : String(error)}`,
    );
  }
}
