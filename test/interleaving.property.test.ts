import { randomUUID } from 'node:crypto';
import { type WorkflowHandle, WorkflowIdReusePolicy } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { createDatabase } from '../src/db/client';
import { findOrder, insertOrder } from '../src/db/orders';
import { createRefund, listRefunds, RefundRefused } from '../src/db/refunds';
import type { OrderStatus, PaymentNotice, RefundNotice, RefundSnapshot, TradeSnapshot } from '../src/domain';
import { deliverPaymentNotice } from '../src/order/deliver-notice';
import { deliverRefundNotice } from '../src/order/deliver-refund-notice';
import { refundWorkflowId, refundWorkflowInput } from '../src/order/refund';
import { orderWorkflowInput, orderWorkflowStartOptions } from '../src/order/start';
import { ProviderRefusedError, type RefundRequest } from '../src/provider/gateway';
import { installWorkerRuntime } from '../workers/runtime';
import { orderWorkflow } from '../workflows/order';
import { refundWorkflow } from '../workflows/refund';
import { refundStateQuery } from '../workflows/refund-contract';
import { testConfig } from './support/env';
import { paidNotice } from './support/notice';
import { waitQuiescent } from './support/quiescence';
import { ScriptedGateway, type TradeScript } from './support/scripted-gateway';
import { startTestWorker, startTimeSkipping } from './support/time-skipping';

/**
 * Property-based interleavings (issue 12): for one order per run, fast-check generates a list of facts
 * arriving in some order (paid notices and their duplicates, a notice naming another trade, the provider
 * answering "paid" from some query on, time passing and the pay deadline, refund requests, refund notices,
 * refund query answers), runs them against the real order and refund workflows on the time-skipping server
 * with the real test database and a scripted provider, and checks the invariants: the order only moves
 * forward in the lattice, never refunds more than was paid, ends where the provider says it is, and no
 * fact the order can no longer take changed it.
 *
 * Seeded: FC_SEED=<n> reproduces a run (default below); FC_RUNS=<n> changes the number of runs. A failure
 * prints fast-check's seed, path and the shrunk command list.
 */
const config = testConfig('interleave');
const database = createDatabase(config.DATABASE_URL, { max: 5 });
const AMOUNT = 10_000;
const SEED = Number(process.env.FC_SEED ?? 20_261_122);
const NUM_RUNS = Number(process.env.FC_RUNS ?? 25);
// Small ladders: checks at 10s, 30s, then every 30s; the deadline 2 minutes after the order.
const PAY_LADDER = { stepsMs: [10_000, 20_000], repeatMs: 30_000 };
const PAY_WINDOW_MS = 120_000;
// Refund queries at 10s, 70s, then every 10 min until an hour: the pay deadline passes long before.
const REFUND_LADDER = { stepsMs: [10_000, 60_000], repeatMs: 600_000 };
const REFUND_WINDOW_MS = 3_600_000;

/** The scripted provider, also remembering which trades it ever answered "paid" for. */
class ProviderModel extends ScriptedGateway {
  readonly answeredPaid = new Set<string>();
  private readonly scripts = new Map<string, TradeScript>();

  override script(orderId: string, script: TradeScript): void {
    this.scripts.set(orderId, script);
    super.script(orderId, script);
  }

  scriptOf(orderId: string): TradeScript {
    return this.scripts.get(orderId) ?? {};
  }

  /** Refund requests it refused (its trade was never paid): no refund exists for them. */
  readonly refused = new Set<string>();

  /** Like a real provider, it refuses a refund of a trade the buyer never paid (a CLOSED order's bogus notice). */
  override async submitRefund(request: RefundRequest): Promise<RefundSnapshot> {
    const paid =
      this.scriptOf(request.orderId).paidFromQuery !== undefined || this.answeredPaid.has(request.orderId);
    if (!paid) {
      this.refused.add(request.outRequestNo);
      throw new ProviderRefusedError('TRADE_NOT_PAID', `trade of ${request.orderId} is not paid`);
    }
    return super.submitRefund(request);
  }

