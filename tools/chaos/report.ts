import Table from 'cli-table3';
import type { ChaosReport } from './run';

/** The chaos report as tables: invariants first, then the fault mix, the messages and the disruptions. */
export function formatReport(
  report: ChaosReport,
  options: { maxViolationLines?: number; color?: boolean } = {},
): string {
  const maxLines = options.maxViolationLines ?? 10;
  // Plain borders and headings unless asked: CI logs and the test read this text.
  const style = options.color ? {} : { style: { head: [], border: [] } };
  const out: string[] = [];

  const invariants = new Table({ head: ['invariant', 'checked', 'violations'], ...style });
  for (const check of report.checks) {
    invariants.push([check.name, check.checked, check.violations.length]);
  }
  out.push(invariants.toString());
  for (const check of report.checks) {
    if (check.violations.length === 0) continue;
    out.push(`${check.name}: ${check.violations.length} violations`);
    for (const line of check.violations.slice(0, maxLines)) out.push(`  - ${line}`);
    if (check.violations.length > maxLines)
      out.push(`  ... ${check.violations.length - maxLines} more in the JSON results`);
  }

  const mix = new Table({
    head: ['fault', 'orders', 'buyer', 'expected', 'discrepancy', 'settled by', 'as expected'],
    ...style,
  });
  for (const row of report.faultMix) {
    mix.push([
      row.kind,
      row.orders,
      row.expectation.buyer,
      row.expectation.status,
      row.expectation.discrepancies.join(', ') || '-',
      row.expectation.settledBy.join('|'),
      `${row.asExpected}/${row.orders}`,
    ]);
  }
  out.push(mix.toString());

  if (report.refundMix.length > 0) {
    const refunds = new Table({ head: ['refund', 'orders', 'what', 'expected', 'as expected'], ...style });
    for (const row of report.refundMix) {
      refunds.push([row.kind, row.orders, row.what, row.final, `${row.asExpected}/${row.orders}`]);
    }
    out.push(refunds.toString());
  }

  const shops = new Table({
    head: ['shop', 'orders', 'endpoint answers', 'events', 'delivered', 'exhausted', 'attempts (mean / max)'],
    ...style,
  });
  for (const row of report.shops) {
    shops.push([
      row.shop,
      row.orders,
      row.what,
      row.events,
      row.delivered,
      row.exhausted,
      `${row.attemptsMean} / ${row.attemptsMax}`,
    ]);
  }
  out.push(shops.toString());
  if (report.exhaustedEvents.length > 0) out.push(`exhausted events: ${report.exhaustedEvents.join(', ')}`);

  const r = report.reconciliation;
  const recon = new Table({
    head: [`reconciliation of ${r.billDate} (${r.provider})`, 'planted', 'found'],
    ...style,
  });
  const keys = new Set([...r.planted, ...r.found].map((b) => `${b.kind} ${b.ref} ${b.status}`));
  for (const key of [...keys].sort()) {
    recon.push([
      key,
      r.planted.some((b) => `${b.kind} ${b.ref} ${b.status}` === key) ? 'yes' : '-',
      r.found.some((b) => `${b.kind} ${b.ref} ${b.status}` === key) ? 'yes' : '-',
    ]);
  }
  if (r.summary) {
    recon.push([
      'statement / payrecon payments',
      {
        colSpan: 2,
        content: `${r.summary.theirs.payCount} / ${r.summary.ours.payCount} (${r.summary.matchedPayments} matched)`,
      },
    ]);
    recon.push([
      'statement / payrecon refunds',
      { colSpan: 2, content: `${r.summary.theirs.refundCount} / ${r.summary.ours.refundCount}` },
    ]);
    recon.push(['result', { colSpan: 2, content: `${r.summary.status}, ${r.summary.totalBreaks} breaks` }]);
  }
  out.push(recon.toString());

  const notes = new Table({ head: ['evidence', 'count'], ...style });
  const m = report.messages;
  notes.push(
    ['messages published (distinct ids; dropped ones are not)', m.published],
    ['  copies sent (duplicates included)', m.copies],
    ['  settled into a workflow (payment_events, source mq)', m.recorded],
    ['  parked with a reason', m.parked],
    ...Object.entries(m.parkedByReason)
      .sort()
      .map(([reason, n]): [string, number] => [`    ${reason}`, n]),
    ['  neither (lost)', m.lost],
    ['left in the work queue / retry queue', `${m.workQueue} / ${m.retryQueue}`],
    ['parked or recorded ids the simulator did not report', m.parkedUnknown + m.recordedUnknown],
  );
  for (const check of report.checks) {
    for (const [name, n] of Object.entries(check.notes ?? {})) notes.push([name, n]);
  }
  for (const [state, n] of Object.entries(report.settledBy).sort()) notes.push([`orders ${state}`, n]);
  out.push(notes.toString());

  if (report.disruptions.length > 0) {
    const disruptions = new Table({
      head: ['disruption', 'planned at', 'started at', 'outage', 'detail'],
      ...style,
    });
    for (const d of report.disruptions) {
      disruptions.push([
        d.kind,
        `${(d.atMs / 1000).toFixed(1)}s`,
        `${(d.startedAtMs / 1000).toFixed(1)}s`,
        `${(d.outageMs / 1000).toFixed(1)}s`,
        d.error ? `FAILED: ${d.error}` : d.detail,
      ]);
    }
    out.push(disruptions.toString());
  }

  if (report.cluster) {
    const queues = new Table({
      head: ['queue at the end (cluster)', 'type', 'leader / home node', 'messages', 'members online'],
      ...style,
    });
    for (const q of report.cluster.queuesAtEnd) {
      queues.push([q.name, q.type, q.node ?? '-', q.messages ?? '?', q.online.join(',') || '-']);
    }
    out.push(
      `RabbitMQ cluster ${report.cluster.nodes.join(', ')} (${report.cluster.startedHere ? 'started by this run, stopped at its end' : 'found running, left running'})`,
    );
    out.push(queues.toString());
  }

  const p = report.phases;
  out.push(
    `${report.options.orders} orders, seed ${report.options.seed}: ${(report.durationMs / 1000).toFixed(1)}s in all ` +
      `(create ${(p.createMs / 1000).toFixed(1)}s, settle ${(p.settleMs / 1000).toFixed(1)}s, drain ${(p.drainMs / 1000).toFixed(1)}s, ` +
      `reconcile ${(p.reconMs / 1000).toFixed(1)}s, collect ${(p.collectMs / 1000).toFixed(1)}s, replay ${(p.replayMs / 1000).toFixed(1)}s), ` +
      `${report.ordersPerSecond} orders/s end to end`,
  );
  out.push(
    report.violations === 0
      ? 'chaos: every invariant holds'
      : `chaos: ${report.violations} violations (repeat with --seed ${report.options.seed})`,
  );
  return out.join('\n');
}
