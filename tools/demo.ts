import { mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import amqplib from 'amqplib';
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { assertDatabaseReachable, createDatabase, type Sql } from '../src/db/client';
import { HEADERS, topologyFor } from '../src/mq/topology';
import { createOrder } from '../src/order/start';
import { type Config, loadConfig, workflowUiLink } from '../src/platform/config';
import { connectTemporal } from '../src/platform/temporal';
import { startService } from './service';

/**
 * The demo batch: N orders whose buyers pay (or not) while the simulator loses, duplicates, delays,
 * corrupts and forges their notifications. Every order must still end in the state the provider knows.
 */

const SCENARIOS = [
  { name: 'clean', weight: 40, faults: {}, expect: 'PAID' },
  { name: 'drop', weight: 16, faults: { drop: true }, expect: 'PAID' },
  { name: 'duplicate', weight: 10, faults: { duplicate: 3 }, expect: 'PAID' },
  { name: 'delay', weight: 4, faults: { delayMs: 4_000 }, expect: 'PAID' },
  { name: 'corrupt', weight: 6, faults: { corrupt: true }, expect: 'PAID' },
  { name: 'forge', weight: 6, faults: { forge: true }, expect: 'PAID' },
  { name: 'wrong-amount', weight: 4, faults: { wrongAmount: true }, expect: 'NEEDS_REVIEW' },
  { name: 'never-pay', weight: 14, faults: null, expect: 'CLOSED' },
] as const;
type Scenario = (typeof SCENARIOS)[number];

/** Spreads the scenarios over n orders by weight, deterministically. */
export function planScenarios(n: number): Scenario[] {
  const total = SCENARIOS.reduce((sum, s) => sum + s.weight, 0);
  return Array.from({ length: n }, (_, i) => {
    let point = (((i * 37) % n) + 0.5) * (total / n);
    for (const scenario of SCENARIOS) {
      point -= scenario.weight;
      if (point < 0) return scenario;
    }
    return SCENARIOS[0];
  });
}

const usage = `usage: npm run demo -- [--orders N] [--exit] [--attach]
  --orders N   how many orders (default 50)
  --exit       exit after the summary instead of keeping the service running
  --attach     use a service that already runs (npm start) instead of starting one`;

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    options: {
      orders: { type: 'string', default: '50' },
      exit: { type: 'boolean', default: false },
      attach: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  const orders = Number(values.orders);
  if (!Number.isInteger(orders) || orders < 1 || orders > 10_000) {
    throw new Error(`--orders must be a whole number from 1 to 10000, got "${values.orders}"`);
  }
  return { orders, exit: values.exit, attach: values.attach, help: values.help };
}

async function waitForSimulator(config: Config, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      if ((await fetch(`${config.PROVIDER_URL}/health`)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(
    `the payment simulator did not answer at ${config.PROVIDER_URL} within ${timeoutMs / 1000}s`,
  );
}

async function simulator(config: Config, method: string, route: string, body?: unknown) {
  const response = await fetch(`${config.PROVIDER_URL}${route}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok)
    throw new Error(`simulator ${method} ${route}: HTTP ${response.status} ${await response.text()}`);
  return response.json();
}

/** Counts parked messages by reason without consuming them: get each, then requeue them all. */
async function parkedByReason(config: Config): Promise<Record<string, number>> {
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const connection = await amqplib.connect(config.AMQP_URL);
  try {
    const channel = await connection.createChannel();
    const counts: Record<string, number> = {};
    for (;;) {
      const message = await channel.get(topology.parkingQueue, { noAck: false });
      if (!message) break;
      const reason = String(message.properties.headers?.[HEADERS.reason] ?? 'BROKER_DELIVERY_LIMIT');
      counts[reason] = (counts[reason] ?? 0) + 1;
    }
    await channel.nackAll(true);
    await channel.close();
    return counts;
  } finally {
    await connection.close();
  }
}

async function statusCounts(sql: Sql, ids: string[]) {
  const rows = await sql<{ status: string; n: string }[]>`
    select status, count(*)::text as n from orders where id = any(${ids}) group by status`;
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) as Record<string, number>;
}

async function main() {
  const cli = parseCli(process.argv.slice(2));
  if (cli.help) {
    console.log(usage);
    return;
  }
  const config = loadConfig();
  const database = createDatabase(config.DATABASE_URL, { max: 5 });
  await assertDatabaseReachable(database.sql, config.DATABASE_URL);
  const temporal = await connectTemporal(config);

  let service: ReturnType<typeof startService> | undefined;
  if (!cli.attach) {
    const logDir = path.resolve(__dirname, '..', '.run');
    mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, 'service.log');
    service = startService({ stdio: openSync(logFile, 'a') });
    console.log(`started simulator, worker and consumer (logs: ${path.relative(process.cwd(), logFile)})`);
    service.firstExit.then(({ name, code }) => {
      console.error(`\n${name} exited with code ${code}: see .run/service.log`);
      process.exit(1);
    });
  }
  await waitForSimulator(config);

  // A short ladder and deadline, so the batch ends in about a minute.
  const pollLadder = { stepsMs: [2_000, 4_000, 6_000], repeatMs: 6_000 };
  const payWithinMs = 30_000;
  const plan = planScenarios(cli.orders);
  const orders: { id: string; scenario: Scenario; workflowId: string }[] = [];
  for (const scenario of plan) {
    const { order, workflowId } = await createOrder(
      { db: database.db, client: temporal, config },
      { amount: 100 * (1 + Math.floor(Math.random() * 500)), currency: 'CNY', payWithinMs, pollLadder },
    );
    await simulator(config, 'POST', '/trades', {
      orderId: order.id,
      amount: order.amount,
      currency: order.currency,
    });
    orders.push({ id: order.id, scenario, workflowId });
  }
  console.log(
    `created ${orders.length} orders; buyers pay over the next 10 s, unpaid orders close after 30 s`,
  );

  // Buyers pay at random moments; the simulator applies each order's fault to its notification.
  const payments = orders
    .filter((o) => o.scenario.faults !== null)
    .map(
      (o) =>
        new Promise<void>((resolve, reject) => {
          setTimeout(() => {
            simulator(config, 'POST', `/trades/${o.id}/pay`, { faults: o.scenario.faults }).then(
              () => resolve(),
              reject,
            );
          }, Math.random() * 10_000);
        }),
    );

  const ids = orders.map((o) => o.id);
  const bar = new SingleBar({
    format:
      'settling |{bar}| {value}/{total} orders | PAID {paid} CLOSED {closed} NEEDS_REVIEW {review} | {seconds}s',
    hideCursor: true,
  });
  const started = Date.now();
  bar.start(orders.length, 0, { paid: 0, closed: 0, review: 0, seconds: 0 });
  let counts: Record<string, number> = {};
  while (Date.now() - started < payWithinMs + 60_000) {
    counts = await statusCounts(database.sql, ids);
    const settled = orders.length - (counts.UNPAID ?? 0);
    bar.update(settled, {
      paid: counts.PAID ?? 0,
      closed: counts.CLOSED ?? 0,
      review: counts.NEEDS_REVIEW ?? 0,
      seconds: Math.round((Date.now() - started) / 1000),
    });
    if (settled === orders.length) break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  bar.stop();
  await Promise.all(payments);

  const rows = await database.sql<{ id: string; status: string; settled_by: string | null }[]>`
    select id, status, settled_by from orders where id = any(${ids})`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  const outcome = new Table({ head: ['final state', 'settled by', 'orders'] });
  const tally = new Map<string, number>();
  for (const row of rows) {
    const key = `${row.status}\t${row.settled_by ?? '-'}`;
    tally.set(key, (tally.get(key) ?? 0) + 1);
  }
  for (const [key, n] of [...tally].sort()) outcome.push([...key.split('\t'), n]);

  const scenarios = new Table({ head: ['scenario', 'orders', 'expected', 'as expected'] });
  const wrong: string[] = [];
  for (const scenario of SCENARIOS) {
    const mine = orders.filter((o) => o.scenario === scenario);
    if (mine.length === 0) continue;
    const ok = mine.filter((o) => byId.get(o.id)?.status === scenario.expect);
    for (const o of mine)
      if (!ok.includes(o)) wrong.push(`${o.id} (${scenario.name}): ${byId.get(o.id)?.status}`);
    scenarios.push([scenario.name, mine.length, scenario.expect, `${ok.length}/${mine.length}`]);
  }

  const discrepancyRows = await database.sql<{ kind: string; n: string }[]>`
    select kind, count(*)::text as n from payment_discrepancies where order_id = any(${ids}) group by kind order by kind`;
  const discrepancies = new Table({ head: ['discrepancy', 'orders'] });
  for (const d of discrepancyRows) discrepancies.push([d.kind, Number(d.n)]);
  const parked = new Table({ head: ['in the parking queue, by reason', 'messages'] });
  for (const [reason, n] of Object.entries(await parkedByReason(config)).sort()) parked.push([reason, n]);

  console.log(
    `\n${outcome.toString()}\n${scenarios.toString()}\n${discrepancies.toString()}\n${parked.toString()}`,
  );
  console.log(
    wrong.length === 0
      ? `all ${orders.length} orders agree with the provider`
      : `${wrong.length} orders disagree with the provider:\n  ${wrong.join('\n  ')}`,
  );
  const ui = `${config.TEMPORAL_UI_URL}/namespaces/${config.TEMPORAL_NAMESPACE}/workflows`;
  console.log(`\nWeb UI: ${ui}`);
  console.log(`  one order:      ${workflowUiLink(config, orders[0]?.workflowId ?? '')}`);
  console.log(`  needing review: ${ui}?query=${encodeURIComponent('PaymentStatus="NEEDS_REVIEW"')}`);

  await temporal.connection.close();
  await database.close();
  if (cli.exit || !service) {
    await service?.stop();
    process.exit(wrong.length === 0 ? 0 : 1);
  }
  console.log('\nthe service keeps running (logs in .run/service.log); Ctrl-C stops it');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      await service?.stop();
      process.exit(0);
    });
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(
      error instanceof TypeError || /must be|Unknown option|unexpected/i.test(String(error)) ? 2 : 1,
    );
  });
}