  override async queryTrade(orderId: string): Promise<TradeSnapshot> {
    const snapshot = await super.queryTrade(orderId);
    if (snapshot.status === 'TRADE_SUCCESS') this.answeredPaid.add(orderId);
    return snapshot;
  }
}

const gateway = new ProviderModel();
/** What the runs reached (printed at the end, so a change that makes the runs trivial shows). */
const tally = new Map<string, number>();
let env: TestWorkflowEnvironment;
let worker: Awaited<ReturnType<typeof startTestWorker>> | undefined;

beforeAll(async () => {
  installWorkerRuntime('ERROR');
  env = await startTimeSkipping();
  worker = await startTestWorker(env, {
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities({ db: database.db, gateway }),
  });
});

afterAll(async () => {
  console.info(`interleavings reached: ${JSON.stringify(Object.fromEntries([...tally].sort()))}`);
  await worker?.stop();
  await env?.teardown();
  await database.close();
});

/** One fact arriving, as plain data so a shrunk counterexample prints readably. */
type Command =
  /** The buyer pays (if the trade is still open) and the provider's paid notice arrives. */
  | { kind: 'paidNotice' }
  /** A copy of an earlier notice (same message id) is delivered again. */
  | { kind: 'duplicateNotice'; pick: number }
  /** A signed paid notice naming another trade: the provider is asked; it never pays on its own. */
  | { kind: 'otherTradeNotice' }
  /** The buyer paid but the notice is lost: the provider answers "paid" from the n-th next query. */
  | { kind: 'pollPaid'; fromNextQuery: number }
  /** Time passes (ladder checks and refund queries fall due). */
  | { kind: 'sleep'; ms: number }
  /** The pay deadline passes: the order workflow runs to its end (paid by a check, or closed). */
  | { kind: 'passDeadline' }
  /** A refund is asked for: `amount` null is all that is left. Refused (fine) unless paid with money left. */
  | { kind: 'refund'; amount: number | null }
  /** The provider's refund notice for one of the refunds (it refunds a processing one now). */
  | { kind: 'refundNotice'; pick: number }
  /** From now on the provider's refund queries answer SUCCESS at a refund's n-th query. */
  | { kind: 'refundQuerySucceeds'; atQuery: number }
  /** From now on the provider refuses refund requests (or accepts them again). */
  | { kind: 'refundsRefused'; refused: boolean };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'paidNotice' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('duplicateNotice' as const), pick: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'otherTradeNotice' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('pollPaid' as const),
      fromNextQuery: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('sleep' as const), ms: fc.constantFrom(5_000, 15_000, 45_000) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'passDeadline' as const }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('refund' as const),
      amount: fc.option(fc.constantFrom(1, 2_500, 4_000, 6_000, AMOUNT - 1, AMOUNT), { nil: null }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('refundNotice' as const), pick: fc.nat(5) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('refundQuerySucceeds' as const),
      atQuery: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('refundsRefused' as const), refused: fc.boolean() }),
  },
);

/** The lattice: from each status, the statuses an order may move to (staying put is always allowed). */
const FORWARD: Record<OrderStatus, readonly OrderStatus[]> = {
  UNPAID: ['PAID', 'PARTIALLY_REFUNDED', 'REFUNDED', 'CLOSED', 'NEEDS_REVIEW'],
  PAID: ['PARTIALLY_REFUNDED', 'REFUNDED'],
  PARTIALLY_REFUNDED: ['REFUNDED'],
  REFUNDED: [],
  CLOSED: [],
  NEEDS_REVIEW: [],
};

interface Observation {
  after: string;
  status: OrderStatus;
  refundedAmount: number;
}

interface Run {
  orderId: string;
  order: WorkflowHandle<typeof orderWorkflow>;
  refunds: { outRequestNo: string; handle: WorkflowHandle<typeof refundWorkflow> }[];
  notices: PaymentNotice[];
  /** The buyer paid while the trade was open (a paid notice says so). */
  buyerPaid: boolean;
  /** A paid notice with a new message id arrived after the order was CLOSED. */
  freshNoticeAfterClose: boolean;
  refused: number;
  observations: Observation[];
}

const tradeClosed = (orderId: string) => gateway.closes.includes(orderId);
const tradeScript = (run: Run) => gateway.scriptOf(run.orderId);

