import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findOrder } from '../src/db/orders';
import { findRefund } from '../src/db/refunds';
import { requestRefund } from '../src/order/refund';
import { billDayBounds } from '../src/provider/statement-format';
import { startReconciliation } from '../src/reconciliation/start';
import type { ReconciliationSummary } from '../workflows/reconciliation';
import { type AlipayLifecycle, startAlipayLifecycle } from './support/alipay';
import { eventually, uniqueSuffix } from './support/env';

/**
 * The rest of issue 22's proof with PAYMENT_PROVIDER=alipay on the real services (the dev server, Postgres,
 * RabbitMQ; the Alipay adapter against the fake Alipay, the notification receiver, the consumer): an
 * unpaid order's deadline closes its trade at Alipay; refunds in full, in part, and the same out_request_no
 * sent twice; the day's reconciliation over Alipay's real bill format (a zip of GBK CSVs) with injected
 * faults. Alipay's refund notifications are not mapped onto payrecon's refund notice (docs/providers/
 * alipay.md), so a refund settles by Alipay's own answer to the refund call or the refund query: `poll`.
 */
const AMOUNT = 10_000;
/** The days this file reconciles; what an earlier run left on them is removed first. */
const FIRST_DAY = '2025-07-06';
const LAST_DAY = '2025-07-10';
const TRADE_CLOSE = 'POST /v3/alipay/trade/close';
const TRADE_REFUND = 'POST /v3/alipay/trade/refund';
const REFUND_QUERY = 'POST /v3/alipay/trade/fastpay/refund/query';

