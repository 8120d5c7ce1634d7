import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { orderWorkflowId } from '../src/domain';
import { reconciliationScheduleId } from '../src/reconciliation/start';
import { freePort } from '../tools/net';
import { SimulatorClient } from '../tools/simulator/client';
import { type ReconciliationSummary, reconciliationWorkflowId } from '../workflows/reconciliation';
import { cliEnv, inProcessCli, removeOrders, spawnCli } from './support/cli';
import { deleteTopology, eventually, testConfig, uniqueSuffix } from './support/env';
import { createOrderWithTrade, type Stack, startStack } from './support/stack';

/**
 * `payrecon recon ...` against the real services: the dev Temporal server, the test database, RabbitMQ,
 * an in-process payment simulator and worker. A provider name of this file's own (RECON_PROVIDER) keeps
 * its runs, breaks and schedule apart from every other test's; its orders are paid on 2026-04-24, a bill
 * date no other test uses, with one statement fault (an amount off by a fen).
 */

const BIN = path.resolve(__dirname, '../bin/payrecon.js');
const suffix = uniqueSuffix();
const PROVIDER = `simulator-clitest-${suffix}`;
const BILL_DATE = '2026-04-24';
const ORDER_PREFIX = 'rcli-';
const config = testConfig('recon-cli', { RECON_PROVIDER: PROVIDER });
const RECON_ENV = { RECON_PROVIDER: PROVIDER, RECON_HEAL_WAIT: '5s' };
let stack: Stack;
const orders: string[] = [];

const inProcess = inProcessCli(runCli, () => stack.config);
const cli = (args: string[], env: Record<string, string> = {}) =>
  inProcess.cli(args, { ...RECON_ENV, ...env });
const cliJson = async <T>(args: string[]): Promise<T> => {
  const run = await cli([...args, '--json']);
  if (run.code !== 0) throw new Error(`${args.join(' ')} exited ${run.code}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
};

/**
 * `recon run` waits for its workflow, however long: here a run that does not end in time fails the test
 * with what the command said so far (it tells retrying activities on stderr).
 */
async function runWithin(args: string[], timeoutMs: number) {
  let stdout = '';
  let stderr = '';
  const run = runCli(args, {
    env: cliEnv(stack.config, RECON_ENV),
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${args.join(' ')} did not end within ${timeoutMs} ms; stderr:\n${stderr}`)),
      timeoutMs,
    );
  });
  const code = await Promise.race([run, late]).finally(() => clearTimeout(timer));
  return { code, stdout, stderr };
}

async function cleanDay(): Promise<void> {
  // What an earlier run of this file that crashed may have left on the day.
  const stale = await stack.sql<{ id: string }[]>`
    select id from orders where id like ${`${ORDER_PREFIX}%`}
    union select order_id from provider.trades where order_id like ${`${ORDER_PREFIX}%`}`;
  await removeOrders(
    stack,
    stale.map((row) => row.id),
  );
}

beforeAll(async () => {
  stack = await startStack(config, { simulator: true });
  await cleanDay();
});

afterAll(async () => {
  if (stack) {
    await stack.temporal.schedule
      .getHandle(reconciliationScheduleId(PROVIDER))
      .delete()
      .catch(() => {});
    // A run that did not end (a failing test) must not keep retrying on a task queue nobody polls.
    await stack.temporal.workflow
      .getHandle(reconciliationWorkflowId(PROVIDER, BILL_DATE))
      .terminate('test cleanup')
      .catch(() => {});
    await new SimulatorClient(stack.config.PROVIDER_URL).clearBillFaults(BILL_DATE).catch(() => {});
    await removeOrders(stack, orders);
    const statements = (
      await stack.sql<{ id: string }[]>`select id from reconciliation_statements where provider = ${PROVIDER}`
    ).map((row) => row.id);
    await stack.sql`delete from reconciliation_statement_rows where statement_id = any(${statements})`;
    await stack.sql`delete from reconciliation_statement_chunks where statement_id = any(${statements})`;
    await stack.sql`delete from reconciliation_breaks where provider = ${PROVIDER}`;
    await stack.sql`delete from reconciliation_runs where provider = ${PROVIDER}`;
    await stack.sql`delete from reconciliation_statements where provider = ${PROVIDER}`;
  }
  await stack?.stop();
  await deleteTopology(config);
});