async function startRun(): Promise<Run> {
  const orderId = `ip_${randomUUID().slice(0, 12)}`;
  const row = await insertOrder(database.db, {
    id: orderId,
    amount: AMOUNT,
    currency: 'CNY',
    payDeadline: new Date((await env.currentTimeMs()) + PAY_WINDOW_MS),
    providerTradeNo: `SIM-${orderId}`,
  });
  gateway.script(orderId, { amount: AMOUNT });
  const input = orderWorkflowInput(row, config, { pollLadder: PAY_LADDER });
  const order = await env.client.workflow.start(
    orderWorkflow,
    orderWorkflowStartOptions(input, config.TEMPORAL_TASK_QUEUE),
  );
  const run: Run = {
    orderId,
    order,
    refunds: [],
    notices: [],
    buyerPaid: false,
    freshNoticeAfterClose: false,
    refused: 0,
    observations: [],
  };
  await settle(run, 'start');
  return run;
}

/** Waits until nothing is in flight in the run's workflows, then records the order's row. */
async function settle(run: Run, after: string): Promise<void> {
  await waitQuiescent([run.order, ...run.refunds.map((r) => r.handle)]);
  const row = await findOrder(database.db, run.orderId);
  if (!row) throw new Error(`order ${run.orderId} vanished`);
  run.observations.push({ after, status: row.status, refundedAmount: row.refundedAmount });
}

async function deliver(run: Run, notice: PaymentNotice): Promise<void> {
  const before = await findOrder(database.db, run.orderId);
  const seen = run.notices.some((n) => n.messageId === notice.messageId);
  if (!seen) run.notices.push(notice);
  if (before?.status === 'CLOSED' && !seen) run.freshNoticeAfterClose = true;
  const delivery = await deliverPaymentNotice(
    { db: database.db, temporal: env.client, config: { ...config } },
    notice,
  );
  expect(delivery.outcome).not.toBe('unknown-order');
}

async function execute(run: Run, command: Command): Promise<void> {
  const script = tradeScript(run);
  switch (command.kind) {
    case 'paidNotice': {
      if (!tradeClosed(run.orderId)) {
        // The buyer paid: from now on every query of the trade says so.
        run.buyerPaid = true;
        gateway.script(run.orderId, { ...script, paidFromQuery: 1 });
      }
      await deliver(run, paidNotice(run.orderId, AMOUNT));
      return;
    }
    case 'duplicateNotice': {
      const original = run.notices[command.pick % Math.max(run.notices.length, 1)];
      if (original) await deliver(run, original);
      return;
    }
    case 'otherTradeNotice':
      await deliver(
        run,
        paidNotice(run.orderId, AMOUNT, { tradeNo: `SIM-other-${randomUUID().slice(0, 8)}` }),
      );
      return;
    case 'pollPaid': {
      if (tradeClosed(run.orderId)) return;
      const from = gateway.queryCount(run.orderId) + command.fromNextQuery;
      const paidFromQuery = Math.min(script.paidFromQuery ?? from, from);
      gateway.script(run.orderId, { ...script, paidFromQuery });
      return;
    }
    case 'sleep':
      await env.sleep(command.ms);
      return;
    case 'passDeadline':
      await run.order.result();
      return;
    case 'refund': {
      let row: Awaited<ReturnType<typeof createRefund>>;
      try {
        row = await createRefund(database.db, {
          orderId: run.orderId,
          ...(command.amount === null ? {} : { amount: command.amount }),
        });
      } catch (error) {
        if (!(error instanceof RefundRefused)) throw error;
        run.refused++;
        return;
      }
      // requestRefund's start, with the deadline on the test server's clock (it runs ahead of the wall's).
      const input = {
        ...refundWorkflowInput(row, { ...config, REFUND_LADDER: REFUND_LADDER.stepsMs }),
        ladder: REFUND_LADDER,
        deadline: new Date((await env.currentTimeMs()) + REFUND_WINDOW_MS).toISOString(),
      };
      const handle = await env.client.workflow.start(refundWorkflow, {
        workflowId: refundWorkflowId(row.id),
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        args: [input],
        workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
      });
      run.refunds.push({ outRequestNo: row.outRequestNo, handle });
      // Submitted before the next fact: a refund notice needs the provider to hold the refund.
      await waitQuiescent([handle]);
      const state = await handle.query(refundStateQuery).catch(() => null);
      expect(state?.phase ?? 'ended').not.toBe('SUBMITTING');
      return;
    }
    case 'refundNotice': {
      const target = run.refunds[command.pick % Math.max(run.refunds.length, 1)];
      if (!target) return;
      const held = gateway.refunds.get(target.outRequestNo);
      // A request it refused has no refund and no notice.
      if (!held && gateway.refused.has(target.outRequestNo)) return;
      if (!held) throw new Error(`the provider holds no refund ${target.outRequestNo}`);
      if (held.status === 'PROCESSING') held.status = 'SUCCESS';
      const notice: RefundNotice = {
        messageId: randomUUID(),
        orderId: run.orderId,
        source: 'mq',
        outRequestNo: target.outRequestNo,
        refundNo: held.refundNo ?? `RF-${target.outRequestNo}`,
        status: held.status === 'FAILED' ? 'REFUND_FAILED' : 'REFUND_SUCCESS',
        amount: held.amount ?? 0,
        currency: 'CNY',
        refundedAt: new Date(await env.currentTimeMs()).toISOString(),
      };
      const delivery = await deliverRefundNotice({ db: database.db, temporal: env.client }, notice);
      expect(delivery.outcome).not.toBe('unknown-refund');
      return;
    }
    case 'refundQuerySucceeds':
      gateway.script(run.orderId, { ...script, refundSucceedsAtQuery: command.atQuery });
      return;
    case 'refundsRefused':
      gateway.script(run.orderId, { ...script, refundFails: command.refused });
      return;
  }
}

