import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { type ChartInput, PANEL_TITLES, PNG_SCALE, renderBenchChart } from '../tools/bench/chart';

// A real bench run, trimmed (test/fixtures/bench-chart.json): end to end with both start delays, the
// fallback, the scale probe, the notification ladder, the reconciliation and the real-workflow scale probe.
const fixture = JSON.parse(
  readFileSync(path.join(__dirname, 'fixtures', 'bench-chart.json'), 'utf8'),
) as ChartInput;

/** Width and height from a PNG's IHDR chunk (bytes 16-23), after checking the 8-byte signature. */
function pngSize(png: Buffer) {
  expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
  expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** The SVG's own size, from its root element. */
function svgSize(svg: string) {
  const root = /<svg[^>]*\swidth="([\d.]+)"[^>]*\sheight="([\d.]+)"/.exec(svg);
  expect(root).not.toBeNull();
  return { width: Number(root?.[1]), height: Number(root?.[2]) };
}

/** Text as Vega writes it into the SVG (XML-escaped). */
const escaped = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

describe('bench chart', () => {
  it('draws every panel of a run with every design, as an SVG and a PNG of its size', async () => {
    const chart = await renderBenchChart(fixture);

    const svg = svgSize(chart.svg);
    const png = pngSize(chart.png);
    expect(png).toEqual({
      width: Math.ceil(svg.width * PNG_SCALE),
      height: Math.ceil(svg.height * PNG_SCALE),
    });
    expect(png).toEqual({ width: chart.width, height: chart.height });
    // Several rows of panels, two wide: not an empty or a one-panel picture.
    expect(svg.width).toBeGreaterThan(1000);
    expect(svg.height).toBeGreaterThan(2000);
    expect(chart.png.length).toBeGreaterThan(100_000);

    // Listed here, not taken from PANEL_TITLES' keys alone: a panel dropped from the chart fails.
    const panels = [
      PANEL_TITLES.latency,
      PANEL_TITLES.throughput,
      PANEL_TITLES.machineCpu,
      PANEL_TITLES.breakdown,
      PANEL_TITLES.fallback,
      PANEL_TITLES.scaleLateness,
      PANEL_TITLES.scaleMemory,
      PANEL_TITLES.notifySteps,
      PANEL_TITLES.notifyCdf,
      PANEL_TITLES.reconRate,
      PANEL_TITLES.reconRss,
      PANEL_TITLES.scaleRealLateness,
      PANEL_TITLES.scaleRealQueries,
      PANEL_TITLES.scaleRealMemory,
    ];
    expect(new Set(panels)).toEqual(new Set(Object.values(PANEL_TITLES)));
    for (const title of panels) expect(chart.svg, title).toContain(escaped(title));

    const designs = [
      'payrecon (defaults, start delay none)',
      'payrecon (defaults, start delay first-step)',
      'Temporal floor (signal → activity)',
      'seeds: consumer + 20 s cron',
      'payrecon: workflow + durable timers',
      'seed: one delay queue, per-message TTL + DLX',
      'naive loop',
      '5,000 orders, start delay none',
      '5,000 orders, start delay first-step',
    ];
    for (const design of designs) expect(chart.svg, design).toContain(escaped(design));
  });

  it('draws only what a run measured', async () => {
    const onlyRecon: ChartInput = { ...fixture, payrecon: undefined, floor: null, cron: null, scale: [] };
    delete (onlyRecon as Record<string, unknown>).notify;
    delete (onlyRecon as Record<string, unknown>).scaleReal;
    const chart = await renderBenchChart(onlyRecon);
    expect(chart.svg).toContain(escaped(PANEL_TITLES.reconRate));
    for (const title of [PANEL_TITLES.latency, PANEL_TITLES.fallback, PANEL_TITLES.notifySteps]) {
      expect(chart.svg).not.toContain(escaped(title));
    }
  });
});
