import type { Client } from '@temporalio/client';
import { and, inArray } from 'drizzle-orm';
import type { Database, Sql } from '../../src/db/client';
import { createEndpoint } from '../../src/db/merchant';
import { findRefund, RefundRefused } from '../../src/db/refunds';
import { amqpUrls } from '../../src/mq/connect';
import { PaymentEventPublisher } from '../../src/mq/publisher';
import { topologyFor } from '../../src/mq/topology';
import { requestRefund } from '../../src/order/refund';
import type { Config } from '../../src/platform/config';
import { billDayBounds } from '../../src/provider/statement-format';
import { startReconciliation } from '../../src/reconciliation/start';
import type { ReconciliationSummary } from '../../workflows/reconciliation';
import type { MerchantClient } from '../merchant/client';
import { merchantDeliveries } from '../merchant/db/schema';
import { type RunningService, type ServiceProcess, startService } from '../service';
import type { BillFaults } from '../simulator/bill-faults';
import type { SimulatorClient } from '../simulator/client';
import type { PlannedOrder, RefundRecord } from './checks';
import { sleep } from './evidence';
import { REFUND_SCENARIOS, type RefundKind, SHOP_NAMES, SHOPS, type ShopName } from './plan';

/**
 * How long the driver waits for a refund to leave PROCESSING. The refund ladder answers within ~15 s,
 * but in the full run (1,000 orders at 10/s, kills, a broker restart) a refund workflow's first task
 * waited up to 2 min in the task queue on this 2-core machine: a busy dev server, not a stuck refund.
 */
const REFUND_PATIENCE_MS = 300_000;

/**
 * The parts of the chaos run beyond the payment: the processes (two workers, two consumers), the
 * merchant shops, the buyers' refunds, the paid notices published again after a refund, the shops that
 * recover, and the day's reconciliation over a statement with planted faults.
 */

// --- the processes ---------------------------------------------------------------------------------------

export type FleetProcess = 'simulator' | 'merchant' | `worker-${number}` | `consumer-${number}`;

/**
 * The service as the chaos run needs it: the simulators once each, and `n` workers and `n` consumers on
 * the same task queue and queue, each its own process (one startService each, so one can be killed
 * alone). Every process gets its own metrics port; the payment simulator its own log (the refund notices
 * it publishes are read back from it).
 */
export class Fleet {
  readonly services = new Map<FleetProcess, RunningService>();
  private stopping = false;

  constructor(
    private readonly options: {
      env: NodeJS.ProcessEnv;
      /** Log file descriptors: the payment simulator's, everything else's. */
      simulatorFd: number;
      logFd: number;
      processes: number;
      metricsPort: () => Promise<number>;
      onUnplannedExit: (name: FleetProcess, code: number | null) => void;
    },
  ) {}

  static base(name: FleetProcess): ServiceProcess {
    return name.replace(/-\d+$/, '') as ServiceProcess;
  }

  get names(): FleetProcess[] {
    const n = this.options.processes;
    return [
      'simulator',
      'merchant',
      ...Array.from({ length: n }, (_, i): FleetProcess => `worker-${i + 1}`),
      ...Array.from({ length: n }, (_, i): FleetProcess => `consumer-${i + 1}`),
    ];
  }

  async start(): Promise<void> {
    for (const name of this.names) await this.launch(name);
  }

  private async launch(name: FleetProcess): Promise<void> {
    const base = Fleet.base(name);
    const env: NodeJS.ProcessEnv = { ...this.options.env };
    if (base === 'worker') env.WORKER_METRICS_ADDRESS = `127.0.0.1:${await this.options.metricsPort()}`;
    if (base === 'consumer') env.CONSUMER_METRICS_ADDRESS = `127.0.0.1:${await this.options.metricsPort()}`;
    const service = startService({
      env,
      stdio: base === 'simulator' ? this.options.simulatorFd : this.options.logFd,
      singleProcess: true,
      only: [base],
      // The worker with the chaos run's fault hook (tools/chaos/worker.ts): inert until armed.
      scripts: { worker: 'tools/chaos/worker.ts' },
    });
    this.services.set(name, service);
    // firstExit ignores stop() and the planned kills: anything else is a crash, restarted by the caller.
    service.firstExit.then(({ code }) => {
      if (!this.stopping && this.services.get(name) === service) this.options.onUnplannedExit(name, code);
    });
  }

