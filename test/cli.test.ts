import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import { orderWorkflowId } from '../src/domain';
import type { Config } from '../src/platform/config';
import { freePort } from '../tools/net';
import { SimulatorClient } from '../tools/simulator/client';
import { type RunningSimulator, startSimulator } from '../tools/simulator/server';
import { type CliRun, cliEnv, inProcessCli, removeOrders, spawnCli } from './support/cli';
import { deleteTopology, eventually, testConfig } from './support/env';
import { paidNotification, type Stack, startStack } from './support/stack';

/**
 * The operator CLI against the real services: Temporal dev server, PostgreSQL, RabbitMQ, the payment
 * simulator, with this file's own AMQP prefix and task queue. Most commands run in-process through
 * runCli (same code path as the bin, output captured); a few spawn `node bin/payrecon.js` to prove the
 * bin, the exit codes and the messages a shell sees.
 */

const BIN = path.resolve(__dirname, '../bin/payrecon.js');
const baseConfig = testConfig('cli');
let config: Config;
let simulator: RunningSimulator;
let stack: Stack;
let workDir: string;
/** Orders this file made, removed at the end. */
const createdOrders = new Set<string>();

const { cli, cliJson } = inProcessCli(runCli, () => config);

/** A real process: `node bin/payrecon.js ...`. */
function spawnPayrecon(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return spawnCli(process.execPath, [BIN, ...args], cliEnv(config, env));
}

/** Ready messages in the parking queue. A connection per call: other test files may restart the broker. */
async function parkingDepth(): Promise<number> {
  const connection = await amqplib.connect(config.AMQP_URL);
  try {
    const channel = await connection.createChannel();
    return (await channel.checkQueue(stack.topology.parkingQueue)).messageCount;
  } finally {
    await connection.close().catch(() => {});
  }
}

async function orderRow(id: string) {
  const [row] =
    await stack.sql`select status, settled_by, trade_no, close_reason from orders where id = ${id}`;
  return row;
}

async function createOrderViaCli(extra: string[] = []) {
  const created = await cliJson<{
    order: { id: string; status: string; amount: number; currency: string };
    workflowId: string;
    webUi: string;
    trade: { tradeNo: string; status: string } | null;
    tradeError: string | null;
  }>(['order', 'create', '--amount', '2599', '--pay-within', '1h', '--ladder', '1h', ...extra]);
  createdOrders.add(created.order.id);
  return created;
}

beforeAll(async () => {
  simulator = await startSimulator({ config: baseConfig, port: 0 });
  config = { ...baseConfig, PROVIDER_URL: simulator.url };
  stack = await startStack(config);
  workDir = await mkdtemp(path.join(tmpdir(), 'payrecon-cli-'));
});

