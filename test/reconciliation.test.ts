import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrder } from '../src/db/orders';
import { requestRefund } from '../src/order/refund';
import { billDayBounds } from '../src/provider/statement-format';
import {
  backfillReconciliation,
  ensureReconciliationSchedule,
  reconciliationScheduleId,
  startReconciliation,
} from '../src/reconciliation/start';
import { seedPaidTrades } from '../tools/simulator/bulk';
import { SimulatorClient } from '../tools/simulator/client';
import { createOrderWorker } from '../workers/worker';
import type { ReconciliationSummary } from '../workflows/reconciliation';
import { deleteTopology, eventually, testConfig, uniqueSuffix } from './support/env';
import { HistoryRecorder } from './support/histories';
import { createOrderWithTrade, type Stack, startStack } from './support/stack';

/**
 * The daily reconciliation on the real dev server, Postgres, RabbitMQ and the payment simulator's
 * statement: every break kind from a crafted statement, the midnight edge carried to the next day,
 * re-runs that add nothing, a dry run that writes nothing, healing an unpaid order through its own
 * workflow, an expired download URL asked for again, a worker killed while staging, and the schedule.
 * Each test reconciles a day of its own in the past, so other test files' trades never show up.
 */
const AMOUNT = 10_000;
/** The days this file reconciles (a day before and after each included). */
const FIRST_DAY = '2025-06-09';
const LAST_DAY = '2025-06-24';
const ROOT = path.resolve(__dirname, '..');