  pid(name: FleetProcess): number | undefined {
    return this.services.get(name)?.children.get(Fleet.base(name))?.pid;
  }

  async kill(name: FleetProcess): Promise<void> {
    await this.services.get(name)?.kill(Fleet.base(name), 'SIGKILL');
  }

  /** A fresh process in place of a killed (or crashed) one; resolves with its pid. */
  async restart(name: FleetProcess): Promise<number | undefined> {
    await this.services.get(name)?.stop();
    await this.launch(name);
    return this.pid(name);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all([...this.services.values()].map((s) => s.stop().catch(() => {})));
  }
}

// --- the shops ---------------------------------------------------------------------------------------------

export interface ChaosShop {
  name: ShopName;
  merchantId: string;
  endpointId: string;
}

/** One merchant endpoint per shop (exponential ladder), its secret given to the merchant simulator. */
export async function createShops(
  db: Database,
  merchant: MerchantClient,
  runTag: string,
): Promise<Map<ShopName, ChaosShop>> {
  const shops = new Map<ShopName, ChaosShop>();
  for (const name of SHOP_NAMES) {
    const merchantId = `chaos-${runTag}-${name}`;
    const endpoint = await createEndpoint(db, { url: merchant.hookUrl(merchantId), ladder: 'exponential' });
    await merchant.setSecrets(merchantId, endpoint.secrets);
    shops.set(name, { name, merchantId, endpointId: endpoint.id });
  }
  return shops;
}

/**
 * The shops that recover: once an order's first delivery reached a `slow` or `wrong-body` shop, its
 * knobs are cleared, so the next attempt succeeds. Returns how many orders recovered.
 */
export async function recoverShops(
  db: Database,
  merchant: MerchantClient,
  waiting: Map<string, PlannedOrder>,
): Promise<number> {
  if (waiting.size === 0) return 0;
  const rows = await db
    .selectDistinct({ orderId: merchantDeliveries.orderId })
    .from(merchantDeliveries)
    .where(and(inArray(merchantDeliveries.orderId, [...waiting.keys()])));
  let n = 0;
  for (const { orderId } of rows) {
    if (!orderId || !waiting.has(orderId)) continue;
    await merchantCall(() => merchant.setOrderFaults(orderId, {}));
    waiting.delete(orderId);
    n++;
  }
  return n;
}

export function recoveringShop(name: ShopName): boolean {
  return SHOPS[name].recovers;
}

/**
 * A call to the merchant simulator's control API, tried again for up to 20 s: during a planned
 * `refuse-merchant` outage it refuses the driver's connections too.
 */
export async function merchantCall<T>(call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > until || signal?.aborted) throw error;
      await sleep(500, signal);
    }
  }
}

// --- refunds ---------------------------------------------------------------------------------------------

/** A refund's row until it is no longer PROCESSING (or the time is up). */
async function settledRefund(db: Database, refundId: string, timeoutMs: number, signal?: AbortSignal) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const row = await findRefund(db, refundId);
    if (row && row.status !== 'PROCESSING') return row;
    if (Date.now() > until) return row;
    await sleep(500, signal);
  }
}

/**
 * One buyer's refunds, as the order's refund kind says: the provider's knobs set on the trade first,
 * then the request(s) through payrecon (requestRefund: the row, then its workflow), then, for the kinds
 * that say so, the order's paid notice published again once the refund settled.
 */