afterAll(async () => {
  await removeOrders(stack, [...createdOrders]);
  await stack?.stop();
  await simulator?.close();
  await deleteTopology(config ?? baseConfig);
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

describe('the bin, help and usage errors (spawned processes)', () => {
  it('node bin/payrecon.js --help lists every command group; each command has --help with --json', async () => {
    const help = await spawnPayrecon(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['order', 'signal', 'query', 'replay', 'dlq', 'discrepancies']) {
      expect(help.stdout).toContain(command);
    }
    // Paying is the buyer's and the simulator's business, not an operator's (npm run sim -- pay).
    expect(help.stdout).not.toMatch(/^\s+pay\b/m);
    const requeueHelp = await spawnPayrecon(['dlq', 'requeue', '--help']);
    expect(requeueHelp.code).toBe(0);
    expect(requeueHelp.stdout).toContain('--all');
    expect(requeueHelp.stdout).toContain('--json');
  });

  it('a bad amount exits 2 and says what is wrong', async () => {
    const run = await spawnPayrecon(['order', 'create', '--amount', 'abc']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("option '--amount <minor>' argument 'abc' is invalid");
    expect(run.stderr).toContain('positive whole number of minor units');
    expect(run.stdout).toBe('');
  });

  it('a service that is down is named: RabbitMQ, PostgreSQL, Temporal (exit 1)', async () => {
    const port = await freePort();
    const rabbit = await spawnPayrecon(['dlq', 'list'], { AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}` });
    expect(rabbit.code).toBe(1);
    expect(rabbit.stderr).toContain(`RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:${port}`);

    const postgres = await spawnPayrecon(['order', 'list'], {
      DATABASE_URL: `postgres://postgres:secret@127.0.0.1:${port}/payrecon_test`,
    });
    expect(postgres.code).toBe(1);
    expect(postgres.stderr).toContain(
      `PostgreSQL is not reachable at postgres://postgres:***@127.0.0.1:${port}`,
    );
    expect(postgres.stderr).not.toContain('secret');

    const temporal = await cli(['query', 'ord_whatever'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(temporal.code).toBe(1);
    expect(temporal.stderr).toContain(`Temporal server is not reachable at 127.0.0.1:${port}`);
  });

  it('other bad input exits 2 with a message, before any service is touched', async () => {
    const cases: [string[], string][] = [
      [['order', 'create', '--amount', '-5'], 'positive whole number'],
      [['order', 'create', '--amount', '0'], 'greater than 0'],
      [['order', 'create', '--amount', '12.5'], 'positive whole number'],
      [['order', 'create', '--amount', '100', '--currency', 'yuan'], 'ISO 4217'],
      [['order', 'create', '--amount', '100', '--pay-within', 'soon'], 'positive duration'],
      [['order', 'create', '--amount', '100', '--ladder', '3s,,9s'], 'comma-separated list'],
      [['order', 'create'], "required option '--amount <minor>' not specified"],
      [
        ['order', 'list', '--status', 'bogus'],
        'one of: UNPAID, PAID, PARTIALLY_REFUNDED, REFUNDED, CLOSED, NEEDS_REVIEW',
      ],
      [['order', 'list', '--limit', '0'], '--limit must be a whole number from 1 to 1000'],
      [['order', 'show', 'bad id!'], 'order ids are 1-64 letters'],
      [['pay', 'ord_1'], "unknown command 'pay'"],
      [['signal', 'notify', 'ord_1', '--amount', '5'], "required option '--trade-no <tradeNo>'"],
      [['discrepancies', 'list', '--kind', 'bogus'], 'one of: AMOUNT_MISMATCH'],
      [['dlq', 'requeue'], 'give the message id to requeue, or --all'],
      [['dlq', 'requeue', 'abc', '--all'], 'not both'],
      [['dlq', 'purge'], 'add --yes'],
      [['replay'], 'give the workflow id to fetch, or --file'],
      [['replay', 'order-x', '--file', 'h.json'], 'not both'],
      [['nosuchcommand'], "unknown command 'nosuchcommand'"],
    ];
    // Services pointed at a closed port: these must fail on the arguments alone.
    const port = await freePort();
    const down = {
      AMQP_URL: `amqp://guest:guest@127.0.0.1:${port}`,
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/x`,
      TEMPORAL_ADDRESS: `127.0.0.1:${port}`,
    };
    for (const [args, message] of cases) {
      const run = await cli(args, down);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toContain(message);
    }
  });
});

describe('orders: create, show, list, query, signal, replay', () => {
  let paidOrderId: string;

  it('order create opens the trade, starts the workflow and prints the Web UI link', async () => {
    const created = await createOrderViaCli();
    const id = created.order.id;
    expect(created.order).toMatchObject({ status: 'UNPAID', amount: 2599, currency: 'CNY' });
    expect(created.workflowId).toBe(orderWorkflowId(id));
    expect(created.webUi).toBe(
      `${config.TEMPORAL_UI_URL}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows/${created.workflowId}`,
    );
    expect(created.trade).toMatchObject({ status: 'WAIT_BUYER_PAY' });
    expect(created.tradeError).toBeNull();

    const shown = await cliJson<{
      order: { status: string };
      events: unknown[];
      workflow: { status: string; state?: { phase: string; pollAttempts: number } };
    }>(['order', 'show', id]);
    expect(shown.order.status).toBe('UNPAID');
    expect(shown.events).toEqual([]);
    expect(shown.workflow.status).toBe('RUNNING');
    expect(shown.workflow.state).toMatchObject({ phase: 'AWAITING_PAYMENT', pollAttempts: 0 });

    const listed = await cliJson<{ orders: { id: string; status: string }[] }>([
      'order',
      'list',
      '--status',
      'unpaid',
      '--limit',
      '1000',
    ]);
    expect(listed.orders.map((o) => o.id)).toContain(id);
    expect(listed.orders.every((o) => o.status === 'UNPAID')).toBe(true);

    // Other test files share the test database: a large limit, so this order is surely listed.
    const table = await cli(['order', 'list', '--status', 'UNPAID', '--limit', '1000']);
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+STATUS\s+AMOUNT/);
    expect(table.stdout).toContain(id);
    expect(table.stdout).toContain('25.99 CNY');

    const state = await cliJson<{ state: { phase: string } }>(['query', id]);
    expect(state.state.phase).toBe('AWAITING_PAYMENT');
  });

  it('order show: an order the buyer paid over MQ, with its event and the workflow result', async () => {
    const { order } = await createOrderViaCli();
    paidOrderId = order.id;
    await new SimulatorClient(config.PROVIDER_URL).pay(order.id);
    await eventually('order PAID', async () =>
      (await orderRow(order.id))?.status === 'PAID' ? true : undefined,
    );
    await stack.temporal.workflow.getHandle(orderWorkflowId(order.id)).result();
    const shown = await cliJson<{
      order: { status: string; settledBy: string };
      events: { source: string }[];
      workflow: { status: string; result?: { status: string } };
    }>(['order', 'show', order.id]);
    expect(shown.order).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    expect(shown.events.map((e) => e.source)).toEqual(['mq']);
    expect(shown.workflow).toMatchObject({ status: 'COMPLETED', result: { status: 'PAID' } });

    const human = await cli(['order', 'show', order.id]);
    expect(human.stdout).toContain('payment events (1)');
    expect(human.stdout).toContain(`workflow ${orderWorkflowId(order.id)}: COMPLETED`);
  });

  it('signal notify (manual) pays the order once the provider confirms it; a second trade after the end becomes a discrepancy', async () => {
    const { order, trade } = await createOrderViaCli();
    const tradeNo = trade?.tradeNo ?? 'no trade opened';
    const initiated = await cli(['signal', 'initiated', order.id]);
    expect(initiated.code).toBe(0);
    // The buyer paid, but the provider's MQ notice was lost: the operator's notice brings the news.
    await new SimulatorClient(config.PROVIDER_URL).pay(order.id, { faults: { drop: true } });

    // An operator's notice is always checked with the provider (one trade query) before it pays.
    const first = await cliJson<{ delivery: string; notice: { source: string; currency: string } }>([
      'signal',
      'notify',
      order.id,
      '--trade-no',
      tradeNo,
      '--amount',
      '2599',
    ]);
    expect(first).toMatchObject({ delivery: 'signalled', notice: { source: 'manual', currency: 'CNY' } });
    await stack.temporal.workflow.getHandle(orderWorkflowId(order.id)).result();
    expect(await orderRow(order.id)).toMatchObject({
      status: 'PAID',
      settled_by: 'manual',
      trade_no: tradeNo,
    });

    const late = await cliJson<{ delivery: string }>([
      'signal',
      'notify',
      order.id,
      '--trade-no',
      'T-manual-2',
      '--amount',
      '2599',
    ]);
    expect(late.delivery).toBe('recorded-after-end');
    const listed = await cliJson<{ discrepancies: { kind: string; orderId: string }[] }>([
      'discrepancies',
      'list',
      '--order',
      order.id,
    ]);
    expect(listed.discrepancies.map((d) => d.kind)).toEqual(['DUPLICATE_PAYMENT']);

    const ended = await cli(['signal', 'initiated', order.id]);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toContain('has ended (order is PAID)');
  });

  it('signal cancel closes an unpaid order after the final check', async () => {
    const { order } = await createOrderViaCli();
    const cancelled = await cli(['signal', 'cancel', order.id, '--reason', 'buyer changed mind']);
    expect(cancelled.code).toBe(0);
    const result = await stack.temporal.workflow.getHandle(orderWorkflowId(order.id)).result();
    expect(result.status).toBe('CLOSED');
    expect(await orderRow(order.id)).toMatchObject({ status: 'CLOSED', close_reason: 'buyer changed mind' });
  });

  it('replay: a history from the server and from a file replays deterministically; a tampered one fails', async () => {
    const file = path.join(workDir, 'paid.json');
    const fetched = await cliJson<{ deterministic: boolean; events: number; savedTo: string }>([
      'replay',
      orderWorkflowId(paidOrderId),
      '--out',
      file,
    ]);
    expect(fetched).toMatchObject({ deterministic: true, savedTo: file });
    expect(fetched.events).toBeGreaterThan(5);

    const fromFile = await cli(['replay', '--file', file]);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toContain('replay OK: deterministic');

    // The recorded history says the workflow ran a different (local) activity than the code does.
    const history = JSON.parse(await readFile(file, 'utf8')) as {
      events: {
        markerRecordedEventAttributes?: { details?: { data?: { payloads?: { data: string }[] } } };
      }[];
    };
    const markers = history.events.flatMap(
      (e) => e.markerRecordedEventAttributes?.details?.data?.payloads ?? [],
    );
    const markOrderPaid = markers.find((p) =>
      Buffer.from(p.data, 'base64').toString().includes('"markOrderPaidByNotice"'),
    );
    expect(markOrderPaid).toBeDefined();
    if (markOrderPaid) {
      const data = Buffer.from(markOrderPaid.data, 'base64')
        .toString()
        .replace('"markOrderPaidByNotice"', '"closeOrder"');
      markOrderPaid.data = Buffer.from(data).toString('base64');
    }
    const tampered = path.join(workDir, 'tampered.json');
    await writeFile(tampered, JSON.stringify(history));
    const failed = await cli(['replay', '--file', tampered]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('replay FAILED');
    expect(failed.stdout).toContain('DeterminismViolationError');
    expect(failed.stdout).toContain("Activity type of recorded marker 'closeOrder'");
    expect(failed.stderr).toContain('does not replay this history deterministically');

    const missing = await cli(['replay', '--file', path.join(workDir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the history file');
  });
});

describe('dlq: the parking queue', () => {
  const lateOrderId = `ord_cli_late_${randomUUID().slice(0, 8)}`;
  const late = paidNotification({ id: lateOrderId, amount: 777, currency: 'CNY' });
  let forgedId: string;

  interface Listing {
    queue: string;
    total: number;
    messages: {
      messageId: string;
      reason: string;
      detail: string;
      attempts: number;
      originalRoutingKey: string;
      parkedAt: string;
      orderId: string | null;
      requeues: number;
    }[];
  }

  beforeAll(async () => {
    createdOrders.add(lateOrderId);
    const parkedBefore = Object.values(stack.consumer?.stats.parked ?? {}).reduce((a, b) => a + b, 0);
    const forged = paidNotification({
      id: `ord_cli_forged_${randomUUID().slice(0, 8)}`,
      amount: 1,
      currency: 'CNY',
    });
    forgedId = forged.messageId;
    await stack.publish(forged, { secret: 'an-attacker-secret-of-16+' });
    await stack.publish('{"version":1, not json', { messageId: `not-json-${randomUUID()}` });
    // A valid notice for an order that does not exist yet: parked as UNKNOWN_ORDER.
    await stack.publish(late);
    await eventually('three parked messages', async () => {
      const parked = Object.values(stack.consumer?.stats.parked ?? {}).reduce((a, b) => a + b, 0);
      return parked >= parkedBefore + 3 && (await parkingDepth()) === 3 ? true : undefined;
    });
  });

  it('dlq list shows every parked message with its reason and loses none (order kept)', async () => {
    const first = await cliJson<Listing>(['dlq', 'list']);
    expect(first.total).toBe(3);
    expect(first.messages.map((m) => m.reason).sort()).toEqual([
      'BAD_SIGNATURE',
      'NOT_JSON',
      'UNKNOWN_ORDER',
    ]);
    for (const message of first.messages) {
      expect(message.originalRoutingKey).toBe('trade.paid');
      expect(message.attempts).toBe(1);
      expect(message.detail).not.toBe('');
      expect(Number.isNaN(Date.parse(message.parkedAt))).toBe(false);
    }
    expect(first.messages.find((m) => m.reason === 'UNKNOWN_ORDER')?.orderId).toBe(lateOrderId);
    expect(await parkingDepth()).toBe(3);

    const second = await cliJson<Listing>(['dlq', 'list']);
    expect(second.messages.map((m) => m.messageId)).toEqual(first.messages.map((m) => m.messageId));

    const limited = await cliJson<Listing>(['dlq', 'list', '--limit', '1']);
    expect(limited.total).toBe(3);
    expect(limited.messages.map((m) => m.messageId)).toEqual([first.messages[0]?.messageId]);

    const human = await cli(['dlq', 'list']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/MESSAGE ID\s+REASON\s+ATTEMPTS\s+ROUTING KEY\s+PARKED AT\s+ORDER/);
    expect(human.stdout).toContain('UNKNOWN_ORDER');
    expect(human.stdout).toContain('BAD_SIGNATURE');
    expect(human.stdout).toContain('3 parked message(s)');
    expect(await parkingDepth()).toBe(3);
    const third = await cliJson<Listing>(['dlq', 'list']);
    expect(third.messages.map((m) => m.messageId)).toEqual(first.messages.map((m) => m.messageId));
  });

  it('discrepancies list shows the UNKNOWN_ORDER the consumer recorded; resolve marks it', async () => {
    const listed = await cliJson<{
      discrepancies: { id: number; orderId: string; kind: string; subject: string }[];
    }>(['discrepancies', 'list', '--kind', 'UNKNOWN_ORDER', '--unresolved', '--limit', '1000']);
    const mine = listed.discrepancies.find((d) => d.orderId === lateOrderId);
    expect(mine?.kind).toBe('UNKNOWN_ORDER');
    // Keyed on the trade the notice names: another trade for the same unknown order is a row of its own.
    expect(mine?.subject).toBe(late.tradeNo);

    const human = await cli(['discrepancies', 'list', '--order', lateOrderId]);
    expect(human.stdout).toMatch(/ID\s+ORDER\s+KIND\s+SUBJECT/);
    expect(human.stdout).toContain('UNKNOWN_ORDER');

    const resolved = await cliJson<{ discrepancy: { resolution: string; resolvedAt: string } }>([
      'discrepancies',
      'resolve',
      String(mine?.id),
      '--note',
      'order created late; notification requeued',
    ]);
    expect(resolved.discrepancy.resolution).toBe('order created late; notification requeued');
    const unresolved = await cliJson<{ discrepancies: unknown[] }>([
      'discrepancies',
      'list',
      '--order',
      lateOrderId,
      '--unresolved',
    ]);
    expect(unresolved.discrepancies).toEqual([]);
    const twice = await cli(['discrepancies', 'resolve', String(mine?.id), '--note', 'again']);
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('already resolved');
  });

  it('dlq requeue <messageId>: the message goes back to the payment exchange, is consumed again and pays the order', async () => {
    // The operator fixes the cause (the order now exists), then re-drives the one message.
    await cliJson([
      'order',
      'create',
      '--id',
      lateOrderId,
      '--amount',
      '777',
      '--no-trade',
      '--ladder',
      '1h',
    ]);
    const requeued = await cliJson<{
      requeued: { messageId: string; routingKey: string }[];
      failed: unknown[];
    }>(['dlq', 'requeue', late.messageId]);
    expect(requeued.requeued).toEqual([
      expect.objectContaining({ messageId: late.messageId, routingKey: 'trade.paid' }),
    ]);
    expect(requeued.failed).toEqual([]);

    // The signature travelled with it: the consumer accepted it and paid the order over MQ.
    await eventually('late order PAID', async () =>
      (await orderRow(lateOrderId))?.status === 'PAID' ? true : undefined,
    );
    expect(await orderRow(lateOrderId)).toMatchObject({ settled_by: 'mq', trade_no: late.tradeNo });
    const left = await cliJson<Listing>(['dlq', 'list']);
    expect(left.messages.map((m) => m.reason).sort()).toEqual(['BAD_SIGNATURE', 'NOT_JSON']);

    const unknown = await cli(['dlq', 'requeue', 'no-such-message']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no message with id "no-such-message"');
    expect(await parkingDepth()).toBe(2);
  });

  it('dlq requeue --all re-drives every parked message once (hopeless ones come back parked, marked)', async () => {
    const requeued = await cliJson<{ requeued: { messageId: string }[] }>(['dlq', 'requeue', '--all']);
    expect(requeued.requeued).toHaveLength(2);
    expect(requeued.requeued.map((m) => m.messageId)).toContain(forgedId);

    // The consumer rejects them again; they are parked anew with a fresh attempt count.
    const back = await eventually('both re-parked', async () => {
      if ((await parkingDepth()) !== 2) return undefined;
      const listing = await cliJson<Listing>(['dlq', 'list']);
      return listing.messages.every((m) => m.requeues === 1) ? listing : undefined;
    });
    expect(back.messages.map((m) => m.reason).sort()).toEqual(['BAD_SIGNATURE', 'NOT_JSON']);
    expect(back.messages.every((m) => m.attempts === 1)).toBe(true);

    const human = await cli(['dlq', 'requeue', forgedId]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`requeued ${forgedId} -> ${stack.topology.paymentExchange} [trade.paid]`);
    await eventually('forged one re-parked', async () => ((await parkingDepth()) === 2 ? true : undefined));
  });

  it('dlq purge refuses without --yes, then empties the queue and prints the count', async () => {
    await eventually('two parked', async () => ((await parkingDepth()) === 2 ? true : undefined));
    const refused = await spawnPayrecon(['dlq', 'purge']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('add --yes');
    expect(await parkingDepth()).toBe(2);

    const purged = await cliJson<{ purged: number; queue: string }>(['dlq', 'purge', '--yes']);
    expect(purged).toEqual({ purged: 2, queue: stack.topology.parkingQueue });
    expect(await parkingDepth()).toBe(0);

    const empty = await cli(['dlq', 'list']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain('is empty');
  });
});
