import { mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { assertDatabaseReachable, createDatabase, type Database } from '../src/db/client';
import { createEndpoint, listEvents } from '../src/db/merchant';
import { countOrdersByStatus, findDiscrepancies, findOrders } from '../src/db/orders';
import { readParkedAt } from '../src/mq/parking';
import { topologyFor } from '../src/mq/topology';
import { requestRefund } from '../src/order/refund';
import { createOrder } from '../src/order/start';
import { type Config, loadConfig, usesDevelopmentSecret, workflowUiLink } from '../src/platform/config';
import { connectTemporal } from '../src/platform/temporal';
import { HttpPaymentGateway } from '../src/provider/http';
import { ensureReconciliationSchedule } from '../src/reconciliation/start';
import { prepareUnnoticedPayment, runDemoReconciliation } from './demo-recon';
import { MerchantClient, type OrderFaults } from './merchant/client';
import { faultDealer, SCENARIOS, type ScenarioName } from './scenarios';
import { type RunningService, startService } from './service';
import { SimulatorClient } from './simulator/client';
import type { TradeFaults } from './simulator/faults';

/**
 * The demo batch: N orders whose buyers pay (or not) while the simulator loses, duplicates, delays,
 * corrupts and forges their notifications. Every order must still end in the state the provider knows.
 */

/** The demo's mix: weights per scenario of the catalogue (tools/scenarios.ts, where each one's faults and expected outcome live). */
const DEMO_MIX: Partial<Record<ScenarioName, number>> = {
  clean: 40,
  drop: 16,
  duplicate: 10,
  delay: 4,
  corrupt: 6,
  forge: 6,
  'wrong-amount': 4,
  'never-pay': 14,
};
const DEMO_SCENARIOS = Object.keys(DEMO_MIX) as ScenarioName[];

/** Spreads the scenarios over n orders by weight, deterministically. */
export function planScenarios(n: number): ScenarioName[] {
  const total = DEMO_SCENARIOS.reduce((sum, name) => sum + (DEMO_MIX[name] ?? 0), 0);
  return Array.from({ length: n }, (_, i) => {
    let point = (((i * 37) % n) + 0.5) * (total / n);
    for (const name of DEMO_SCENARIOS) {
      point -= DEMO_MIX[name] ?? 0;
      if (point < 0) return name;
    }
    return 'clean';
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

/** Parked messages by reason, read without consuming them (the reader `payrecon dlq list` uses). */
async function parkedByReason(config: Config): Promise<Record<string, number>> {
  const parked = await readParkedAt(
    config.AMQP_URL,
    topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY),
  );
  return tally(parked.map((message) => message.reason ?? '(no reason)'));
}

function tally(keys: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const key of keys) counts[key] = (counts[key] ?? 0) + 1;
  return counts;
}

interface DemoMerchant {
  name: string;
  endpointId: string;
  /** Sets this merchant's behaviour for an order at the merchant simulator. */
  prepareOrder(orderId: string): Promise<void>;
}

/**
 * Three shops at the merchant simulator: one that answers at once, one that flaps (fails the first two
 * deliveries of every order), one that is busy at first (503, Retry-After). Every event must still be
 * delivered in the end. The exponential ladder (5 s, 15 s, ...) keeps the demo short.
 */
async function demoMerchants(db: Database): Promise<DemoMerchant[]> {
  const client = new MerchantClient();
  await client.waitUntilUp(30_000);
  const shops: { name: string; faults: OrderFaults }[] = [
    { name: 'steady', faults: {} },
    { name: 'flapping', faults: { failFirst: 2 } },
    { name: 'busy-first', faults: { failFirst: 1, status: 503, retryAfterSeconds: 2 } },
  ];
  return Promise.all(
    shops.map(async ({ name, faults }) => {
      const endpoint = await createEndpoint(db, {
        url: client.hookUrl(`demo-${name}`),
        ladder: 'exponential',
      });
      await client.setSecrets(`demo-${name}`, endpoint.secrets);
      return {
        name,
        endpointId: endpoint.id,
        prepareOrder: async (orderId: string) => {
          if (Object.keys(faults).length > 0) await client.setOrderFaults(orderId, faults);
        },
      };
    }),
  );
}

/** Waits (up to 90 s) for every event to end, then: per merchant, events delivered, after how many attempts. */
async function merchantNotificationTable(db: Database, merchants: DemoMerchant[], orderIds: string[]) {
  const until = Date.now() + 90_000;
  let events = await listEventsOfOrders(db, orderIds);
  while (events.some((e) => e.status === 'PENDING') && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    events = await listEventsOfOrders(db, orderIds);
  }
  const table = new Table({
    head: ['merchant notifications', 'events', 'delivered', 'after attempts (max)', 'exhausted', 'pending'],
  });
  for (const merchant of merchants) {
    const mine = events.filter((e) => e.endpointId === merchant.endpointId);
    const delivered = mine.filter((e) => e.status === 'DELIVERED');
    const attempts = delivered.map((e) => e.attempts);
    table.push([
      merchant.name,
      mine.length,
      delivered.length,
      attempts.length
        ? `${(attempts.reduce((a, b) => a + b, 0) / attempts.length).toFixed(1)} (${Math.max(...attempts)})`
        : '-',
      mine.filter((e) => e.status === 'EXHAUSTED').length,
      mine.filter((e) => e.status === 'PENDING').length,
    ]);
  }
  return table;
}

/**
 * Buyers ask for money back: every third paid order is refunded, half of them in part, through payrecon
 * (a refunds row first, then its workflow; the simulator refunds and publishes trade.refunded).
 */
async function demoRefunds(
  deps: Parameters<typeof requestRefund>[0],
  paid: { id: string; amount: number }[],
) {
  const chosen = paid.filter((_, i) => i % 3 === 0);
  const runs = await Promise.all(
    chosen.map(async (order, i) => {
      const { workflowId } = await requestRefund(deps, {
        orderId: order.id,
        ...(i % 2 === 0 ? { amount: Math.floor(order.amount / 2) } : {}),
        reason: 'demo: buyer returned the goods',
      });
      return deps.client.workflow.getHandle(workflowId).result();
    }),
  );
  const after = await findOrders(
    deps.db,
    chosen.map((o) => o.id),
  );
  const table = new Table({
    head: ['refunds', 'orders', 'settled by notice', "settled by the provider's answer", 'failed / unknown'],
  });
  for (const status of ['PARTIALLY_REFUNDED', 'REFUNDED'] as const) {
    const states = chosen.flatMap((o, i) =>
      after.find((r) => r.id === o.id)?.status === status ? [runs[i]] : [],
    );
    table.push([
      status,
      states.length,
      states.filter((r) => r?.settledBy === 'mq').length,
      states.filter((r) => r?.settledBy === 'poll').length,
      states.filter((r) => r?.phase === 'FAILED' || r?.phase === 'UNKNOWN').length,
    ]);
  }
  return table;
}

function listEventsOfOrders(db: Database, orderIds: string[]) {
  return listEvents(db, { orderIds, limit: 100_000 });
}

async function main() {
  const cli = parseCli(process.argv.slice(2));
  if (cli.help) {
    console.log(usage);
    return;
  }
  const config = loadConfig();
  if (usesDevelopmentSecret(config)) {
    // Loud on purpose: the same secret anywhere else lets anyone sign a "paid" notice.
    console.warn(
      [
        '',
        '!!! WARNING: NOTIFY_HMAC_SECRET is the public development secret. Anyone who knows it can sign a',
        '!!! "paid" notice. Fine for this demo on your machine; a deploy sets its own secret and runs with',
        '!!! PAYRECON_ENV=production, where the worker and the consumer refuse to start without one.',
        '',
      ].join('\n'),
    );
  }
  const database = createDatabase(config.DATABASE_URL, { max: 5 });
  await assertDatabaseReachable(database.sql, config.DATABASE_URL);
  const temporal = await connectTemporal(config);

  let service: RunningService | undefined;
  if (!cli.attach) {
    const logDir = path.resolve(__dirname, '..', '.run');
    mkdirSync(logDir, { recursive: true });
    const logFile = path.join(logDir, 'service.log');
    service = startService({ stdio: openSync(logFile, 'a') });
    demoService = service;
    console.log(`started simulator, worker and consumer (logs: ${path.relative(process.cwd(), logFile)})`);
    service.firstExit.then(async ({ name, code }) => {
      console.error(`\n${name} exited with code ${code}: see .run/service.log`);
      await service?.stop();
      process.exit(1);
    });
  }
  const simulator = new SimulatorClient(config.PROVIDER_URL);
  await simulator.waitUntilUp(30_000);
  // The daily reconciliation's schedule, as setup for a deployment does it (`payrecon recon schedule`).
  const schedule = await ensureReconciliationSchedule(temporal, config);
  console.log(
    `daily reconciliation schedule ${schedule.scheduleId}: ${schedule.created ? 'created' : 'up to date'}`,
  );
  const gateway = new HttpPaymentGateway({ baseUrl: config.PROVIDER_URL });
  const merchants = await demoMerchants(database.db);

  // A short ladder and deadline, so the batch ends in about a minute.
  const pollLadder = { stepsMs: [2_000, 4_000, 6_000], repeatMs: 6_000 };
  const payWithinMs = 30_000;
  const dealFaults = faultDealer(Math.random);
  const orders: { id: string; scenario: ScenarioName; faults: TradeFaults | null; workflowId: string }[] = [];
  for (const scenario of planScenarios(cli.orders)) {
    // As a shop does it: payrecon opens the trade at the provider and keeps its number.
    const merchant = merchants[orders.length % merchants.length] as DemoMerchant;
    const { order, workflowId, tradeError } = await createOrder(
      { db: database.db, client: temporal, config, gateway },
      {
        amount: 100 * (1 + Math.floor(Math.random() * 500)),
        currency: 'CNY',
        payWithinMs,
        pollLadder,
        notifyEndpointId: merchant.endpointId,
      },
    );
    await merchant.prepareOrder(order.id);
    if (tradeError) throw new Error(`the simulator did not open the trade of ${order.id}: ${tradeError}`);
    orders.push({ id: order.id, scenario, faults: dealFaults(scenario), workflowId });
  }
  const reconDeps = { db: database.db, temporal, config, gateway, simulator };
  const unnoticedOrderId = await prepareUnnoticedPayment(reconDeps);
  console.log(
    `created ${orders.length} orders; buyers pay over the next 10 s, unpaid orders close after 30 s`,
  );

  // Buyers pay at random moments; the simulator applies each order's fault to its notification.
  const payments = orders.map(async ({ id, faults }) => {
    if (faults === null) return;
    await new Promise((resolve) => setTimeout(resolve, Math.random() * 10_000));
    await simulator.pay(id, { faults });
  });

  const ids = orders.map((o) => o.id);
  const bar = new SingleBar({
    format:
      'settling |{bar}| {value}/{total} orders | PAID {paid} CLOSED {closed} NEEDS_REVIEW {review} | {seconds}s',
    hideCursor: true,
  });
  const started = Date.now();
  bar.start(orders.length, 0, { paid: 0, closed: 0, review: 0, seconds: 0 });
  let counts: Partial<Record<string, number>> = {};
  while (Date.now() - started < payWithinMs + 60_000) {
    counts = await countOrdersByStatus(database.db, ids);
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

  const rows = await findOrders(database.db, ids);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const outcome = new Table({ head: ['final state', 'settled by', 'orders'] });
  for (const [key, n] of Object.entries(tally(rows.map((r) => `${r.status}\t${r.settledBy ?? '-'}`))).sort())
    outcome.push([...key.split('\t'), n]);

  const scenarios = new Table({ head: ['scenario', 'orders', 'expected', 'as expected'] });
  const wrong: string[] = [];
  for (const name of DEMO_SCENARIOS) {
    const mine = orders.filter((o) => o.scenario === name);
    if (mine.length === 0) continue;
    const expected = SCENARIOS[name].status;
    const ok = mine.filter((o) => byId.get(o.id)?.status === expected);
    for (const o of mine) if (!ok.includes(o)) wrong.push(`${o.id} (${name}): ${byId.get(o.id)?.status}`);
    scenarios.push([name, mine.length, expected, `${ok.length}/${mine.length}`]);
  }

  const discrepancies = new Table({ head: ['discrepancy', 'orders'] });
  const kinds = tally((await findDiscrepancies(database.db, ids)).map((d) => d.kind));
  for (const [kind, n] of Object.entries(kinds).sort()) discrepancies.push([kind, n]);
  const parked = new Table({ head: ['in the parking queue, by reason', 'messages'] });
  for (const [reason, n] of Object.entries(await parkedByReason(config)).sort()) parked.push([reason, n]);
  const refunds = await demoRefunds(
    { db: database.db, client: temporal, config },
    rows.filter((r) => r.status === 'PAID'),
  );
  const notifications = await merchantNotificationTable(database.db, merchants, ids);
  const reconciliation = await runDemoReconciliation(reconDeps, {
    unnoticedOrderId,
    omittedOrderId: rows.find((r) => r.status === 'PAID')?.id,
  });
  if (!reconciliation.ok)
    wrong.push(`the day's reconciliation did not heal ${unnoticedOrderId} or report the fault`);

  console.log(
    `\n${outcome.toString()}\n${scenarios.toString()}\n${discrepancies.toString()}\n${parked.toString()}\n${refunds.toString()}\n${notifications.toString()}\n${reconciliation.table}`,
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
  console.log(`  notifications:  ${ui}?query=${encodeURIComponent('DeliveryStatus="DELIVERED"')}`);
  console.log(
    `  reconciliation: ${ui}?query=${encodeURIComponent(`ReconDate="${reconciliation.summary.billDate}"`)}`,
  );

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

/** The service the demo started, stopped when the demo fails so no process outlives it. */
let demoService: RunningService | undefined;

if (require.main === module) {
  main().catch(async (error) => {
    console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
    await demoService?.stop();
    process.exit(
      error instanceof TypeError || /must be|Unknown option|unexpected/i.test(String(error)) ? 2 : 1,
    );
  });
}
