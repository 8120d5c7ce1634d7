import type { NotifyResult } from './notify';

/**
 * The merchant notification phase as an SVG: for each design, the share of retries (y) that went out
 * at most x ms after they were due (x logarithmic). Written beside the run's JSON; rebuilt from the
 * JSON's `notify` section alone (its `cdf` arrays), so an old run can be drawn again.
 */

const WIDTH = 760;
const HEIGHT = 480;
const PAD = { left: 56, right: 32, top: 56, bottom: 104 };
const COLOURS: Record<string, string> = { payrecon: '#1f77b4', 'ttl-dlx': '#d62728' };
const NAMES: Record<string, string> = {
  payrecon: 'payrecon: durable timer per event',
  'ttl-dlx': 'seed: one delay queue, per-message TTL + DLX',
};

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderNotifyChart(notify: NotifyResult): string {
  const floor = 1;
  const top = Math.max(10, ...notify.designs.flatMap((d) => d.cdf));
  const decades = { from: 0, to: Math.ceil(Math.log10(top)) };
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (ms: number) =>
    PAD.left + ((Math.log10(Math.max(floor, ms)) - decades.from) / (decades.to - decades.from || 1)) * plotW;
  const y = (percent: number) => PAD.top + plotH - (percent / 100) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${PAD.left}" y="20" font-size="14" font-weight="bold">Merchant notification retries: how late after their due time</text>`,
    `<text x="${PAD.left}" y="38" fill="#555">${escapeXml(
      `${notify.events} events at ${notify.rate}/s, ladder ${notify.ladderMs.map((s) => `${s / 1000}s`).join(' ')}; the merchant fails the first k attempts, k ∈ {${Object.keys(notify.failFirstMix).join(',')}}`,
    )}</text>`,
  );
  // Grid: decades on x, quarters on y.
  for (let d = decades.from; d <= decades.to; d++) {
    const gx = x(10 ** d);
    const label = 10 ** d >= 1000 ? `${10 ** d / 1000} s` : `${10 ** d} ms`;
    out.push(
      `<line x1="${gx}" y1="${PAD.top}" x2="${gx}" y2="${PAD.top + plotH}" stroke="#ddd"/>`,
      `<text x="${gx}" y="${PAD.top + plotH + 16}" text-anchor="middle">${label}</text>`,
    );
  }
  for (const p of [0, 25, 50, 75, 90, 100]) {
    out.push(
      `<line x1="${PAD.left}" y1="${y(p)}" x2="${PAD.left + plotW}" y2="${y(p)}" stroke="${p === 50 || p === 90 ? '#bbb' : '#eee'}"/>`,
      `<text x="${PAD.left - 6}" y="${y(p) + 4}" text-anchor="end">${p}%</text>`,
    );
  }
  out.push(
    `<text x="${PAD.left + plotW / 2}" y="${PAD.top + plotH + 36}" text-anchor="middle">lateness: retry went out − its due time (log scale); y: share of retries at most that late</text>`,
    `<rect x="${PAD.left}" y="${PAD.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`,
  );
  notify.designs.forEach((design, i) => {
    if (design.cdf.length === 0) return;
    const colour = COLOURS[design.design] ?? '#333';
    // A step curve: p% of retries were at most cdf[p] late.
    const points = design.cdf.map((ms, p) => `${x(ms).toFixed(1)},${y(p).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.join(' ')}"/>`);
    const l = design.lateness;
    const fmt = (ms: number) => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);
    const ly = PAD.top + plotH + 64 + i * 18;
    out.push(
      `<line x1="${PAD.left + 10}" y1="${ly - 4}" x2="${PAD.left + 30}" y2="${ly - 4}" stroke="${colour}" stroke-width="3"/>`,
      `<text x="${PAD.left + 36}" y="${ly}">${escapeXml(
        `${NAMES[design.design] ?? design.design}: p50 ${fmt(l.p50)}, p99 ${fmt(l.p99)}, max ${fmt(l.max)} (${l.count} retries)`,
      )}</text>`,
    );
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
