import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { orderWorkflowId } from '../src/domain';
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
