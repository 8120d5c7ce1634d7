import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrder } from '../src/db/orders';
import { requestRefund } from '../src/order/refund';
import { billDayBounds } from '../src/provider/statement-format';
import { startReconciliation } from '../src/reconciliation/start';
import type { ReconciliationSummary } from '../workflows/reconciliation';
import { eventually, uniqueSuffix } from './support/env';
import { startWechatPayLifecycle, type WechatPayLifecycle } from './support/wechatpay';

/**
 * The day's reconciliation over WeChat Pay's real trade bill (bill_type=ALL, gzip, backtick fields,
 * yuan, its SHA1 declared by the signed location reply) on the real services: the dev server, Postgres,
 * RabbitMQ; the WeChat Pay adapter against the fake WeChat Pay (tools/providers/wechatpay), whose bill
 * faults (bill-faults.ts) change what the bill prints, never the trades, and whose badBillHash fault
 * declares a SHA1 that is not the file's. RECON_PROVIDER=wechatpay-wtest-<suffix>: the run matches the
 * orders of provider wechatpay and keeps its rows apart from any other run's.
 */
const AMOUNT = 10_000;
/** The days this file reconciles; what an earlier run left on them is removed first. */
const FIRST_DAY = '2025-08-11';
const LAST_DAY = '2025-08-14';
const BILL_LOCATION = 'GET /v3/bill/tradebill';
const BILL_DOWNLOAD = 'GET /v3/billdownload/file';

