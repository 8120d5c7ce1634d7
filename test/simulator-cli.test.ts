import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { orderWorkflowId } from '../src/domain';
import { STATEMENT_COLUMNS } from '../src/provider/statement-format';
import { freePort } from '../tools/net';
import { runSimulatorCli } from '../tools/simulator/cli';
import { cliEnv, inProcessCli, removeOrders, spawnCli } from './support/cli';
import { deleteTopology, eventually, testConfig } from './support/env';
import { type Stack, startStack } from './support/stack';

/**
 * The payment simulator's own CLI (`npm run sim -- ...`, tools/simulator/cli.ts) against the real
 * services: the simulator in-process on a free port, the worker and consumer on this file's own AMQP
 * prefix and task queue, orders made with payrecon's `order create`. Commands run in-process through
 * runSimulatorCli (same code path as `npm run sim`); one spawns the script to prove what a shell sees.
 */

const TSX = path.resolve(__dirname, '../node_modules/.bin/tsx');
const SCRIPT = path.resolve(__dirname, '../tools/simulator/cli.ts');
let stack: Stack;
/** Orders this file made, removed at the end. */
const createdOrders = new Set<string>();

const sim = inProcessCli(runSimulatorCli, () => stack.config);
const payrecon = inProcessCli(runCli, () => stack.config);

/** A bill date no other test file uses, and the one trade paid on it. */
const BILL_DATE = '2026-03-28';
const BILL_ORDER = `simcli-bill-${randomUUID().slice(0, 8)}`;

async function createOrder(extra: string[] = []) {
  const created = await payrecon.cliJson<{
    order: { id: string; amount: number };
    trade: { tradeNo: string } | null;
  }>(['order', 'create', '--amount', '2599', '--pay-within', '1h', '--ladder', '1h', ...extra]);
  createdOrders.add(created.order.id);
  return created;
}

async function orderRow(id: string) {
  const [row] = await stack.sql`select status, settled_by, trade_no from orders where id = ${id}`;
  return row;
}

beforeAll(async () => {
  stack = await startStack(testConfig('simcli'), { simulator: true });
});

afterAll(async () => {
  if (stack) {
    await stack.sql`delete from provider.trades where order_id = ${BILL_ORDER}`;
    await stack.sql`delete from provider.bill_faults where bill_date = ${BILL_DATE}`;
  }
  await removeOrders(stack, [...createdOrders]);
  await stack?.stop();
  if (stack) await deleteTopology(stack.config);
});