async function checkInvariants(run: Run): Promise<void> {
  const { orderId } = run;
  const row = await findOrder(database.db, orderId);
  if (!row) throw new Error(`order ${orderId} vanished`);

  // 1. Only forward in the lattice, the refunded amount only up and never past the amount.
  for (let i = 1; i < run.observations.length; i++) {
    const [before, after] = [run.observations[i - 1], run.observations[i]] as [Observation, Observation];
    if (after.status !== before.status) {
      expect(FORWARD[before.status], `${before.status} -> ${after.status} after ${after.after}`).toContain(
        after.status,
      );
    }
    expect(after.refundedAmount, `refunded amount went down after ${after.after}`).toBeGreaterThanOrEqual(
      before.refundedAmount,
    );
  }
  for (const o of run.observations) expect(o.refundedAmount).toBeLessThanOrEqual(AMOUNT);

  // 2. The order ends where the provider says it is.
  const providerPaid = run.buyerPaid || gateway.answeredPaid.has(orderId);
  const atProvider = [...gateway.refunds.values()].filter((r) => r.orderId === orderId);
  const providerRefunded = atProvider
    .filter((r) => r.status === 'SUCCESS')
    .reduce((sum, r) => sum + (r.amount ?? 0), 0);
  expect(providerRefunded, 'the provider refunded more than was paid').toBeLessThanOrEqual(AMOUNT);
  const expected: OrderStatus = !providerPaid
    ? 'CLOSED'
    : providerRefunded === 0
      ? 'PAID'
      : providerRefunded < AMOUNT
        ? 'PARTIALLY_REFUNDED'
        : 'REFUNDED';
  expect(row.status, 'final status vs the provider').toBe(expected);
  expect(row.refundedAmount, 'refunded amount vs the refunds the provider made').toBe(providerRefunded);
  expect((await run.order.result()).status).toBe(providerPaid ? 'PAID' : 'CLOSED');

  // Each refund row agrees with the provider's refund; nothing was refunded twice (one per out_request_no).
  const rows = await listRefunds(database.db, { orderId });
  expect(rows).toHaveLength(run.refunds.length);
  const refusedHere = rows.filter((r) => gateway.refused.has(r.outRequestNo));
  expect(atProvider).toHaveLength(run.refunds.length - refusedHere.length);
  const want = {
    SUCCESS: 'SUCCEEDED',
    FAILED: 'FAILED',
    PROCESSING: 'UNKNOWN',
    NOT_FOUND: 'missing',
  } as const;
  for (const refund of rows) {
    const held = gateway.refunds.get(refund.outRequestNo);
    const refused = gateway.refused.has(refund.outRequestNo) ? 'FAILED' : 'missing';
    expect(refund.status, `refund ${refund.outRequestNo}`).toBe(held ? want[held.status] : refused);
  }

  // 3. Every notice is recorded once in payment_events, however often it came.
  const events = await database.sql<{ message_id: string | null }[]>`
    select message_id from payment_events where order_id = ${orderId}`;
  for (const notice of run.notices) {
    expect(
      events.filter((e) => e.message_id === notice.messageId),
      `notice ${notice.messageId}`,
    ).toHaveLength(1);
  }

  // 4. Discrepancies: one per kind and subject (two notices naming other trades are two facts), and only
  // those these facts can cause; no contradicting fact moved the order.
  const discrepancies = await database.sql<{ kind: string; subject: string }[]>`
    select kind, subject from payment_discrepancies where order_id = ${orderId}`;
  const kinds = discrepancies.map((d) => d.kind);
  expect(new Set(discrepancies.map((d) => `${d.kind}/${d.subject}`)).size).toBe(discrepancies.length);
  const noticeIds = new Set(run.notices.map((n) => n.messageId));
  for (const d of discrepancies.filter((d) => d.kind === 'NOTICE_CONTRADICTS_PROVIDER')) {
    expect(noticeIds, 'a contradicted notice is keyed on its own message id').toContain(d.subject);
  }
  const allowed = new Set(['NOTICE_CONTRADICTS_PROVIDER']);
  if (row.status === 'CLOSED') allowed.add('PAID_AFTER_CLOSE');
  if (providerPaid) allowed.add('DUPLICATE_PAYMENT');
  if (rows.some((r) => r.status === 'UNKNOWN')) allowed.add('REFUND_UNCONFIRMED');
  for (const kind of kinds) expect([...allowed], `discrepancy ${kind}`).toContain(kind);
  expect(kinds.includes('REFUND_UNCONFIRMED')).toBe(rows.some((r) => r.status === 'UNKNOWN'));
  if (run.freshNoticeAfterClose) expect(kinds).toContain('PAID_AFTER_CLOSE');
}