describe('daily reconciliation on the real services', () => {
  const provider = `simulator-rtest-${uniqueSuffix()}`;
  const config = testConfig('recon', {
    RECON_PROVIDER: provider,
    RECON_HEAL_WAIT: '20s',
    RECON_MIDNIGHT_EDGE: '15m',
  });
  const histories = new HistoryRecorder(['reconciliation-breaks', 'reconciliation-healed']);
  let stack: Stack;
  let simulator: SimulatorClient;
  const prefix = `rc${uniqueSuffix()}`;
  let n = 0;

  /**
   * This file's days belong to it: what earlier runs of it left there (the test database outlives a
   * run) is removed first, on both sides, so each day holds only what the test puts there.
   */
  const clearDays = async () => {
    const from = billDayBounds(FIRST_DAY).start.toISOString();
    const to = billDayBounds(LAST_DAY).end.toISOString();
    await stack.sql.begin(async (tx) => {
      await tx`delete from provider.refunds where order_id in (
        select order_id from provider.trades where paid_at >= ${from} and paid_at < ${to})`;
      await tx`delete from provider.trades where paid_at >= ${from} and paid_at < ${to}`;
      await tx`delete from provider.bill_faults where bill_date between ${FIRST_DAY} and ${LAST_DAY}`;
      await tx`delete from refunds where order_id in (select id from orders where paid_at >= ${from} and paid_at < ${to})`;
      await tx`delete from orders where paid_at >= ${from} and paid_at < ${to}`;
      // This file's reconciliations are named simulator-rtest-*: their statements, runs and breaks.
      await tx`delete from reconciliation_statement_rows where statement_id in (
        select id from reconciliation_statements where provider like 'simulator-rtest-%')`;
      await tx`delete from reconciliation_statement_chunks where statement_id in (
        select id from reconciliation_statements where provider like 'simulator-rtest-%')`;
      await tx`delete from reconciliation_statements where provider like 'simulator-rtest-%'`;
      await tx`delete from reconciliation_breaks where provider like 'simulator-rtest-%'`;
      await tx`delete from reconciliation_runs where provider like 'simulator-rtest-%'`;
    });
  };

  beforeAll(async () => {
    stack = await startStack(config, { simulator: true });
    simulator = new SimulatorClient(stack.config.PROVIDER_URL);
    await clearDays();
  });
  afterAll(async (context) => {
    await histories.finish(context);
    if (stack) await clearDays();
    await stack?.stop();
    await deleteTopology(config);
  });

  /** An instant of a bill date, Asia/Shanghai wall time `hh:mm:ss`. */
  const at = (billDate: string, time: string) =>
    new Date(billDayBounds(billDate).start.getTime() + Date.parse(`1970-01-01T${time}Z`)).toISOString();

  /** An order whose payment (at `paidAt`, the provider's clock) reached payrecon over MQ. */
  const paidOrder = async (paidAt: string) => {
    const { order, workflowId } = await createOrderWithTrade(stack, {
      orderId: `${prefix}-${++n}`,
      amount: AMOUNT,
    });
    await simulator.pay(order.id, { paidAt });
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({ status: 'PAID' });
    return order;
  };

  const run = async (billDate: string, options: { dryRun?: boolean } = {}) => {
    const handle = await startReconciliation(stack.temporal, stack.config, billDate, options);
    return { handle, summary: (await handle.result()) as ReconciliationSummary };
  };

  const breaksOf = async (billDate: string) =>
    stack.sql<{ id: string; kind: string; ref: string; status: string; heal_action: string | null }[]>`
      select id, kind, ref, status, heal_action from reconciliation_breaks
      where provider = ${provider} and bill_date = ${billDate} order by kind, ref`;

  it('finds each break kind in a crafted statement, carries the midnight edge, and re-runs to the same breaks', async () => {
    const day = '2025-06-10';
    const clean = await paidOrder(at(day, '09:00:00'));
    const omitted = await paidOrder(at(day, '10:00:00'));
    const shortPaid = await paidOrder(at(day, '11:00:00'));
    const wrongStatus = await paidOrder(at(day, '12:00:00'));
    const doubled = await paidOrder(at(day, '13:00:00'));
    const carried = await paidOrder(at(day, '23:58:00'));
    const notCarried = await paidOrder(at(day, '23:57:00'));
    const refunded = await paidOrder(at(day, '14:00:00'));
    const { refund, workflowId } = await requestRefund(
      { db: stack.db, client: stack.temporal, config: stack.config },
      { orderId: refunded.id, amount: AMOUNT / 2 },
    );
    expect(await stack.temporal.workflow.getHandle(workflowId).result()).toMatchObject({
      phase: 'SUCCEEDED',
    });
    // The refund happened "on that day" on both sides (the rig moves the clock, not the status).
    await stack.sql`update provider.refunds set settled_at = ${at(day, '15:00:00')} where out_request_no = ${refund.outRequestNo}`;
    await stack.sql`update refunds set settled_at = ${at(day, '15:00:05')} where id = ${refund.id}`;
    const ghost = `${prefix}-ghost`;
    await simulator.setBillFaults(day, {
      omitPayments: [omitted.id, notCarried.id],
      extraPayments: [{ orderId: ghost, amount: 4_200 }],
      amountDeltas: { [shortPaid.id]: -1 },
      statusOverrides: { [wrongStatus.id]: 'TRADE_CLOSED' },
      duplicatePayments: [doubled.id],
      omitRefunds: [refund.outRequestNo],
      carryToNextDay: [carried.id],
      summaryDelta: { payAmount: 100 },
    });

    const first = await run(day);
    const expected = [
      ['AMOUNT_MISMATCH', shortPaid.id, 'OPEN'],
      ['CONTROL_TOTALS', 'payAmount', 'OPEN'],
      ['DUPLICATE', doubled.id, 'OPEN'],
      ['MISSING_AT_PROVIDER', omitted.id, 'OPEN'],
      ['MISSING_AT_PROVIDER', carried.id, 'EXPECTED'],
      ['MISSING_AT_PROVIDER', notCarried.id, 'EXPECTED'],
      ['MISSING_LOCALLY', ghost, 'OPEN'],
      ['REFUND_MISMATCH', refund.outRequestNo, 'OPEN'],
      ['STATUS_MISMATCH', wrongStatus.id, 'OPEN'],
    ].sort();
    const found = await breaksOf(day);
    expect(found.map((b) => [b.kind, b.ref, b.status]).sort()).toEqual(expected);
    expect(first.summary).toMatchObject({
      billDate: day,
      dryRun: false,
      totalBreaks: 9,
      open: 7,
      expected: 2,
      healed: 0,
      status: 'BREAKS',
      statement: { reused: false, urlRequests: 1, rejectedLines: 0 },
      // 8 paid orders: 2 omitted, 1 carried, 1 doubled, plus the ghost's row.
      theirs: { payCount: 7, refundCount: 0 },
      ours: { payCount: 8, payAmount: 8 * AMOUNT, refundCount: 1, refundAmount: AMOUNT / 2 },
      // clean, doubled, refunded (shortPaid and wrongStatus differ, the ghost is no order).
      matchedPayments: 3,
    });
    expect(first.summary.declared?.payAmount).toBe((first.summary.theirs.payAmount ?? 0) + 100);
    expect(await findOrder(stack.db, clean.id)).toMatchObject({ status: 'PAID' });
    // The run is findable by its day.
    const listed = [];
    for await (const execution of stack.temporal.workflow.list({
      query: `ReconDate = '${day}' AND WorkflowId = '${first.handle.workflowId}'`,
    })) {
      listed.push(execution.workflowId);
    }
    expect(listed).toContain(`reconciliation-${provider}-${day}`);

    // The same statement and database again: the same breaks, none added, the staged rows reused.
    const again = await run(day);
    const foundAgain = await breaksOf(day);
    expect(foundAgain.map((b) => [b.id, b.kind, b.ref, b.status])).toEqual(
      found.map((b) => [b.id, b.kind, b.ref, b.status]),
    );
    expect(again.summary).toMatchObject({
      totalBreaks: 9,
      statement: { reused: true, sha256: first.summary.statement.sha256 },
    });

    // A dry run reports and writes nothing.
    const [runsBefore] = await stack.sql<
      { n: string }[]
    >`select count(*) as n from reconciliation_runs where provider = ${provider}`;
    const dry = await run(day, { dryRun: true });
    expect(dry.summary).toMatchObject({ dryRun: true, runId: null, totalBreaks: 9 });
    const [runsAfter] = await stack.sql<
      { n: string }[]
    >`select count(*) as n from reconciliation_runs where provider = ${provider}`;
    expect(runsAfter?.n).toBe(runsBefore?.n);
    expect((await breaksOf(day)).map((b) => b.id)).toEqual(found.map((b) => b.id));

    // The next day's statement carries one edge row: that break is resolved, the other one opens.
    const next = await run('2025-06-11');
    expect(next.summary).toMatchObject({ theirs: { payCount: 1 }, totalBreaks: 0, status: 'BALANCED' });
    const settled = await stack.sql<{ ref: string; status: string; resolved_by: string | null }[]>`
      select ref, status, resolved_by from reconciliation_breaks
      where provider = ${provider} and bill_date = ${day} and kind = 'MISSING_AT_PROVIDER' order by ref`;
    expect(settled).toEqual(
      [
        { ref: omitted.id, status: 'OPEN', resolved_by: null },
        { ref: carried.id, status: 'RESOLVED', resolved_by: 'reconciliation' },
        { ref: notCarried.id, status: 'OPEN', resolved_by: null },
      ].sort((a, b) => a.ref.localeCompare(b.ref)),
    );
    await histories.record('reconciliation-breaks', first.handle);
  });

  it('heals an unpaid order through its own workflow, and records a payment after close', async () => {
    const day = '2025-06-12';
    // Paid at the provider, but its notice is lost and its ladder is an hour long: still UNPAID here.
    const { order: unpaid, workflowId: unpaidWorkflow } = await createOrderWithTrade(stack, {
      orderId: `${prefix}-heal`,
      amount: AMOUNT,
    });
    await simulator.pay(unpaid.id, { paidAt: at(day, '08:00:00'), faults: { drop: true } });
    // Closed unpaid at its deadline, then paid at the provider anyway (a payment racing the close).
    const { order: closed, workflowId: closedWorkflow } = await createOrderWithTrade(stack, {
      orderId: `${prefix}-closed`,
      amount: AMOUNT,
      payWithinMs: 1,
    });
    expect(await stack.temporal.workflow.getHandle(closedWorkflow).result()).toMatchObject({
      status: 'CLOSED',
    });
    await simulator.pay(closed.id, { paidAt: at(day, '09:00:00'), force: true, faults: { drop: true } });
    expect(await findOrder(stack.db, unpaid.id)).toMatchObject({ status: 'UNPAID' });

    const { handle, summary } = await run(day);
    expect(summary).toMatchObject({ healed: 1, healing: { signalled: 1, 'recorded-after-end': 1 }, open: 1 });
    expect(await findOrder(stack.db, unpaid.id)).toMatchObject({
      status: 'PAID',
      settledBy: 'reconciliation',
    });
    expect(await stack.temporal.workflow.getHandle(unpaidWorkflow).result()).toMatchObject({
      status: 'PAID',
      settledBy: 'reconciliation',
    });
    const events =
      await stack.sql`select source from payment_events where order_id = ${unpaid.id} and source = 'reconciliation'`;
    expect(events).toHaveLength(1);
    expect((await breaksOf(day)).map((b) => [b.kind, b.ref, b.status, b.heal_action]).sort()).toEqual(
      [
        ['MISSING_LOCALLY', unpaid.id, 'AUTO_HEALED', 'signalled'],
        ['MISSING_LOCALLY', closed.id, 'OPEN', 'recorded-after-end'],
      ].sort(),
    );
    expect(await findOrder(stack.db, closed.id)).toMatchObject({ status: 'CLOSED' });
    const discrepancies =
      await stack.sql`select kind from payment_discrepancies where order_id = ${closed.id}`;
    expect(discrepancies.map((d) => d.kind)).toEqual(['PAID_AFTER_CLOSE']);
    await histories.record('reconciliation-healed', handle);
  });

  /** An order with a trade open at the provider, left unpaid there (its ladder is an hour long). */
  const unpaidOrder = async (name: string) => {
    const { order, trade } = await createOrderWithTrade(stack, {
      orderId: `${prefix}-${name}`,
      amount: AMOUNT,
    });
    if (!trade?.tradeNo) throw new Error(`no trade opened for ${order.id}`);
    return { order, tradeNo: trade.tradeNo };
  };

  const reconciliationEvents = (orderId: string) =>
    stack.sql<{ trade_status: string }[]>`
      select trade_status from payment_events where order_id = ${orderId} and source = 'reconciliation'`;

  it('heals only rows the provider reports paid, with the row status, and pays only what the provider confirms', async () => {
    const day = '2025-06-17';
    // Rows naming an unpaid order's own trade and amount: two that are no payment, one that lies.
    const closedRow = await unpaidOrder('row-closed');
    const waitingRow = await unpaidOrder('row-waiting');
    const lyingRow = await unpaidOrder('row-lying');
    // Paid at the provider (its notice lost), listed as TRADE_FINISHED: a paid status all the same.
    const { order: finished } = await createOrderWithTrade(stack, {
      orderId: `${prefix}-finished`,
      amount: AMOUNT,
    });
    await simulator.pay(finished.id, { paidAt: at(day, '08:00:00'), faults: { drop: true } });
    const row = (unpaid: { order: { id: string }; tradeNo: string }, time: string, status?: string) => ({
      orderId: unpaid.order.id,
      tradeNo: unpaid.tradeNo,
      amount: AMOUNT,
      time: at(day, time),
      ...(status ? { status } : {}),
    });
    await simulator.setBillFaults(day, {
      extraPayments: [
        row(closedRow, '09:00:00', 'TRADE_CLOSED'),
        row(waitingRow, '09:10:00', 'WAIT_BUYER_PAY'),
        row(lyingRow, '09:20:00'),
      ],
      statusOverrides: { [finished.id]: 'TRADE_FINISHED' },
    });

    const { summary } = await run(day);
    expect(summary).toMatchObject({
      statement: { controlTotalsOk: true },
      healing: { signalled: 2 },
      healed: 1,
    });
    expect((await breaksOf(day)).map((b) => [b.kind, b.ref, b.status, b.heal_action]).sort()).toEqual(
      [
        ['STATUS_MISMATCH', closedRow.order.id, 'OPEN', null],
        ['STATUS_MISMATCH', waitingRow.order.id, 'OPEN', null],
        ['MISSING_LOCALLY', lyingRow.order.id, 'OPEN', 'signalled'],
        ['MISSING_LOCALLY', finished.id, 'AUTO_HEALED', 'signalled'],
      ].sort(),
    );
    // No row that is not a payment reached an order; the lying row was checked with the provider.
    for (const unpaid of [closedRow, waitingRow, lyingRow]) {
      expect(await findOrder(stack.db, unpaid.order.id)).toMatchObject({ status: 'UNPAID', tradeNo: null });
    }
    expect(await reconciliationEvents(closedRow.order.id)).toEqual([]);
    expect(await reconciliationEvents(waitingRow.order.id)).toEqual([]);
    expect(await reconciliationEvents(lyingRow.order.id)).toEqual([{ trade_status: 'TRADE_SUCCESS' }]);
    const contradicted = await stack.sql<{ kind: string }[]>`
      select kind from payment_discrepancies where order_id = ${lyingRow.order.id}`;
    expect(contradicted.map((d) => d.kind)).toEqual(['NOTICE_CONTRADICTS_PROVIDER']);
    // The paid row healed its order with the status the row printed.
    expect(await findOrder(stack.db, finished.id)).toMatchObject({
      status: 'PAID',
      settledBy: 'reconciliation',
    });
    expect(await reconciliationEvents(finished.id)).toEqual([{ trade_status: 'TRADE_FINISHED' }]);
  });

  it('a statement that fails its control totals is reported and changes nothing else', async () => {
    const dayBefore = '2025-06-19';
    const day = '2025-06-20';
    // The day before: a payment at 23:58 that its statement leaves to the next day's (EXPECTED).
    const edge = await paidOrder(at(dayBefore, '23:58:00'));
    await simulator.setBillFaults(dayBefore, { carryToNextDay: [edge.id] });
    await run(dayBefore);
    const edgeBreak = () =>
      stack.sql<{ status: string }[]>`
        select status from reconciliation_breaks
        where provider = ${provider} and bill_date = ${dayBefore} and kind = 'MISSING_AT_PROVIDER' and ref = ${edge.id}`;
    expect(await edgeBreak()).toEqual([{ status: 'EXPECTED' }]);
    // The day: paid at the provider, its notice lost, so a break healing would settle.
    const { order: unhealed } = await createOrderWithTrade(stack, {
      orderId: `${prefix}-unhealed`,
      amount: AMOUNT,
    });
    await simulator.pay(unhealed.id, { paidAt: at(day, '08:00:00'), faults: { drop: true } });
    await simulator.setBillFaults(day, { summaryDelta: { payCount: 1 } });

    const failed = await run(day);
    expect(failed.summary).toMatchObject({
      statement: { controlTotalsOk: false },
      healed: 0,
      status: 'BREAKS',
    });
    expect(failed.summary.healing).toEqual({});
    expect((await breaksOf(day)).map((b) => [b.kind, b.ref, b.status, b.heal_action]).sort()).toEqual(
      [
        ['CONTROL_TOTALS', 'payCount', 'OPEN', null],
        ['MISSING_LOCALLY', unhealed.id, 'OPEN', null],
      ].sort(),
    );
    expect(await findOrder(stack.db, unhealed.id)).toMatchObject({ status: 'UNPAID' });
    expect(await reconciliationEvents(unhealed.id)).toEqual([]);
    // The statement carries the edge row, but a statement that does not add up settles nothing.
    expect(await edgeBreak()).toEqual([{ status: 'EXPECTED' }]);

    // The provider's corrected statement: now the day heals, carries, and resolves the totals break.
    await simulator.setBillFaults(day, {});
    const corrected = await run(day);
    expect(corrected.summary).toMatchObject({
      statement: { controlTotalsOk: true },
      healed: 1,
      status: 'BALANCED',
    });
    expect(await findOrder(stack.db, unhealed.id)).toMatchObject({
      status: 'PAID',
      settledBy: 'reconciliation',
    });
    expect(await edgeBreak()).toEqual([{ status: 'RESOLVED' }]);

    // A break an earlier run found stays open when a statement that fails its totals no longer lists it.
    const later = '2025-06-22';
    const gone = await paidOrder(at(later, '09:00:00'));
    await simulator.setBillFaults(later, { omitPayments: [gone.id] });
    await run(later);
    await simulator.setBillFaults(later, { summaryDelta: { payAmount: 100 } });
    expect((await run(later)).summary.statement.controlTotalsOk).toBe(false);
    const kept = await stack.sql<{ kind: string; ref: string; status: string; resolved_by: string | null }[]>`
      select kind, ref, status, resolved_by from reconciliation_breaks
      where provider = ${provider} and bill_date = ${later} order by kind, ref`;
    expect(kept).toEqual([
      { kind: 'CONTROL_TOTALS', ref: 'payAmount', status: 'OPEN', resolved_by: null },
      { kind: 'MISSING_AT_PROVIDER', ref: gone.id, status: 'OPEN', resolved_by: null },
    ]);
  }, 120_000);

  it('reports each extra trade of a paid order as a break of its own, apart from a line printed twice', async () => {
    const day = '2025-06-23';
    const twice = await paidOrder(at(day, '10:00:00'));
    const second = `${prefix}-second`;
    const third = `${prefix}-third`;
    await simulator.setBillFaults(day, {
      // The second trade is printed before the one that paid our order.
      extraPayments: [
        { orderId: twice.id, tradeNo: second, amount: AMOUNT, time: at(day, '09:00:00') },
        { orderId: twice.id, tradeNo: third, amount: 2_500, time: at(day, '11:00:00') },
      ],
      duplicatePayments: [twice.id],
    });
    const { summary } = await run(day);
    const found = await stack.sql<
      { kind: string; ref: string; trade_no: string; theirs: { amount: number } }[]
    >`
      select kind, ref, trade_no, theirs from reconciliation_breaks
      where provider = ${provider} and bill_date = ${day} order by kind, ref`;
    expect(found.map((b) => [b.kind, b.ref, b.trade_no, b.theirs.amount])).toEqual(
      [
        ['DUPLICATE', twice.id, twice.providerTradeNo, AMOUNT],
        ['EXTRA_PAYMENT', `${twice.id}:${second}`, second, AMOUNT],
        ['EXTRA_PAYMENT', `${twice.id}:${third}`, third, 2_500],
      ].sort(),
    );
    expect(found[0]?.theirs).toMatchObject({ copies: 2 });
    expect(summary).toMatchObject({ matchedPayments: 1, totalBreaks: 3, theirs: { payCount: 4 } });
  });

  it('asks for a new download URL when the first has expired', async () => {
    const day = '2025-06-13';
    await paidOrder(at(day, '10:00:00'));
    await simulator.setBillFaults(day, { expireNextUrls: 1, encoding: 'gbk', zipped: true });
    const { summary } = await run(day);
    expect(summary).toMatchObject({
      statement: { urlRequests: 2 },
      theirs: { payCount: 1 },
      status: 'BALANCED',
    });
    const stats = await simulator.billStats();
    expect(stats[day]).toMatchObject({ urlRequests: 2, expiredDownloads: 1 });
  });

  it('resumes staging after the worker running it was killed', async () => {
    const day = '2025-06-14';
    const rows = 200_000;
    await seedPaidTrades(stack.sql, { count: rows, billDate: day, prefix: `${prefix}-bulk-` });
    // A worker of its own, in a process of its own, on a task queue only it serves.
    const taskQueue = `${stack.config.TEMPORAL_TASK_QUEUE}-kill`;
    const env = {
      ...process.env,
      ...Object.fromEntries(Object.entries(stack.config).map(([k, v]) => [k, String(v)])),
      TEMPORAL_TASK_QUEUE: taskQueue,
      POLL_LADDER: '1h',
      WORKER_METRICS_ADDRESS: 'off',
      PAYRECON_ENV: 'development',
    };
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'workers/worker.ts'], {
      cwd: ROOT,
      env,
      stdio: 'ignore',
    });
    try {
      const handle = await startReconciliation(
        stack.temporal,
        { ...stack.config, TEMPORAL_TASK_QUEUE: taskQueue },
        day,
      );
      const statementId = await eventually(
        'staging under way',
        async () => {
          const [row] = await stack.sql<{ statement_id: string | null; rows_staged: number }[]>`
            select r.statement_id, s.rows_staged from reconciliation_runs r
            join reconciliation_statements s on s.id = r.statement_id
            where r.workflow_id = ${handle.workflowId}`;
          return row && row.rows_staged > 0 && row.rows_staged < rows ? Number(row.statement_id) : undefined;
        },
        120_000,
      );
      child.kill('SIGKILL');
      const [{ rows_staged: stagedAtKill } = { rows_staged: 0 }] = await stack.sql<{ rows_staged: number }[]>`
        select rows_staged from reconciliation_statements where id = ${statementId}`;
      // Another worker takes the activity once its heartbeat times out.
      const connection = await NativeConnection.connect({ address: stack.config.TEMPORAL_ADDRESS });
      const second = await createOrderWorker({
        config: { ...stack.config, TEMPORAL_TASK_QUEUE: taskQueue },
        connection,
      });
      const running = second.run();
      try {
        const summary = (await handle.result()) as ReconciliationSummary;
        expect(summary.theirs.payCount).toBe(rows);
      } finally {
        second.worker.shutdown();
        await running;
        await connection.close();
      }
      const [staged] = await stack.sql<{ n: string; lines: string }[]>`
        select count(*) as n, count(distinct line_no) as lines from reconciliation_statement_rows
        where statement_id = ${statementId}`;
      expect(staged).toEqual({ n: String(rows), lines: String(rows) });
      // The retried attempt started where the killed one had committed, not from the first row.
      const history = await handle.fetchHistory();
      const completions = (history.events ?? [])
        .map((e) => e.activityTaskCompletedEventAttributes?.result?.payloads?.[0]?.data)
        .filter((data): data is Uint8Array => !!data)
        .map((data) => JSON.parse(Buffer.from(data).toString('utf8')) as { resumedFrom?: number });
      const staging = completions.find((result) => result.resumedFrom !== undefined);
      expect(staging?.resumedFrom).toBeGreaterThanOrEqual(stagedAtKill);
      expect(staging?.resumedFrom).toBeGreaterThan(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 240_000);

  it('creates the daily schedule once however often setup runs, and backfills a day through it', async () => {
    const scheduleId = reconciliationScheduleId(provider);
    try {
      const results = [];
      for (let i = 0; i < 3; i++)
        results.push(await ensureReconciliationSchedule(stack.temporal, stack.config));
      expect(results.map((r) => r.created)).toEqual([true, false, false]);
      const ids = [];
      for await (const schedule of stack.temporal.schedule.list()) {
        if (schedule.scheduleId === scheduleId) ids.push(schedule.scheduleId);
      }
      expect(ids).toEqual([scheduleId]);
      const described = await stack.temporal.schedule.getHandle(scheduleId).describe();
      expect(described.spec.timezone).toBe('Asia/Shanghai');
      expect(described.spec.calendars?.[0]).toMatchObject({
        hour: [{ start: 10, end: 10, step: 1 }],
        minute: [{ start: 30, end: 30, step: 1 }],
      });
      expect(described.policies).toMatchObject({ overlap: 'BUFFER_ONE', catchupWindow: 3 * 86_400_000 });

      const day = '2025-06-15';
      await paidOrder(at(day, '10:00:00'));
      await backfillReconciliation(stack.temporal, stack.config, day, day);
      const summary = await eventually(
        'the backfilled day reconciled',
        async () => {
          try {
            return (await stack.temporal.workflow
              .getHandle(`reconciliation-${provider}-${day}`)
              .result()) as ReconciliationSummary;
          } catch {
            return undefined;
          }
        },
        60_000,
      );
      expect(summary).toMatchObject({ billDate: day, theirs: { payCount: 1 }, status: 'BALANCED' });
    } finally {
      await stack.temporal.schedule
        .getHandle(scheduleId)
        .delete()
        .catch(() => {});
    }
  }, 120_000);
});