describe('the Alipay lifecycle on the real services: deadline, refunds, the day’s reconciliation', () => {
  const provider = `alipay-atest-${uniqueSuffix()}`;
  const prefix = `al${uniqueSuffix()}`;
  let n = 0;
  let alipay: AlipayLifecycle;

  const clearDays = async () => {
    const from = billDayBounds(FIRST_DAY).start.toISOString();
    const to = billDayBounds(LAST_DAY).end.toISOString();
    const { sql } = alipay.stack;
    await sql.begin(async (tx) => {
      await tx`delete from refunds where order_id in (select id from orders where paid_at >= ${from} and paid_at < ${to})`;
      await tx`delete from orders where paid_at >= ${from} and paid_at < ${to}`;
      // This file's reconciliations are those of providers named alipay-atest-*.
      await tx`delete from reconciliation_statement_rows where statement_id in (
        select id from reconciliation_statements where provider like 'alipay-atest-%')`;
      await tx`delete from reconciliation_statement_chunks where statement_id in (
        select id from reconciliation_statements where provider like 'alipay-atest-%')`;
      await tx`delete from reconciliation_statements where provider like 'alipay-atest-%'`;
      await tx`delete from reconciliation_breaks where provider like 'alipay-atest-%'`;
      await tx`delete from reconciliation_runs where provider like 'alipay-atest-%'`;
    });
  };

  beforeAll(async () => {
    alipay = await startAlipayLifecycle('alipay-proof', {
      RECON_PROVIDER: provider,
      RECON_HEAL_WAIT: '20s',
    });
    await clearDays();
  }, 60_000);
  afterAll(async () => {
    if (alipay) await clearDays();
    await alipay?.stop();
  });

  const result = (workflowId: string) => alipay.stack.temporal.workflow.getHandle(workflowId).result();
  const callsFor = async (outTradeNo: string) =>
    (await alipay.control.calls()).filter((call) => call.outTradeNo === outTradeNo);

  /** An order paid at the fake (at `paidAt`, the fake's clock), its notification through the receiver. */
  const paidOrder = async (paidAt?: Date) => {
    const { order, workflowId } = await alipay.newOrder({ orderId: `${prefix}-${++n}`, amount: AMOUNT });
    await alipay.control.scan(order.id);
    await alipay.control.pay(order.id, paidAt);
    expect(await result(workflowId)).toMatchObject({ status: 'PAID', settledBy: 'mq' });
    return order;
  };
  const refund = (orderId: string, amount?: number) =>
    requestRefund(
      { db: alipay.stack.db, client: alipay.stack.temporal, config: alipay.stack.config },
      { orderId, amount },
    );

  describe('deadline → trade closed', () => {
    it('a scanned, unpaid trade: the final check, the close at Alipay (TRADE_CLOSED), the order CLOSED; the buyer cannot pay it afterwards', async () => {
      const { order, workflowId } = await alipay.newOrder({ amount: 4_321, payWithinMs: 2_000 });
      await alipay.control.scan(order.id);
      expect(await result(workflowId)).toMatchObject({ status: 'CLOSED' });
      expect(await findOrder(alipay.stack.db, order.id)).toMatchObject({
        status: 'CLOSED',
        settledBy: 'poll',
        paidAt: null,
      });
      const calls = await callsFor(order.id);
      // The final check found it unpaid, then the close: Alipay closed it.
      expect(calls.slice(-2).map((c) => [c.call, c.status, c.code])).toEqual([
        ['POST /v3/alipay/trade/query', 200, null],
        [TRADE_CLOSE, 200, null],
      ]);
      expect(await alipay.control.trade(order.id)).toMatchObject({ state: 'TRADE_CLOSED', refundedFen: 0 });
      await expect(alipay.control.pay(order.id)).rejects.toThrow(/NOT_PAYABLE.*TRADE_CLOSED/);
    });

    it('a trade never scanned: Alipay has nothing to close (ACQ.TRADE_NOT_EXIST), the order CLOSED all the same', async () => {
      const { order, workflowId } = await alipay.newOrder({ amount: 4_321, payWithinMs: 1_500 });
      expect(await result(workflowId)).toMatchObject({ status: 'CLOSED' });
      expect(await findOrder(alipay.stack.db, order.id)).toMatchObject({
        status: 'CLOSED',
        settledBy: 'poll',
      });
      const calls = await callsFor(order.id);
      expect(calls.slice(-2).map((c) => [c.call, c.status, c.code])).toEqual([
        ['POST /v3/alipay/trade/query', 400, 'ACQ.TRADE_NOT_EXIST'],
        [TRADE_CLOSE, 400, 'ACQ.TRADE_NOT_EXIST'],
      ]);
      // Only precreated: no trade, so none was closed.
      expect(await alipay.control.trade(order.id)).toMatchObject({ state: 'PRECREATED' });
    });
  });

  describe('refunds', () => {
    it('in full: SUCCEEDED on Alipay’s fund_change=Y (settled_by poll), the order REFUNDED, the trade TRADE_CLOSED at Alipay', async () => {
      const order = await paidOrder();
      const { refund: row, workflowId } = await refund(order.id);
      expect(await result(workflowId)).toMatchObject({
        phase: 'SUCCEEDED',
        settledBy: 'poll',
        // Alipay's refund notification reached the receiver, which answers success and publishes nothing.
        noticesReceived: 0,
      });
      expect(await findRefund(alipay.stack.db, row.id)).toMatchObject({
        status: 'SUCCEEDED',
        settledBy: 'poll',
        amount: AMOUNT,
      });
      expect(await findOrder(alipay.stack.db, order.id)).toMatchObject({
        status: 'REFUNDED',
        refundedAmount: AMOUNT,
      });
      expect(await alipay.control.trade(order.id)).toMatchObject({
        state: 'TRADE_CLOSED',
        refundedFen: AMOUNT,
        refunds: [{ outRequestNo: row.outRequestNo, amountFen: AMOUNT }],
      });
      const refundCalls = (await callsFor(order.id)).filter((c) => c.call === TRADE_REFUND);
      expect(refundCalls).toEqual([expect.objectContaining({ outRequestNo: row.outRequestNo, status: 200 })]);
      // The payment's notification and the refund's, each answered success once.
      const notified = await eventually('the refund notification answered', async () => {
        const sent = (await alipay.control.notifications()).filter((a) => a.outTradeNo === order.id);
        return sent.length >= 2 && sent.every((a) => a.status !== null) ? sent : undefined;
      });
      expect(notified.map((a) => [a.attempt, a.success])).toEqual([
        [1, true],
        [1, true],
      ]);
    });

    it('in part: PARTIALLY_REFUNDED; Alipay holds one refund and the rest of the trade', async () => {
      const order = await paidOrder();
      const { refund: row, workflowId } = await refund(order.id, 2_500);
      expect(await result(workflowId)).toMatchObject({ phase: 'SUCCEEDED', settledBy: 'poll' });
      expect(await findOrder(alipay.stack.db, order.id)).toMatchObject({
        status: 'PARTIALLY_REFUNDED',
        refundedAmount: 2_500,
      });
      const trade = await alipay.control.trade(order.id);
      expect(trade).toMatchObject({
        state: 'TRADE_SUCCESS',
        refundedFen: 2_500,
        refunds: [{ outRequestNo: row.outRequestNo, amountFen: 2_500 }],
      });
      expect(trade.totalFen - trade.refundedFen).toBe(7_500);
    });

    it('the same out_request_no sent again (its replies lost): one refund at Alipay, confirmed by the refund query', async () => {
      const order = await paidOrder();
      const first = await refund(order.id, 3_000);
      expect(await result(first.workflowId)).toMatchObject({ phase: 'SUCCEEDED' });
      // Alipay takes the next refund and its answer never arrives, nor that of the next try: the HTTP
      // client (urllib resends once on a cut socket) and then the activity's retry send it again.
      await alipay.control.setFaults({ loseReplies: 2 });
      try {
        const { refund: row, workflowId } = await refund(order.id, 2_000);
        expect(await result(workflowId)).toMatchObject({ phase: 'SUCCEEDED', settledBy: 'poll' });
        const calls = (await callsFor(order.id)).filter((c) => c.outRequestNo === row.outRequestNo);
        // Two lost, the one Alipay answers fund_change=N (nothing more refunded), then the refund query.
        expect(calls.map((c) => [c.call, c.status])).toEqual([
          [TRADE_REFUND, null],
          [TRADE_REFUND, null],
          [TRADE_REFUND, 200],
          [REFUND_QUERY, 200],
        ]);
        expect(await findRefund(alipay.stack.db, row.id)).toMatchObject({
          status: 'SUCCEEDED',
          settledBy: 'poll',
        });
        const trade = await alipay.control.trade(order.id);
        expect(trade.refunds.map((r) => [r.outRequestNo, r.amountFen])).toEqual([
          [first.refund.outRequestNo, 3_000],
          [row.outRequestNo, 2_000],
        ]);
        expect(trade).toMatchObject({ state: 'TRADE_SUCCESS', refundedFen: 5_000 });
        expect(await findOrder(alipay.stack.db, order.id)).toMatchObject({
          status: 'PARTIALLY_REFUNDED',
          refundedAmount: 5_000,
        });
        // Once more through the adapter: the same refund answered, nothing more refunded.
        expect(
          await alipay.gateway.submitRefund({
            orderId: order.id,
            outRequestNo: row.outRequestNo,
            amount: 2_000,
            reason: null,
          }),
        ).toMatchObject({ status: 'SUCCESS', amount: 2_000 });
        expect(await alipay.control.trade(order.id)).toMatchObject({ refundedFen: 5_000 });
      } finally {
        await alipay.control.setFaults({});
      }
    });
  });

  describe("the day's reconciliation over Alipay's trade bill", () => {
    /** An instant of a bill date, Asia/Shanghai wall time `hh:mm:ss`. */
    const at = (billDate: string, time: string) =>
      new Date(billDayBounds(billDate).start.getTime() + Date.parse(`1970-01-01T${time}Z`));
    const run = async (billDate: string) => {
      const handle = await startReconciliation(alipay.stack.temporal, alipay.stack.config, billDate);
      return (await handle.result()) as ReconciliationSummary;
    };
    const breaksOf = (billDate: string) =>
      alipay.stack.sql<
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

    it('finds each injected fault as a break, in fen, and checks the bill’s 合计 lines', async () => {
      const day = '2025-07-07';
      const clean = await paidOrder(at(day, '09:00:00'));
      const omitted = await paidOrder(at(day, '10:00:00'));
      const shortPaid = await paidOrder(at(day, '11:00:00'));
      const refunded = await paidOrder(at(day, '12:00:00'));
      // The refund happens on that day at Alipay (the fake's clock) and at payrecon (the rig moves the row).
      await alipay.control.setClock(at(day, '15:00:00'));
      const { refund: row, workflowId } = await refund(refunded.id, 2_500);
      try {
        expect(await result(workflowId)).toMatchObject({ phase: 'SUCCEEDED' });
      } finally {
        await alipay.control.setClock();
      }
      await alipay.stack
        .sql`update refunds set settled_at = ${at(day, '15:00:05').toISOString()} where id = ${row.id}`;
      const ghost = `${prefix}-ghost`;
      await alipay.control.setBillFaults(day, {
        omitPayments: [omitted.id],
        extraPayments: [{ outTradeNo: ghost, amountFen: 4_200 }],
        amountDeltas: { [shortPaid.id]: -1 },
      });

      const summary = await run(day);
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
      // The bill's rows: clean, shortPaid (one fen short), refunded and the ghost; one refund of 25.00.
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
      expect(await findOrder(alipay.stack.db, clean.id)).toMatchObject({ status: 'PAID' });
    }, 90_000);

    it('a bill whose 合计 lines do not add up changes nothing; the corrected bill heals the order', async () => {
      const day = '2025-07-09';
      // Paid at Alipay on that day, its notification lost and its ladder an hour long: UNPAID here.
      const { order, workflowId } = await alipay.newOrder({ orderId: `${prefix}-unhealed`, amount: AMOUNT });
      await alipay.control.scan(order.id);
      await alipay.control.pay(order.id, at(day, '08:00:00'), { drop: true });
      await alipay.control.setBillFaults(day, { totalsDelta: { payAmount: 100 } });

      const failed = await run(day);
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
      expect(await findOrder(alipay.stack.db, order.id)).toMatchObject({ status: 'UNPAID', settledBy: null });
      const events = () =>
        alipay.stack
          .sql`select trade_status from payment_events where order_id = ${order.id} and source = 'reconciliation'`;
      expect(await events()).toHaveLength(0);

      // Alipay's corrected bill: now the day heals the order through its own workflow.
      await alipay.control.setBillFaults(day, {});
      const corrected = await run(day);
      expect(corrected).toMatchObject({
        statement: { controlTotalsOk: true },
        healed: 1,
        status: 'BALANCED',
      });
      expect(await result(workflowId)).toMatchObject({ status: 'PAID', settledBy: 'reconciliation' });
      expect(await findOrder(alipay.stack.db, order.id)).toMatchObject({
        status: 'PAID',
        settledBy: 'reconciliation',
        amount: AMOUNT,
      });
      expect(await events()).toEqual([{ trade_status: 'TRADE_SUCCESS' }]);
      await eventually('the totals break resolved', async () => {
        const breaks = await breaksOf(day);
        return breaks.every((b) => b.status !== 'OPEN') ? breaks : undefined;
      });
    }, 90_000);
  });
});