async function runInterleaving(commands: Command[]): Promise<void> {
  const run = await startRun();
  for (const [i, command] of commands.entries()) {
    await execute(run, command);
    await settle(run, `#${i} ${command.kind}`);
  }
  // The end: the order workflow to its end, then every refund to its answer or its deadline (an
  // unanswered one is UNKNOWN then, and its workflow waits on for a late answer: no result to wait for).
  await run.order.result();
  await env.sleep(REFUND_WINDOW_MS + 60_000);
  await settle(run, 'end');
  const phases: string[] = [];
  for (const refund of run.refunds) phases.push((await refund.handle.query(refundStateQuery)).phase);
  const final = run.observations.at(-1);
  const label = [final?.status, ...phases.sort(), run.refused ? 'some refused' : ''].join(' ').trim();
  tally.set(label, (tally.get(label) ?? 0) + 1);
  try {
    await checkInvariants(run);
  } catch (error) {
    const trail = run.observations.map((o) => `${o.after}: ${o.status}/${o.refundedAmount}`).join('\n  ');
    throw new Error(`order ${run.orderId}\n  ${trail}\n${(error as Error).message}`);
  }
}

describe('random interleavings of payment and refund facts (time-skipping, property-based)', () => {
  it(`keeps the lattice, the amounts and the provider's word (seed ${SEED}, ${NUM_RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(commandArb, { minLength: 1, maxLength: 16 }), runInterleaving),
      {
        seed: SEED,
        numRuns: NUM_RUNS,
        verbose: 1,
        // One run takes about a second; a stuck one fails instead of hanging the shrinking.
        timeout: 30_000,
        endOnFailure: process.env.FC_NO_SHRINK === '1',
      },
    );
  }, 600_000);
});