describe('sim pay', () => {
  it('pay --duplicate 2: the notification is published twice, the order is paid once over MQ', async () => {
    const { order, trade } = await createOrder();
    const paid = await sim.cliJson<{
      faults: Record<string, unknown>;
      trade: { status: string; tradeNo: string };
      notification: { outcome: string; copies: number };
    }>(['pay', order.id, '--duplicate', '2']);
    expect(paid.faults).toEqual({ duplicate: 2 });
    expect(paid.trade).toMatchObject({ status: 'TRADE_SUCCESS', tradeNo: trade?.tradeNo });
    expect(paid.notification).toMatchObject({ outcome: 'published', copies: 2 });

    await eventually('order PAID', async () =>
      (await orderRow(order.id))?.status === 'PAID' ? true : undefined,
    );
    const result = await stack.temporal.workflow.getHandle(orderWorkflowId(order.id)).result();
    expect(result).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    expect(await orderRow(order.id)).toMatchObject({ settled_by: 'mq', trade_no: trade?.tradeNo });
    const events = await stack.sql`select source from payment_events where order_id = ${order.id}`;
    expect(events.map((e) => e.source)).toEqual(['mq']);

    const again = await sim.cli(['pay', order.id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('only a WAIT_BUYER_PAY trade can be paid');
  });

  it('pay --drop: the trade is paid, no notification is sent; an order without a trade is named', async () => {
    const { order } = await createOrder();
    const paid = await sim.cliJson<{ notification: { outcome: string } }>(['pay', order.id, '--drop']);
    expect(paid.notification.outcome).toBe('dropped');
    const human = await sim.cli(['trade', 'show', order.id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/trade status:\s+TRADE_SUCCESS/);

    const missing = await sim.cli(['pay', `ord_none_${randomUUID().slice(0, 8)}`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has no trade for order');
  });

  it('pay --wrong-amount --delay: a human-readable outcome', async () => {
    const { order } = await createOrder();
    const run = await sim.cli(['pay', order.id, '--wrong-amount', '100', '--delay', '1s']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/outcome:\s+scheduled in 1000 ms/);
    expect(run.stdout).toMatch(/paid:\s+1\.00 CNY/);
    await eventually('order NEEDS_REVIEW', async () =>
      (await orderRow(order.id))?.status === 'NEEDS_REVIEW' ? true : undefined,
    );
  });
});

describe('sim trade', () => {
  it('trade open is idempotent for the same amount, refuses another; trade show reads it', async () => {
    const { order, trade } = await createOrder(['--no-trade']);
    expect(trade).toBeNull();
    const opened = await sim.cliJson<{ tradeNo: string; status: string; created: boolean }>([
      'trade',
      'open',
      order.id,
      '--amount',
      '2599',
    ]);
    expect(opened).toMatchObject({ status: 'WAIT_BUYER_PAY', created: true });
    const again = await sim.cliJson<{ tradeNo: string; created: boolean }>([
      'trade',
      'open',
      order.id,
      '--amount',
      '2599',
    ]);
    expect(again).toEqual(expect.objectContaining({ tradeNo: opened.tradeNo, created: false }));
    const conflict = await sim.cli(['trade', 'open', order.id, '--amount', '2600']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain(`already has trade ${opened.tradeNo}`);

    const shown = await sim.cliJson<{ tradeNo: string; totalAmount: number; currency: string }>([
      'trade',
      'show',
      order.id,
    ]);
    expect(shown).toMatchObject({ tradeNo: opened.tradeNo, totalAmount: 2599, currency: 'CNY' });
    const none = await sim.cli(['trade', 'show', `ord_none_${randomUUID().slice(0, 8)}`]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('has no trade for order');
  });
});

describe('sim bill', () => {
  it('sets the faults of a day, shows them, downloads the bill (decoded, past an expired URL) and clears them', async () => {
    await stack.sql`delete from provider.bill_faults where bill_date = ${BILL_DATE}`;
    await stack.sql`insert into provider.trades (trade_no, order_id, amount, currency, status, paid_amount, paid_at)
                    values (${`20260328${Date.now()}`}, ${BILL_ORDER}, 2599, 'CNY', 'TRADE_SUCCESS', 2599,
                            '2026-03-28T10:00:00+08:00')`;
    const set = await sim.cliJson<{ billDate: string; faults: Record<string, unknown> }>([
      'bill',
      BILL_DATE,
      '--omit',
      'ord_a',
      '--omit',
      'ord_b',
      '--extra',
      'ghost_1:990',
      '--amount-delta',
      `${BILL_ORDER}:-1`,
      '--status',
      'ord_c:TRADE_CLOSED',
      '--duplicate',
      'ord_d',
      '--omit-refund',
      'ord_e-R1',
      '--carry',
      'ord_f',
      '--summary-delta',
      'pay_amount=5',
      '--summary-delta',
      'rows=-1',
      '--ttl',
      '5s',
      '--expire-next',
      '1',
      '--gbk',
      '--zip',
    ]);
    const faults = {
      omitPayments: ['ord_a', 'ord_b'],
      extraPayments: [{ orderId: 'ghost_1', amount: 990 }],
      amountDeltas: { [BILL_ORDER]: -1 },
      statusOverrides: { ord_c: 'TRADE_CLOSED' },
      duplicatePayments: ['ord_d'],
      omitRefunds: ['ord_e-R1'],
      carryToNextDay: ['ord_f'],
      summaryDelta: { payAmount: 5, rows: -1 },
      urlTtlMs: 5_000,
      expireNextUrls: 1,
      encoding: 'gbk',
      zipped: true,
    };
    expect(set).toEqual({ billDate: BILL_DATE, faults });

    const shown = await sim.cli(['bill', BILL_DATE, '--show']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/omitted payments:\s+ord_a, ord_b/);
    expect(shown.stdout).toMatch(/extra payments:\s+ghost_1:990/);
    expect(shown.stdout).toMatch(/encoding:\s+gbk/);
    expect(shown.stdout).toMatch(/urls born expired:\s+1/);

    // The first URL is born expired: the command asks again, unzips and decodes the GBK.
    const downloaded = await sim.cli(['bill', BILL_DATE, '--download']);
    expect(downloaded.code).toBe(0);
    const lines = downloaded.stdout.split('\n');
    expect(lines.slice(0, 3)).toEqual([
      '#payrecon simulator trade bill',
      `#bill date: ${BILL_DATE} (Asia/Shanghai)`,
      STATEMENT_COLUMNS.join(','),
    ]);
    expect(downloaded.stdout).toContain(
      `,${BILL_ORDER},交易,,CNY,25.98,0.16,TRADE_SUCCESS,2026-03-28 10:00:00\n`,
    );
    expect(downloaded.stdout).toContain(',ghost_1,交易,,CNY,9.90,0.06,TRADE_SUCCESS,2026-03-28 12:00:00\n');
    expect(downloaded.stdout).toContain('#summary:rows=1;pay_count=2;pay_amount=35.93;');

    const dir = await mkdtemp(path.join(os.tmpdir(), 'simcli-bill-'));
    try {
      const file = path.join(dir, 'bill.csv');
      const written = await sim.cliJson<{ file: string; rows: number }>([
        'bill',
        BILL_DATE,
        '--download',
        '--out',
        file,
      ]);
      expect(written).toMatchObject({ file, rows: 2 });
      expect(await readFile(file, 'utf8')).toBe(downloaded.stdout);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    const cleared = await sim.cliJson<{ faults: Record<string, unknown> }>(['bill', BILL_DATE, '--clear']);
    expect(cleared.faults).toEqual({});
    const none = await sim.cli(['bill', BILL_DATE]);
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/omitted payments:\s+-/);
    const plain = await sim.cli(['bill', BILL_DATE, '--download']);
    expect(plain.stdout).toContain(`,${BILL_ORDER},交易,,CNY,25.99,0.16,TRADE_SUCCESS,2026-03-28 10:00:00\n`);
  });

  it('a future day is named, not a usage error', async () => {
    const run = await sim.cli(['bill', '2999-01-01', '--download']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('the bill of 2999-01-01 is not ready');
  });
});

describe('usage errors and a simulator that is down', () => {
  it('bad input exits 2 with a message, before the simulator is asked', async () => {
    const cases: [string[], string][] = [
      [['pay', 'ord_1', '--duplicate', 'x'], '--duplicate must be a whole number'],
      [['pay', 'ord_1', '--duplicate', '0'], '--duplicate must be a whole number from 1 to 100'],
      [['pay', 'ord_1', '--corrupt', 'bytes'], '--corrupt takes json'],
      [['pay', 'ord_1', '--delay', '11m'], 'the delay is at most 10m'],
      [['pay', 'ord_1', '--wrong-amount', '1.5'], '--wrong-amount must be a whole number'],
      [['pay', 'bad id!'], 'order ids are 1-64 letters'],
      [['pay'], "missing required argument 'orderId'"],
      [['trade', 'open', 'ord_1'], "required option '--amount <minor>' not specified"],
      [['trade', 'open', 'ord_1', '--amount', '5', '--currency', 'yuan'], 'ISO 4217'],
      [['refund', 'ord_1'], "required option '--amount <minor>' not specified"],
      [['refund', 'ord_1', '--amount', '5', '--processing', '25h'], 'the processing time is at most 24h'],
      [['refund', 'ord_1', '--amount', '5', '--out-request-no', 'a b'], 'an out_request_no is 1-128'],
      [['nope', 'ord_1'], "unknown command 'nope'"],
      [['bill', '2026-02-30'], 'the bill date is a real calendar day written YYYY-MM-DD'],
      [['bill', '2026-03-28', '--extra', 'ghost'], '--extra takes ORDER:AMOUNT'],
      [['bill', '2026-03-28', '--extra', 'ghost:1.5'], '--extra AMOUNT must be a whole number'],
      [['bill', '2026-03-28', '--amount-delta', 'ord_1:0'], '--amount-delta DELTA is not 0'],
      [['bill', '2026-03-28', '--status', 'ord_1:paid'], '--status STATUS is 1-32 capitals'],
      [['bill', '2026-03-28', '--omit', 'bad id!'], '--omit: order ids are 1-64'],
      [['bill', '2026-03-28', '--summary-delta', 'total=1'], '--summary-delta takes field=n'],
      [['bill', '2026-03-28', '--ttl', '25h'], 'the URL lifetime is at most 24h'],
      [['bill', '2026-03-28', '--expire-next', '-1'], '--expire-next must be a whole number from 0 to 1000'],
      [['bill', '2026-03-28', '--gbk', '--utf8'], '--gbk and --utf8 exclude each other'],
      [['bill', '2026-03-28', '--show', '--omit', 'ord_1'], '--show only prints'],
      [['bill', '2026-03-28', '--out', 'x.csv'], '--out goes with --download'],
    ];
    const port = await freePort();
    for (const [args, message] of cases) {
      const run = await sim.cli(args, { PROVIDER_URL: `http://127.0.0.1:${port}` });
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toContain(message);
    }
  });

  it('the script (npm run sim) names a simulator that is down and exits 1', async () => {
    const port = await freePort();
    const down = await spawnCli(
      TSX,
      [SCRIPT, 'pay', 'ord_1', '--drop'],
      cliEnv(stack.config, { PROVIDER_URL: `http://127.0.0.1:${port}` }),
    );
    expect(down.code).toBe(1);
    expect(down.stderr).toContain(
      `sim: error: the payment simulator is not reachable at http://127.0.0.1:${port}`,
    );
    expect(down.stdout).toBe('');

    const help = await spawnCli(TSX, [SCRIPT, '--help'], cliEnv(stack.config));
    expect(help.code).toBe(0);
    for (const command of ['pay', 'trade']) expect(help.stdout).toContain(command);
  });
});
