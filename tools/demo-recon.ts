import type { Client } from '@temporalio/client';
import Table from 'cli-table3';
import type { Database } from '../src/db/client';
import { findOrder } from '../src/db/orders';
import { createOrder, type LadderConfig } from '../src/order/start';
import type { Config } from '../src/platform/config';
import type { HttpPaymentGateway } from '../src/provider/http';
import { billDateOf, formatMajorUnits } from '../src/provider/statement-format';
import { startReconciliation } from '../src/reconciliation/start';
import type { ReconciliationSummary } from '../workflows/reconciliation';
import type { SimulatorClient } from './simulator/client';

/**
 * The demo's daily reconciliation: one order is paid at the provider with its notice lost and a
 * ladder too long to find it, so only the day's statement tells payrecon; the simulator leaves one
 * paid order off the statement. The run heals the first through its workflow and reports the second.
 */

export interface ReconDemoDeps {
  db: Database;
  temporal: Client;
  config: Config & LadderConfig;
  gateway: HttpPaymentGateway;
  simulator: SimulatorClient;
}

/** The order only the statement will settle: paid, notice dropped, next check in an hour. */
export async function prepareUnnoticedPayment(deps: ReconDemoDeps): Promise<string> {
  const { order } = await createOrder(
    { db: deps.db, client: deps.temporal, config: deps.config, gateway: deps.gateway },
    { amount: 8_800, currency: 'CNY', pollLadder: { stepsMs: [3_600_000], repeatMs: 3_600_000 } },
  );
  await deps.simulator.pay(order.id, { faults: { drop: true } });
  return order.id;
}

export async function runDemoReconciliation(
  deps: ReconDemoDeps,
  input: { unnoticedOrderId: string; omittedOrderId: string | undefined },
): Promise<{ table: string; summary: ReconciliationSummary; ok: boolean }> {
  const billDate = billDateOf(new Date());
  // The statement fault: one paid order missing from today's bill (replaces today's earlier faults).
  await deps.simulator.setBillFaults(
    billDate,
    input.omittedOrderId ? { omitPayments: [input.omittedOrderId] } : {},
  );
  const handle = await startReconciliation(deps.temporal, deps.config, billDate);
  const summary = (await handle.result()) as ReconciliationSummary;
  const healed = await findOrder(deps.db, input.unnoticedOrderId);
  const omitted = input.omittedOrderId
    ? await deps.db.$client<{ status: string }[]>`
        select status from reconciliation_breaks where provider = ${summary.provider} and bill_date = ${billDate}
          and kind = 'MISSING_AT_PROVIDER' and ref = ${input.omittedOrderId}`
    : [];

  const money = (minor: number) => `${formatMajorUnits(minor)} CNY`;
  const table = new Table({ head: [`reconciliation of ${billDate}`, 'statement', 'payrecon'] });
  table.push(
    ['payments', summary.theirs.payCount, summary.ours.payCount],
    ['paid amount', money(summary.theirs.payAmount), money(summary.ours.payAmount)],
    ['refunds', summary.theirs.refundCount, summary.ours.refundCount],
    ['refunded amount', money(summary.theirs.refundAmount), money(summary.ours.refundAmount)],
    ['matched payments', { colSpan: 2, content: summary.matchedPayments }],
  );
  for (const [kind, byStatus] of Object.entries(summary.breaks).sort()) {
    const text = Object.entries(byStatus ?? {})
      .map(([status, n]) => `${n} ${status}`)
      .join(', ');
    table.push([`break ${kind}`, { colSpan: 2, content: text }]);
  }
  table.push(
    [
      'healed through the order workflow',
      {
        colSpan: 2,
        content: `${input.unnoticedOrderId}: ${healed?.status} (settled by ${healed?.settledBy ?? '-'})`,
      },
    ],
    [
      'injected statement fault',
      {
        colSpan: 2,
        content: `${input.omittedOrderId ?? '-'} left off the bill: ${omitted[0]?.status ?? 'not found'}`,
      },
    ],
    ['result', { colSpan: 2, content: `${summary.status}: ${summary.open} open, ${summary.healed} healed` }],
  );
  const ok =
    healed?.status === 'PAID' &&
    healed.settledBy === 'reconciliation' &&
    // EXPECTED when it was paid in the last minutes before midnight: the next day's run settles it.
    (!input.omittedOrderId || ['OPEN', 'EXPECTED'].includes(omitted[0]?.status ?? ''));
  return {
    table: `${table.toString()}\n  payrecon recon report ${billDate}    payrecon recon breaks --open --date ${billDate}`,
    summary,
    ok,
  };
}