describe("the day's reconciliation over WeChat Pay's trade bill on the real services", () => {
  const provider = `wechatpay-wtest-${uniqueSuffix()}`;
  const prefix = `wx${uniqueSuffix()}`;
  let n = 0;
  let wechat: WechatPayLifecycle;

  const clearDays = async () => {
    const from = billDayBounds(FIRST_DAY).start.toISOString();
    const to = billDayBounds(LAST_DAY).end.toISOString();
    const { sql } = wechat.stack;
    await sql.begin(async (tx) => {
      await tx`delete from refunds where order_id in (select id from orders where paid_at >= ${from} and paid_at < ${to})`;
      await tx`delete from orders where paid_at >= ${from} and paid_at < ${to}`;
      // This file's reconciliations are those of providers named wechatpay-wtest-*.
      await tx`delete from reconciliation_statement_rows where statement_id in (
        select id from reconciliation_statements where provider like 'wechatpay-wtest-%')`;
      await tx`delete from reconciliation_statement_chunks where statement_id in (
        select id from reconciliation_statements where provider like 'wechatpay-wtest-%')`;
      await tx`delete from reconciliation_statements where provider like 'wechatpay-wtest-%'`;
      await tx`delete from reconciliation_breaks where provider like 'wechatpay-wtest-%'`;
      await tx`delete from reconciliation_runs where provider like 'wechatpay-wtest-%'`;
    });
  };

  beforeAll(async () => {
    wechat = await startWechatPayLifecycle('wechatpay-recon', {
      RECON_PROVIDER: provider,
      RECON_HEAL_WAIT: '20s',
      // Queries an hour apart: what settles within a test settles by notification or reconciliation.
      REFUND_LADDER: '1h',
      REFUND_REPEAT: '1h',
    });
    await clearDays();
  }, 60_000);
  afterAll(async () => {
    if (wechat) await clearDays();
    await wechat?.stop();
  });

  const result = (workflowId: string) => wechat.stack.temporal.workflow.getHandle(workflowId).result();
  /** An instant of a bill date, Asia/Shanghai wall time `hh:mm:ss`. */
  const at = (billDate: string, time: string) =>
    new Date(billDayBounds(billDate).start.getTime() + Date.parse(`1970-01-01T${time}Z`));
  /** The buyer pays once the workflow opened the Native order at the fake. */
  const pay = (orderId: string, paidAt: Date, notify?: { drop: boolean }) =>
    eventually('the trade opened and paid', () =>
      wechat.control.setTradeState(orderId, 'SUCCESS', paidAt, notify).then(
        () => true,
        () => undefined,
      ),
    );
  /** An order paid at the fake at `paidAt`, its TRANSACTION.SUCCESS through the receiver. */
  const paidOrder = async (paidAt: Date) => {
    const { order, workflowId } = await wechat.newOrder({ orderId: `${prefix}-${++n}`, amount: AMOUNT });
    await pay(order.id, paidAt);
    expect(await result(workflowId)).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    return order;
  };
  const run = async (billDate: string) => {
    const handle = await startReconciliation(wechat.stack.temporal, wechat.stack.config, billDate);
    return { summary: (await handle.result()) as ReconciliationSummary, handle };
  };
  const breaksOf = (billDate: string) =>
    wechat.stack.sql<
      {
        kind: string;
        ref: string;
        status: string;
        heal_action: string | null;
        ours: unknown;
        theirs: unknown;
      }[]
    >`select kind, ref, status, heal_action, ours, theirs from reconciliation_breaks
      where provider = ${provider} and bill_date = ${billDate} order by kind, ref`;
  const billCalls = async (billDate: string) =>
    (await wechat.control.calls()).filter((c) => c.billDate === billDate).map((c) => [c.call, c.status]);

  it('finds each injected fault as a break, in fen, and checks the summary row', async () => {
    const day = '2025-08-12';
    const clean = await paidOrder(at(day, '09:00:00'));
    const omitted = await paidOrder(at(day, '10:00:00'));
    const shortPaid = await paidOrder(at(day, '11:00:00'));
    const refunded = await paidOrder(at(day, '12:00:00'));
    // Refunded in part: PROCESSING at WeChat, then SUCCESS on that day, notified (REFUND.SUCCESS).
    const { refund: row, workflowId } = await requestRefund(
      { db: wechat.stack.db, client: wechat.stack.temporal, config: wechat.stack.config },
      { orderId: refunded.id, amount: 2_500 },
    );
    await eventually('the refund at WeChat settled', () =>
      wechat.control.settleRefund(row.outRequestNo, 'SUCCESS', at(day, '15:00:00')).then(
        () => true,
        () => undefined,
      ),
    );
    expect(await result(workflowId)).toMatchObject({ phase: 'SUCCEEDED', settledBy: 'mq' });
    // payrecon settled it now; the rig moves the row onto the bill's day.
    await wechat.stack
      .sql`update refunds set settled_at = ${at(day, '15:00:05').toISOString()} where id = ${row.id}`;
    const ghost = `${prefix}-ghost`;
    await wechat.control.setBillFaults(day, {
      omitPayments: [omitted.id],
      extraPayments: [{ outTradeNo: ghost, amountFen: 4_200 }],
      amountDeltas: { [shortPaid.id]: -1 },
    });

    const { summary } = await run(day);
    const found = await breaksOf(day);
    expect(found.map((b) => [b.kind, b.ref, b.status])).toEqual([
      ['AMOUNT_MISMATCH', shortPaid.id, 'OPEN'],
      ['MISSING_AT_PROVIDER', omitted.id, 'OPEN'],
      ['MISSING_LOCALLY', ghost, 'OPEN'],
    ]);
    const [amount, missing, extra] = found;
    expect(amount?.ours).toMatchObject({ amount: AMOUNT });
    expect(amount?.theirs).toMatchObject({ amount: AMOUNT - 1 });
    expect(missing).toMatchObject({ ours: expect.objectContaining({ amount: AMOUNT }), theirs: null });
    expect(extra).toMatchObject({ ours: null, theirs: expect.objectContaining({ amount: 4_200 }) });
    // The bill's rows: clean, shortPaid (one fen short), refunded, the ghost, and one refund of 25.00.
    const theirs = {
      rows: 5,
      payCount: 4,
      payAmount: AMOUNT + (AMOUNT - 1) + AMOUNT + 4_200,
      refundCount: 1,
      refundAmount: 2_500,
      // 0.6 % a payment (60 + 60 + 60 + 25 fen), 15 fen given back with the refund.
      fee: 190,
    };
    expect(summary).toMatchObject({
      provider,
      billDate: day,
      status: 'BREAKS',
      totalBreaks: 3,
      open: 3,
      statement: { urlRequests: 1, rejectedLines: 0, controlTotalsOk: true },
      theirs,
      declared: theirs,
      ours: { payCount: 4, payAmount: 4 * AMOUNT, refundCount: 1, refundAmount: 2_500 },
      matchedPayments: 2,
    });
    expect(await findOrder(wechat.stack.db, clean.id)).toMatchObject({ status: 'PAID' });
    expect(await findOrder(wechat.stack.db, refunded.id)).toMatchObject({
      status: 'PARTIALLY_REFUNDED',
      refundedAmount: 2_500,
    });
    // The faults changed the bill, never the trades: WeChat still answers both paid, in full.
    for (const id of [omitted.id, shortPaid.id]) {
      expect(await wechat.gateway.queryTrade(id)).toMatchObject({ status: 'TRADE_SUCCESS', amount: AMOUNT });
    }
    // Faults the fake cannot print are refused, not half applied.
    await expect(wechat.control.setBillFaults(day, { amountDeltas: { [clean.id]: 0.5 } })).rejects.toThrow(
      /HTTP 400 .*PARAM_ERROR/,
    );
    await expect(
      wechat.control.setBillFaults(day, { omitPayments: ['x'], totalsDelta: { payCount: 1 } } as never),
    ).rejects.toThrow(/HTTP 400/);
    // One location, one download: the SHA1 matched the first time.
    expect(await billCalls(day)).toEqual([
      [BILL_LOCATION, 200],
      [BILL_DOWNLOAD, 200],
    ]);
  }, 120_000);

  it('a bill whose summary totals do not add up changes nothing; the corrected bill heals the order', async () => {
    const day = '2025-08-13';
    // Paid at WeChat on that day, its notification dropped and its ladder an hour long: UNPAID here.
    const { order, workflowId } = await wechat.newOrder({ orderId: `${prefix}-unhealed`, amount: AMOUNT });
    await pay(order.id, at(day, '08:00:00'), { drop: true });
    await wechat.control.setBillFaults(day, { totalsDelta: { payAmount: 100 } });

    const { summary: failed } = await run(day);
    expect(failed).toMatchObject({
      statement: { controlTotalsOk: false },
      theirs: { payCount: 1, payAmount: AMOUNT },
      declared: { payCount: 1, payAmount: AMOUNT + 100 },
      healed: 0,
      healing: {},
      status: 'BREAKS',
    });
    expect((await breaksOf(day)).map((b) => [b.kind, b.ref, b.status, b.heal_action])).toEqual([
      ['CONTROL_TOTALS', 'payAmount', 'OPEN', null],
      ['MISSING_LOCALLY', order.id, 'OPEN', null],
    ]);
    expect(await findOrder(wechat.stack.db, order.id)).toMatchObject({ status: 'UNPAID', settledBy: null });
    const events = () =>
      wechat.stack
        .sql`select trade_status from payment_events where order_id = ${order.id} and source = 'reconciliation'`;
    expect(await events()).toHaveLength(0);
    expect(wechat.fake.notifications().filter((a) => a.outTradeNo === order.id)).toHaveLength(0);

    // WeChat's corrected bill: now the day heals the order through its own workflow.
    await wechat.control.setBillFaults(day, {});
    const { summary: corrected } = await run(day);
    expect(corrected).toMatchObject({
      statement: { controlTotalsOk: true },
      healed: 1,
      status: 'BALANCED',
    });
    expect(await result(workflowId)).toMatchObject({ status: 'PAID', settledBy: 'reconciliation' });
    expect(await findOrder(wechat.stack.db, order.id)).toMatchObject({
      status: 'PAID',
      settledBy: 'reconciliation',
      amount: AMOUNT,
      paidAt: at(day, '08:00:00'),
    });
    expect(await events()).toEqual([{ trade_status: 'TRADE_SUCCESS' }]);
    await eventually('the totals break resolved', async () => {
      const breaks = await breaksOf(day);
      return breaks.every((b) => b.status !== 'OPEN') ? breaks : undefined;
    });
  }, 120_000);

  it('a bill whose SHA1 is not the declared one is refused unread and asked again; the good file is reconciled', async () => {
    const day = '2025-08-14';
    const order = await paidOrder(at(day, '10:00:00'));
    // The next location WeChat answers declares a SHA1 that is not the file's.
    await wechat.control.setFaults({ badBillHash: 1 });

    const { summary, handle } = await run(day);
    expect(summary).toMatchObject({
      status: 'BALANCED',
      totalBreaks: 0,
      statement: { urlRequests: 1, rejectedLines: 0, controlTotalsOk: true, reused: false },
      theirs: { rows: 1, payCount: 1, payAmount: AMOUNT },
      matchedPayments: 1,
    });
    // The fake served the location and the file twice: the first file was refused, the second read.
    expect(await billCalls(day)).toEqual([
      [BILL_LOCATION, 200],
      [BILL_DOWNLOAD, 200],
      [BILL_LOCATION, 200],
      [BILL_DOWNLOAD, 200],
    ]);
    // Refused unread: only the good file was stored for the day.
    const stored = await wechat.stack
      .sql`select sha256 from reconciliation_statements where provider = ${provider} and bill_date = ${day}`;
    expect(stored).toEqual([{ sha256: summary.statement.sha256 }]);
    // The fetch failed once on the checksum (retryable) and its retry succeeded.
    const events = (await handle.fetchHistory()).events ?? [];
    const fetchScheduled = events.find(
      (event) => event.activityTaskScheduledEventAttributes?.activityType?.name === 'fetchStatement',
    );
    const fetchStarted = events
      .map((event) => event.activityTaskStartedEventAttributes)
      .filter(
        (attributes) => attributes && Number(attributes.scheduledEventId) === Number(fetchScheduled?.eventId),
      );
    expect(fetchStarted).toHaveLength(1);
    expect(fetchStarted[0]?.attempt).toBe(2);
    expect(fetchStarted[0]?.lastFailure?.message).toMatch(
      /SHA1 [0-9a-f]{40}, WeChat Pay declared [0-9a-f]{40}/,
    );
    expect(await findOrder(wechat.stack.db, order.id)).toMatchObject({ status: 'PAID', settledBy: 'mq' });
  }, 120_000);
});
