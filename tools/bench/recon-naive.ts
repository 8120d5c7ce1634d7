import postgres from 'postgres';
import { HttpPaymentGateway } from '../../src/provider/http';
import { PAID_ROW_STATUS } from '../../src/provider/statement-format';

/**
 * The naive reconciliation baseline, as its own process (so its memory is its own): download the day's
 * statement the way payrecon does (HttpPaymentGateway: location, download, streaming reader), then for
 * each row look its order up with one SELECT by id (postgres.js, `concurrency` in flight) and compare in
 * JS. It writes nothing and cannot see orders missing from the statement (that needs the whole day on
 * our side): it does less than payrecon's run, so its rows/s is an upper bound for the design.
 *
 * IPC: sends `ready` once connected, waits for `go`, sends `result` when `rows` rows were compared.
 */

export interface NaiveRequest {
  billDate: string;
  rows: number;
  concurrency: number;
  providerUrl: string;
  databaseUrl: string;
}

export interface NaiveResult {
  type: 'result';
  rows: number;
  matched: number;
  amountMismatches: number;
  missingLocally: number;
  statusMismatches: number;
  /** The last row's order id: the bench derives the expected mismatch count from it. */
  lastOrderId: string | null;
  /** Location request → last row compared (ms); of that, the wait for the download's first row. */
  elapsedMs: number;
  firstRowMs: number;
}

const PAID = new Set(['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED']);

async function run(request: NaiveRequest): Promise<NaiveResult> {
  const sql = postgres(request.databaseUrl, { max: request.concurrency, onnotice: () => {} });
  const gateway = new HttpPaymentGateway({ baseUrl: request.providerUrl, timeoutMs: 30_000 });
  // One connection opened per slot before the clock starts, as a long-running service would have them.
  await Promise.all(Array.from({ length: request.concurrency }, () => sql`select 1`));
  process.send?.({ type: 'ready' });
  await new Promise<void>((resolve) =>
    process.on('message', (m: { type?: string }) => m.type === 'go' && resolve()),
  );

  const counts = { rows: 0, matched: 0, amountMismatches: 0, missingLocally: 0, statusMismatches: 0 };
  let lastOrderId: string | null = null;
  let firstRowMs = 0;
  const t0 = performance.now();
  const location = await gateway.statementLocation(request.billDate);
  const file = await gateway.downloadStatement(location);
  const inflight = new Set<Promise<void>>();
  let failure: unknown = null;
  for await (const entry of gateway.readStatement(file, location.format)) {
    if (entry.kind !== 'row') continue;
    if (counts.rows === 0) firstRowMs = performance.now() - t0;
    if (counts.rows >= request.rows) break;
    counts.rows++;
    const row = entry.row;
    lastOrderId = row.orderId;
    const check = sql<{ amount: string; currency: string; status: string; trade_no: string | null }[]>`
      select amount, currency, status, trade_no from orders where id = ${row.orderId}`
      .then(([order]) => {
        if (!order || !PAID.has(order.status)) counts.missingLocally++;
        else if (Number(order.amount) !== row.amount || order.currency.trim() !== row.currency)
          counts.amountMismatches++;
        else if (row.status !== PAID_ROW_STATUS || order.trade_no !== row.tradeNo) counts.statusMismatches++;
        else counts.matched++;
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => inflight.delete(check));
    inflight.add(check);
    if (inflight.size >= request.concurrency) await Promise.race(inflight);
    if (failure) throw failure;
  }
  await Promise.all(inflight);
  if (failure) throw failure;
  const elapsedMs = performance.now() - t0;
  file.destroy();
  await sql.end({ timeout: 5 });
  return { type: 'result', ...counts, lastOrderId, elapsedMs, firstRowMs };
}

const request = JSON.parse(process.env.BENCH_NAIVE ?? '{}') as NaiveRequest;
run(request).then(
  (result) => {
    process.send?.(result, () => process.exit(0));
  },
  (error: unknown) => {
    console.error(`naive baseline failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
