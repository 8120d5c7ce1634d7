import type { ReconResult, RssSeries } from './recon';

/**
 * The reconciliation phase as an SVG, in notify-chart.ts's style: left, statement rows per second of
 * each run (payrecon at each size, the naive loop); right, the RSS of each run's process over its run
 * (200 ms samples; the simulator dashed). Rebuilt from the JSON's `recon` section alone.
 */

const WIDTH = 1000;
const HEIGHT = 500;
const PAD = { top: 64, bottom: 110 };
const LEFT = { x: 70, w: 300 };
const RIGHT = { x: 470, w: 500 };
const COLOURS = ['#1f77b4', '#2ca02c', '#9467bd', '#8c564b'];
const NAIVE = '#d62728';

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** A round axis maximum at or above `value`: 1, 2 or 5 × a power of ten. */
function niceMax(value: number): number {
  const power = 10 ** Math.floor(Math.log10(Math.max(1, value)));
  return ([1, 2, 5, 10].find((m) => m * power >= value) ?? 10) * power;
}

export function renderReconChart(recon: ReconResult): string {
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const bars = [
    ...recon.runs.map((r, i) => ({
      label: `payrecon ${fmt(r.rows)}`,
      value: r.rowsPerS,
      colour: COLOURS[i % COLOURS.length] ?? '#333',
    })),
    ...(recon.naive
      ? [{ label: `naive (${fmt(recon.naive.rows)})`, value: recon.naive.rowsPerS, colour: NAIVE }]
      : []),
  ];
  const lines: { label: string; series: RssSeries; colour: string; dashed?: boolean }[] = [
    ...recon.runs.map((r, i) => ({
      label: `worker, ${fmt(r.rows)} rows (peak ${fmt(r.worker.peakMb ?? 0)} MiB)`,
      series: r.worker.series,
      colour: COLOURS[i % COLOURS.length] ?? '#333',
    })),
    ...(recon.naive
      ? [
          {
            label: `naive loop (peak ${fmt(recon.naive.process.peakMb ?? 0)} MiB)`,
            series: recon.naive.process.series,
            colour: NAIVE,
          },
        ]
      : []),
    ...recon.runs.slice(-1).map((r) => ({
      label: `simulator, ${fmt(r.rows)} rows (peak ${fmt(r.simulator.peakMb ?? 0)} MiB)`,
      series: r.simulator.series,
      colour: '#7f7f7f',
      dashed: true,
    })),
  ];

  const out: string[] = [];
  const last = recon.runs[recon.runs.length - 1];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${LEFT.x}" y="20" font-size="14" font-weight="bold">Daily reconciliation: statement rows per second, and memory while it runs</text>`,
    `<text x="${LEFT.x}" y="38" fill="#555">${escapeXml(
      `${last ? `${fmt(last.rows)} rows in ${last.wallS} s` : ''}; worker peak RSS ratio ${recon.ratio.workerPeakRss ?? '-'}× across sizes; payrecon ÷ naive rows/s ${recon.ratio.rowsPerS ?? '-'}×`,
    )}</text>`,
  );

  // Left: rows/s bars.
  const yMax = niceMax(Math.max(1, ...bars.map((b) => b.value)));
  const yBar = (v: number) => PAD.top + plotH - (v / yMax) * plotH;
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    out.push(
      `<line x1="${LEFT.x}" y1="${yBar(v)}" x2="${LEFT.x + LEFT.w}" y2="${yBar(v)}" stroke="#eee"/>`,
      `<text x="${LEFT.x - 6}" y="${yBar(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  const slot = LEFT.w / Math.max(1, bars.length);
  bars.forEach((b, i) => {
    const bx = LEFT.x + i * slot + slot * 0.15;
    const bw = slot * 0.7;
    out.push(
      `<rect x="${bx.toFixed(1)}" y="${yBar(b.value).toFixed(1)}" width="${bw.toFixed(1)}" height="${(PAD.top + plotH - yBar(b.value)).toFixed(1)}" fill="${b.colour}"/>`,
      `<text x="${(bx + bw / 2).toFixed(1)}" y="${(yBar(b.value) - 4).toFixed(1)}" text-anchor="middle">${fmt(b.value)}</text>`,
      `<text x="${(bx + bw / 2).toFixed(1)}" y="${PAD.top + plotH + 16}" text-anchor="middle">${escapeXml(b.label)}</text>`,
    );
  });
  out.push(
    `<rect x="${LEFT.x}" y="${PAD.top}" width="${LEFT.w}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<text x="${LEFT.x + LEFT.w / 2}" y="${PAD.top + plotH + 36}" text-anchor="middle">statement rows / s (wall time, end to end)</text>`,
  );

  // Right: RSS over time.
  const tMax = Math.max(1, ...lines.flatMap((l) => l.series.map(([t]) => t)));
  const mMax = niceMax(Math.max(1, ...lines.flatMap((l) => l.series.map(([, mb]) => mb))));
  const xr = (t: number) => RIGHT.x + (t / tMax) * RIGHT.w;
  const yr = (mb: number) => PAD.top + plotH - (mb / mMax) * plotH;
  for (let i = 0; i <= 4; i++) {
    const v = (mMax * i) / 4;
    out.push(
      `<line x1="${RIGHT.x}" y1="${yr(v)}" x2="${RIGHT.x + RIGHT.w}" y2="${yr(v)}" stroke="#eee"/>`,
      `<text x="${RIGHT.x - 6}" y="${yr(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
    const t = (tMax * i) / 4;
    out.push(`<text x="${xr(t)}" y="${PAD.top + plotH + 16}" text-anchor="middle">${t.toFixed(0)} s</text>`);
  }
  for (const line of lines) {
    if (line.series.length === 0) continue;
    const points = line.series.map(([t, mb]) => `${xr(t).toFixed(1)},${yr(mb).toFixed(1)}`).join(' ');
    out.push(
      `<polyline fill="none" stroke="${line.colour}" stroke-width="2"${line.dashed ? ' stroke-dasharray="5,4"' : ''} points="${points}"/>`,
    );
  }
  out.push(
    `<rect x="${RIGHT.x}" y="${PAD.top}" width="${RIGHT.w}" height="${plotH}" fill="none" stroke="#888"/>`,
    `<text x="${RIGHT.x + RIGHT.w / 2}" y="${PAD.top + plotH + 36}" text-anchor="middle">RSS (MiB, VmRSS every 200 ms) against seconds since the run started</text>`,
  );
  lines.forEach((line, i) => {
    const lx = RIGHT.x + (i % 2) * (RIGHT.w / 2);
    const ly = PAD.top + plotH + 60 + Math.floor(i / 2) * 18;
    out.push(
      `<line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${line.colour}" stroke-width="3"${line.dashed ? ' stroke-dasharray="5,4"' : ''}/>`,
      `<text x="${lx + 26}" y="${ly}">${escapeXml(line.label)}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