export async function runRefunds(
  deps: {
    db: Database;
    temporal: Client;
    config: Config;
    simulator: SimulatorClient;
    publisher: PaymentEventPublisher;
    signal?: AbortSignal;
  },
  plan: PlannedOrder,
  nth: number,
  originalMessageId: string | null,
): Promise<RefundRecord> {
  const kind = plan.refund as RefundKind;
  const scenario = REFUND_SCENARIOS[kind];
  const record: RefundRecord = {
    orderId: plan.orderId,
    kind,
    refundIds: [],
    refused: [],
    republished: [],
    errors: [],
  };
  const refundDeps = { db: deps.db, client: deps.temporal, config: deps.config };
  const amountOf = (share: number | null) =>
    share === null ? undefined : Math.max(1, Math.round(plan.amount * share));
  const ask = async (share: number | null) => {
    try {
      const { refund } = await requestRefund(refundDeps, {
        orderId: plan.orderId,
        amount: amountOf(share),
        reason: `chaos: ${kind}`,
      });
      record.refundIds.push(refund.id);
      return refund.id;
    } catch (error) {
      if (error instanceof RefundRefused) record.refused.push(error.message);
      else record.errors.push(`refund request failed: ${(error as Error).message}`);
      return null;
    }
  };
  try {
    await deps.simulator.setTradeFaults(plan.orderId, { refund: scenario.faults(nth) });
    const { shares, mode } = scenario.requests;
    if (mode === 'racing') {
      await Promise.all(shares.map((share) => ask(share)));
    } else {
      for (const share of shares) {
        const id = await ask(share);
        // The next request only once this one has settled (its amount is then refunded, not reserved).
        if (id && mode === 'sequential') await settledRefund(deps.db, id, REFUND_PATIENCE_MS, deps.signal);
      }
    }
    const settled = await Promise.all(
      record.refundIds.map((id) => settledRefund(deps.db, id, REFUND_PATIENCE_MS, deps.signal)),
    );
    const open = settled.filter((row) => !row || row.status === 'PROCESSING');
    if (open.length > 0)
      record.errors.push(`${open.length} refunds still PROCESSING after ${REFUND_PATIENCE_MS / 1000} s`);
    if (scenario.republishPaid && open.length === 0) {
      // The race of the sources: the provider delivers the paid notice again after the refund.
      const trade = await deps.simulator.getTrade(plan.orderId);
      if (!trade?.paidAt) throw new Error('the trade has no payment to notify');
      const notice = (messageId: string) => ({
        version: 1 as const,
        messageId,
        orderId: plan.orderId,
        tradeNo: trade.tradeNo,
        status: 'TRADE_SUCCESS' as const,
        amount: trade.amount,
        currency: trade.currency,
        paidAt: trade.paidAt as string,
      });
      const late = `${plan.orderId}-paid-again`;
      for (let copy = 0; copy < 2; copy++) await deps.publisher.publishTradePaid(notice(late));
      record.republished.push({ messageId: late, copies: 2, original: false });
      if (originalMessageId) {
        await deps.publisher.publishTradePaid(notice(originalMessageId));
        record.republished.push({ messageId: originalMessageId, copies: 1, original: true });
      }
    }
  } catch (error) {
    record.errors.push((error as Error).message);
  }
  return record;
}

/** The driver's own publisher (the paid notices published again), signed like the provider's. */
export function chaosPublisher(config: Config): PaymentEventPublisher {
  return new PaymentEventPublisher({
    // Every node of a cluster: it reconnects to a surviving one.
    url: amqpUrls(config.AMQP_URL),
    topology: topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY),
    secret: config.NOTIFY_HMAC_SECRET,
    appId: 'payrecon-chaos',
    publishTimeoutMs: 10_000,
    maxRetries: 20,
  });
}

// --- the reconciliation ------------------------------------------------------------------------------------

/** A break as reconciliation_breaks has it. */
export interface BreakRow {
  kind: string;
  ref: string;
  status: string;
}

/** What the run plants in its day's statement, and the break each must produce (and nothing else). */
export interface PlantedStatement {
  faults: BillFaults;
  expected: BreakRow[];
}

/**
 * The statement faults of the run's day: one payment left off, one amount off by a fen, one status
 * other than TRADE_SUCCESS, one payment listed twice, one unknown extra payment, one refund left off,
 * and a summary whose paid amount does not add up. `paid`: orders that ended PAID with a payment on the
 * day (seeded order); `refund`: a succeeded refund's out_request_no on the day.
 */