describe('payrecon recon: bad input exits 2 with a message, before any service is touched', () => {
  it('through the real bin', async () => {
    const env = cliEnv(config, RECON_ENV);
    const badDate = await spawnCli(process.execPath, [BIN, 'recon', 'run', '2026-02-30'], env);
    expect(badDate.code).toBe(2);
    expect(badDate.stderr).toContain('expected a date YYYY-MM-DD');
    expect(badDate.stdout).toBe('');
    const reversed = await spawnCli(
      process.execPath,
      [BIN, 'recon', 'backfill', '--from', '2026-04-05', '--to', '2026-04-01'],
      env,
    );
    expect(reversed.code).toBe(2);
    expect(reversed.stderr).toContain('--from 2026-04-05 is after --to 2026-04-01');
  });

  it.each<[string[], string]>([
    [['recon', 'report', '24/04/2026'], 'expected a date YYYY-MM-DD'],
    [['recon', 'run', '2999-01-01'], 'has not happened yet'],
    [['recon', 'backfill', '--from', '2026-04-01'], "required option '--to <date>'"],
    [['recon', 'backfill', '--from', '2024-01-01', '--to', '2025-01-01'], 'at most 366'],
    [['recon', 'backfill', '--from', '2999-01-01', '--to', '2999-01-02'], 'T+1'],
    [['recon', 'resolve', '1'], "required option '--note <text>'"],
    [['recon', 'resolve', '1', '--note', '  '], '--note must say why'],
    [['recon', 'resolve', 'abc', '--note', 'x'], 'the break id must be a whole number'],
    [['recon', 'breaks', '--kind', 'NOPE'], 'unknown break kind; one of: MISSING_LOCALLY'],
    [['recon', 'breaks', '--date', '2026-13-01'], 'expected a date YYYY-MM-DD'],
    [['recon', 'report', BILL_DATE, '--json', '--csv'], 'choose one'],
  ])('%j', async (args, message) => {
    const run = await cli(args);
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toContain(message);
    expect(run.stdout).toBe('');
  });

  it('a service that is down is named (exit 1)', async () => {
    const port = await freePort();
    const postgres = await cli(['recon', 'breaks'], {
      DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${port}/payrecon_test`,
    });
    expect(postgres.code).toBe(1);
    expect(postgres.stderr).toContain(
      `PostgreSQL is not reachable at postgres://postgres:***@127.0.0.1:${port}`,
    );
    expect(postgres.stderr).not.toContain('secret');
    const temporal = await cli(['recon', 'schedule'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(temporal.code).toBe(1);
    expect(temporal.stderr).toContain(`Temporal server is not reachable at 127.0.0.1:${port}`);
  });

  it('a day without a run, an unknown break: exit 1', async () => {
    const report = await cli(['recon', 'report', '2026-04-20']);
    expect(report.code).toBe(1);
    expect(report.stderr).toContain(`no reconciliation run of 2026-04-20 (provider ${PROVIDER})`);
    const resolve = await cli(['recon', 'resolve', '999999999999', '--note', 'x']);
    expect(resolve.code).toBe(1);
    expect(resolve.stderr).toContain('no break 999999999999');
  });
});

describe('payrecon recon schedule', () => {
  it('twice: created, then updated; one schedule with the configured spec and next run times', async () => {
    const scheduleId = reconciliationScheduleId(PROVIDER);
    const first = await cli(['recon', 'schedule']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`schedule ${scheduleId} created`);
    expect(first.stdout).toMatch(/daily at 10:30 Asia\/Shanghai/);
    expect(first.stdout).toContain('BUFFER_ONE');
    expect(first.stdout).toContain('3 days');
    expect(first.stdout).toMatch(
      /next runs: +\d \(below\)\n {2}\d{4}-\d{2}-\d{2} 10:30:00 Asia\/Shanghai \(/,
    );

    const second = await cliJson<{
      scheduleId: string;
      created: boolean;
      overlap: string;
      catchupWindowMs: number;
      spec: { dailyAt: string[]; timezone: string };
      nextActionTimes: string[];
    }>(['recon', 'schedule']);
    expect(second).toMatchObject({
      scheduleId,
      created: false,
      overlap: 'BUFFER_ONE',
      catchupWindowMs: 3 * 86_400_000,
      spec: { dailyAt: ['10:30'], timezone: 'Asia/Shanghai' },
    });
    expect(second.nextActionTimes.length).toBeGreaterThan(0);
    // 10:30 in Shanghai is 02:30 UTC.
    expect(second.nextActionTimes[0]).toMatch(/T02:30:00\.000Z$/);

    // Listing schedules is eventually consistent: wait until ours shows, then count.
    const count = async () => {
      let n = 0;
      for await (const schedule of stack.temporal.schedule.list())
        if (schedule.scheduleId === scheduleId) n++;
      return n;
    };
    await eventually('the schedule listed', async () => ((await count()) > 0 ? true : undefined));
    expect(await count()).toBe(1);
  });
});

describe('payrecon recon run, report, breaks, resolve', () => {
  /** A paid order at the simulator, moved (rig only) to the test's bill date. */
  const paidOrderOn = async (n: number, amount: number) => {
    const orderId = `${ORDER_PREFIX}${suffix}-${n}`;
    orders.push(orderId);
    await createOrderWithTrade(stack, { orderId, amount });
    await new SimulatorClient(stack.config.PROVIDER_URL).pay(orderId);
    await stack.temporal.workflow.getHandle(orderWorkflowId(orderId)).result();
    const paidAt = new Date(`${BILL_DATE}T12:00:0${n}+08:00`).toISOString();
    await stack.sql`update provider.trades set paid_at = ${paidAt}::timestamptz where order_id = ${orderId}`;
    await stack.sql`update orders set paid_at = ${paidAt}::timestamptz where id = ${orderId}`;
    return orderId;
  };

  it('a fault on the statement is a break: run, report, breaks --open, resolve, CSV', async () => {
    const [first, faulty, third] = [
      await paidOrderOn(1, 1500),
      await paidOrderOn(2, 2500),
      await paidOrderOn(3, 3500),
    ];
    await new SimulatorClient(stack.config.PROVIDER_URL).setBillFaults(BILL_DATE, {
      amountDeltas: { [faulty]: 1 },
    });

    const run = await runWithin(['recon', 'run', BILL_DATE], 60_000);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toContain(`waiting for reconciliation-${PROVIDER}-${BILL_DATE}`);
    expect(run.stdout).toContain(`reconciliation of ${BILL_DATE} (provider ${PROVIDER})`);
    expect(run.stdout).toMatch(/status: +BREAKS/);
    expect(run.stdout).toContain(`1 open break: payrecon recon breaks --open --date ${BILL_DATE}`);

    const summary = await cliJson<ReconciliationSummary>(['recon', 'report', BILL_DATE]);
    expect(summary).toMatchObject({
      provider: PROVIDER,
      billDate: BILL_DATE,
      dryRun: false,
      status: 'BREAKS',
      open: 1,
      matchedPayments: 2,
      breaks: { AMOUNT_MISMATCH: { OPEN: 1 } },
      ours: { payCount: 3, payAmount: 7500 },
      theirs: { payCount: 3, payAmount: 7501 },
    });
    const report = await cli(['recon', 'report', BILL_DATE]);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toMatch(/paid amount +75\.01 +75\.01 +75\.00/);
    expect(report.stdout).toMatch(/AMOUNT_MISMATCH +1 +0 +0 +0/);
    expect(report.stdout).toContain(`sha256 ${summary.statement.sha256.slice(0, 12)}`);

    const open = await cliJson<{ breaks: { id: number; kind: string; ref: string; status: string }[] }>([
      'recon',
      'breaks',
      '--open',
      '--date',
      BILL_DATE,
    ]);
    expect(open.breaks).toEqual([
      expect.objectContaining({ kind: 'AMOUNT_MISMATCH', ref: faulty, status: 'OPEN' }),
    ]);
    const id = open.breaks[0]?.id ?? 0;
    const table = await cli(['recon', 'breaks', '--open', '--kind', 'amount_mismatch']);
    expect(table.stdout).toContain(faulty);
    expect(table.stdout).toContain('25.00 CNY → 25.01 CNY');
    expect(table.stdout).not.toContain(first);
    expect(table.stdout).not.toContain(third);

    const resolved = await cli([
      'recon',
      'resolve',
      String(id),
      '--note',
      'the provider\'s fee, "rounded"',
      '--by',
      'tester',
    ]);
    expect(resolved.code, resolved.stderr).toBe(0);
    expect(resolved.stdout).toContain(
      `break ${id} (AMOUNT_MISMATCH ${faulty}, ${BILL_DATE}) resolved by tester`,
    );
    const again = await cli(['recon', 'resolve', String(id), '--note', 'twice']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`break ${id} is RESOLVED by tester`);

    const after = await cliJson<{ breaks: unknown[] }>(['recon', 'breaks', '--open', '--date', BILL_DATE]);
    expect(after.breaks).toEqual([]);
    expect((await cli(['recon', 'report', BILL_DATE])).stdout).toContain('now: 0 open or expected');

    const csv = await cli(['recon', 'report', BILL_DATE, '--csv']);
    expect(csv.code, csv.stderr).toBe(0);
    const rows = parse(csv.stdout, { columns: true }) as Record<string, string>[];
    expect(Object.keys(rows[0] ?? {})).toEqual([
      'id',
      'bill_date',
      'kind',
      'ref',
      'order_id',
      'trade_no',
      'status',
      'ours',
      'theirs',
      'heal_action',
      'resolved_by',
      'resolution_note',
    ]);
    expect(rows).toEqual([
      expect.objectContaining({
        id: String(id),
        bill_date: BILL_DATE,
        kind: 'AMOUNT_MISMATCH',
        ref: faulty,
        order_id: faulty,
        status: 'RESOLVED',
        heal_action: '',
        resolved_by: 'tester',
        resolution_note: 'the provider\'s fee, "rounded"',
      }),
    ]);
    expect(JSON.parse(rows[0]?.ours ?? '')).toEqual({ amount: 2500, currency: 'CNY' });
    expect(JSON.parse(rows[0]?.theirs ?? '')).toEqual({ amount: 2501, currency: 'CNY' });

    // A re-run of the same day finds the same break and keeps its resolution; a dry run writes nothing.
    const rerun = await cliJson<{ summary: ReconciliationSummary }>(['recon', 'run', BILL_DATE]);
    expect(rerun.summary).toMatchObject({ status: 'BALANCED', breaks: { AMOUNT_MISMATCH: { RESOLVED: 1 } } });
    const dry = await cliJson<{ workflowId: string; summary: ReconciliationSummary }>([
      'recon',
      'run',
      BILL_DATE,
      '--dry-run',
    ]);
    expect(dry.workflowId).toContain('-dry-run-');
    expect(dry.summary).toMatchObject({ dryRun: true, runId: null });
    const noWait = await cliJson<{ workflowId: string; webUi: string }>([
      'recon',
      'run',
      BILL_DATE,
      '--no-wait',
    ]);
    expect(noWait.workflowId).toBe(`reconciliation-${PROVIDER}-${BILL_DATE}`);
    expect(noWait.webUi).toContain(encodeURIComponent(noWait.workflowId));
    await stack.temporal.workflow.getHandle(noWait.workflowId).result();
  }, 120_000);
});