export function plantStatementFaults(
  billDate: string,
  runTag: string,
  paid: string[],
  refund: string | undefined,
): PlantedStatement {
  const [omitted, shortPaid, wrongStatus, doubled] = paid;
  const ghost = `chaos-${runTag}-ghost`;
  const faults: BillFaults = {
    ...(omitted ? { omitPayments: [omitted] } : {}),
    ...(shortPaid ? { amountDeltas: { [shortPaid]: -1 } } : {}),
    ...(wrongStatus ? { statusOverrides: { [wrongStatus]: 'TRADE_CLOSED' } } : {}),
    ...(doubled ? { duplicatePayments: [doubled] } : {}),
    extraPayments: [
      {
        orderId: ghost,
        amount: 4_200,
        time: new Date(billDayBounds(billDate).start.getTime() + 12 * 3_600_000).toISOString(),
      },
    ],
    ...(refund ? { omitRefunds: [refund] } : {}),
    summaryDelta: { payAmount: 100 },
  };
  const expected: BreakRow[] = [
    ...(omitted ? [{ kind: 'MISSING_AT_PROVIDER', ref: omitted, status: 'OPEN' }] : []),
    ...(shortPaid ? [{ kind: 'AMOUNT_MISMATCH', ref: shortPaid, status: 'OPEN' }] : []),
    ...(wrongStatus ? [{ kind: 'STATUS_MISMATCH', ref: wrongStatus, status: 'OPEN' }] : []),
    ...(doubled ? [{ kind: 'DUPLICATE', ref: doubled, status: 'OPEN' }] : []),
    { kind: 'MISSING_LOCALLY', ref: ghost, status: 'OPEN' },
    ...(refund ? [{ kind: 'REFUND_MISMATCH', ref: refund, status: 'OPEN' }] : []),
    { kind: 'CONTROL_TOTALS', ref: 'payAmount', status: 'OPEN' },
  ];
  return { faults, expected };
}

/**
 * Refunds settle "now" on both sides, but the run's payments are on a day in the past: the rig moves the
 * clock of this run's succeeded refunds onto that day (the provider's at 21:00 plus a second each,
 * payrecon's 5 s later), never their status, as test/reconciliation.test.ts does.
 */
export async function moveRefundsOntoDay(sql: Sql, billDate: string, orderIds: string[]) {
  const at = new Date(billDayBounds(billDate).start.getTime() + 21 * 3_600_000).toISOString();
  const ids = sql.array(orderIds, 25);
  const provider = await sql`
    update provider.refunds r set settled_at = ${at}::timestamptz + (x.n * interval '1 second')
      from (select refund_no, row_number() over (order by settled_at, refund_no) as n from provider.refunds
            where order_id = any(${ids}::text[]) and status = 'SUCCESS') x
     where r.refund_no = x.refund_no`;
  const ours = await sql`
    update refunds r set settled_at = p.settled_at + interval '5 seconds'
      from provider.refunds p
     where p.out_request_no = r.out_request_no and p.order_id = r.order_id
       and r.order_id = any(${ids}::text[]) and r.status = 'SUCCEEDED'`;
  return { provider: provider.count, ours: ours.count };
}

/** Is the day free: no trade paid on it, no order paid on it, no reconciliation of it by `provider`? */
export async function billDateIsFree(sql: Sql, provider: string, billDate: string) {
  const { start, end } = billDayBounds(billDate);
  const [row] = await sql<{ n: string }[]>`
    select (select count(*) from provider.trades where paid_at >= ${start.toISOString()} and paid_at < ${end.toISOString()})
         + (select count(*) from orders where paid_at >= ${start.toISOString()} and paid_at < ${end.toISOString()})
         + (select count(*) from reconciliation_runs where provider = ${provider} and bill_date = ${billDate}) as n`;
  return Number(row?.n ?? 1) === 0;
}

export async function runReconciliation(
  temporal: Client,
  config: Config,
  billDate: string,
  timeoutMs: number,
): Promise<{ workflowId: string; summary: ReconciliationSummary }> {
  const handle = await startReconciliation(temporal, config, billDate);
  const summary = (await Promise.race([
    handle.result(),
    sleep(timeoutMs).then(() => {
      throw new Error(`the reconciliation of ${billDate} did not end within ${timeoutMs / 1000}s`);
    }),
  ])) as ReconciliationSummary;
  return { workflowId: handle.workflowId, summary };
}

export async function readBreaks(sql: Sql, provider: string, billDate: string) {
  return sql<BreakRow[]>`
    select kind, ref, status from reconciliation_breaks
    where provider = ${provider} and bill_date = ${billDate} order by kind, ref`;
}
