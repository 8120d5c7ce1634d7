/**
 * Records the Temporal history of every order-workflow scenario from a REAL dev-server run into
 * test/fixtures/histories/<scenario>.json (one file per run; a continue-as-new chain gives
 * <scenario>.run1.json, <scenario>.run2.json, ...). test/replay.test.ts replays them all against the
 * current workflow code, so a change that breaks determinism fails in CI before it is deployed.
 *
 *   npx tsx scripts/record-histories.ts                 record every scenario (about 20 s)
 *   npx tsx scripts/record-histories.ts cancel-unpaid   record only the scenarios named
 *   npx tsx scripts/record-histories.ts --list          list the scenarios
 *
 * Needs the dev server (bash scripts/temporal-dev.sh start; TEMPORAL_ADDRESS, default 127.0.0.1:7233)
 * and the migrated test database (npm run setup; TEST_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/payrecon_test). The worker runs in this process on a task queue
 * of its own, with a scripted provider (test/support/scripted-gateway.ts); ladders and deadlines are a
 * few seconds, so the scenarios run in real time, all at once. Every scenario checks that it ended the
 * way its name says before its fixture is written: a failed scenario keeps its old fixture and the
 * script exits 1.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Client, WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type * as proto from '@temporalio/proto';
import { createDatabase, type Database, type Sql } from '../src/db/client';
import { findOrder, insertOrder, type OrderRow } from '../src/db/orders';
import { handleNoticeForEndedWorkflow } from '../src/order/late-notice';
import { orderWorkflowInput, orderWorkflowStartOptions } from '../src/order/start';
import { type Config, loadConfig } from '../src/platform/config';
import { activityTypes as activityTypesIn } from '../src/platform/history';
import { connectTemporal } from '../src/platform/temporal';
import type { TradeSnapshot } from '../src/provider/gateway';
import { paidNotice } from '../test/support/notice';
import { ScriptedGateway, type TradeScript } from '../test/support/scripted-gateway';
import { installWorkerRuntime } from '../workers/runtime';
import { createOrderWorker } from '../workers/worker';
import type { PollLadder } from '../workflows/ladder';
import {
  cancelOrderSignal,
  type OrderWorkflowResult,
  orderStateQuery,
  orderWorkflow,
  type PaymentNotice,
  paymentInitiatedSignal,
  paymentNoticeSignal,
} from '../workflows/order';

type History = proto.temporal.api.history.v1.IHistory;

/** The proto3 JSON of a history, as `temporal workflow show --output json` writes it. */
function historyToJson(history: History): string {
  return JSON.stringify(JSON.parse(historyToJSON(history)), null, 2);
}

const FIXTURES_DIR = path.resolve(__dirname, '../test/fixtures/histories');
const AMOUNT = 9_900;
/**
 * Ladder checks at ~1, 2, 3 and 4 s; the next one (10 s) would pass the 7 s deadline. Both sides of the
 * deadline have seconds of slack because each check runs late by its workflow and activity task round
 * trips (measured: up to 0.6 s per check on a busy machine). Whole seconds: the dev server fires a timer
 * of less than a second only after about a second (200, 400 and 600 ms timers all fired after 0.99-1.06 s).
 */
const LADDER: PollLadder = { stepsMs: [1_000, 1_000, 1_000, 1_000], repeatMs: 6_000 };
const PAY_WINDOW_MS = 7_000;
const LADDER_CHECKS_BEFORE_DEADLINE = 4;
/** For scenarios driven by signals: the first check is far enough away that the signal always wins. */
const SIGNAL_FIRST_LADDER: PollLadder = { stepsMs: [3_000], repeatMs: 3_000 };

/** The scripted provider, plus a hook that runs while closeTrade is in flight (a notice racing the close). */
class RecordingGateway extends ScriptedGateway {
  private readonly duringClose = new Map<string, () => Promise<void>>();

  onClose(orderId: string, hook: () => Promise<void>): void {
    this.duringClose.set(orderId, hook);
  }

  override async closeTrade(orderId: string): Promise<TradeSnapshot> {
    const snapshot = await super.closeTrade(orderId);
    await this.duringClose.get(orderId)?.();
    return snapshot;
  }
}

interface Run {
  orderId: string;
  handle: WorkflowHandle<typeof orderWorkflow>;
  client: Client;
  db: Database;
  sql: Sql;
  gateway: RecordingGateway;
  config: Config;
  notice(overrides?: Partial<PaymentNotice>): PaymentNotice;
  row(): Promise<OrderRow>;
}

interface Scenario {
  name: string;
  script?: TradeScript;
  ladder?: PollLadder;
  payWithinMs?: number;
  historyLimit?: number;
  /** Runs right after the workflow started, before its result is awaited (signals, queries, hooks). */
  drive?(run: Run): Promise<void>;
  /** Throws unless the workflow ended the way the scenario's name says. */
  verify(run: Run, result: OrderWorkflowResult): Promise<void>;
}

function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function expectResult(result: OrderWorkflowResult, expected: Partial<OrderWorkflowResult>): void {
  for (const [key, value] of Object.entries(expected)) {
    const actual = result[key as keyof OrderWorkflowResult];
    check(
      JSON.stringify(actual) === JSON.stringify(value),
      `expected result.${key} = ${JSON.stringify(value)}, got ${JSON.stringify(actual)} (result ${JSON.stringify(result)})`,
    );
  }
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(25);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function activityTypes(run: Run): Promise<string[]> {
  return activityTypesIn(await run.handle.fetchHistory());
}

async function discrepancyKinds(run: Run): Promise<string[]> {
  const rows =
    await run.sql`select kind from payment_discrepancies where order_id = ${run.orderId} order by id`;
  return rows.map((r) => String(r.kind));
}

/** Settled by a ladder check before the deadline, not by the final check at the deadline. */
async function settledBeforeDeadline(run: Run): Promise<void> {
  const { closeTime } = await run.handle.describe();
  const row = await run.row();
  check(
    closeTime && closeTime.getTime() < row.payDeadline.getTime(),
    `closed at ${closeTime?.toISOString()}, not before the deadline ${row.payDeadline.toISOString()}`,
  );
  check(!run.gateway.closes.includes(run.orderId), 'the trade was closed');
}

const paidByPollAt = (step: number, name: string): Scenario => ({
  name,
  script: { paidFromQuery: step },
  async verify(run, result) {
    expectResult(result, { status: 'PAID', settledBy: 'poll', pollAttempts: step });
    await settledBeforeDeadline(run);
  },
});

const SCENARIOS: Scenario[] = [
  {
    name: 'paid-mq-before-first-poll',
    ladder: SIGNAL_FIRST_LADDER,
    async drive(run) {
      await run.handle.signal(paymentNoticeSignal, run.notice());
    },
    async verify(run, result) {
      expectResult(result, { status: 'PAID', settledBy: 'mq', pollAttempts: 0 });
      check(run.gateway.queryCount(run.orderId) === 0, 'the provider was queried');
    },
  },
  paidByPollAt(1, 'paid-poll-step-1'),
  paidByPollAt(3, 'paid-poll-step-3'),
  paidByPollAt(LADDER_CHECKS_BEFORE_DEADLINE, 'paid-poll-last-step'),
  {
    name: 'never-paid-closed',
    async verify(run, result) {
      expectResult(result, {
        status: 'CLOSED',
        pollAttempts: LADDER_CHECKS_BEFORE_DEADLINE + 1,
        discrepancies: [],
      });
      check(run.gateway.closes.includes(run.orderId), 'the trade was not closed at the provider');
      const row = await run.row();
      check(row.closeReason === 'PAY_DEADLINE_PASSED', `close reason ${row.closeReason}`);
    },
  },
  {
    name: 'paid-at-close',
    script: { paidAtClose: true },
    async verify(run, result) {
      expectResult(result, { status: 'PAID', settledBy: 'poll' });
      const types = await activityTypes(run);
      check(types.includes('closeTrade'), 'closeTrade was not called');
      check(!types.includes('closeOrder'), 'closeOrder was called');
    },
  },
  {
    name: 'cancel-unpaid',
    ladder: SIGNAL_FIRST_LADDER,
    async drive(run) {
      await run.handle.signal(cancelOrderSignal);
    },
    async verify(run, result) {
      expectResult(result, { status: 'CLOSED', pollAttempts: 1 });
      check(run.gateway.closes.includes(run.orderId), 'the trade was not closed at the provider');
      const row = await run.row();
      check(row.closeReason === 'CANCELLED_BY_BUYER', `close reason ${row.closeReason}`);
    },
  },
  {
    name: 'cancel-already-paid',
    ladder: SIGNAL_FIRST_LADDER,
    script: { paidFromQuery: 1 },
    async drive(run) {
      await run.handle.signal(cancelOrderSignal, { reason: 'BUYER_CHANGED_MIND' });
    },
    async verify(run, result) {
      expectResult(result, { status: 'PAID', settledBy: 'poll', pollAttempts: 1 });
      check(!run.gateway.closes.includes(run.orderId), 'the trade was closed');
    },
  },
  {
    name: 'duplicate-notices',
    ladder: SIGNAL_FIRST_LADDER,
    async drive(run) {
      const paid = run.notice();
      for (let i = 0; i < 5; i++) await run.handle.signal(paymentNoticeSignal, paid);
    },
    async verify(run, result) {
      expectResult(result, { status: 'PAID', settledBy: 'mq', pollAttempts: 0 });
      const types = await activityTypes(run);
      check(types.filter((t) => t === 'markOrderPaid').length === 1, `activities ${types.join(',')}`);
      check(types.filter((t) => t === 'recordPaymentNotice').length === 1, `activities ${types.join(',')}`);
    },
  },
  {
    name: 'amount-mismatch-mq',
    ladder: SIGNAL_FIRST_LADDER,
    async drive(run) {
      await run.handle.signal(paymentNoticeSignal, run.notice({ amount: AMOUNT - 1 }));
    },
    async verify(run, result) {
      expectResult(result, { status: 'NEEDS_REVIEW', discrepancies: ['AMOUNT_MISMATCH'] });
      check((await run.row()).paidAt === null, 'the order has a paidAt');
    },
  },
  {
    name: 'amount-mismatch-poll',
    script: { paidFromQuery: 1, paidAmount: AMOUNT * 2 },
    async verify(_run, result) {
      expectResult(result, { status: 'NEEDS_REVIEW', pollAttempts: 1, discrepancies: ['AMOUNT_MISMATCH'] });
    },
  },
  {
    // The interesting one: the notice arrives while the workflow closes the order, so the workflow
    // itself records it after the close (drainLateNotices) and flags PAID_AFTER_CLOSE.
    name: 'paid-after-close-running',
    async drive(run) {
      run.gateway.onClose(run.orderId, async () => {
        await run.handle.signal(paymentNoticeSignal, run.notice());
      });
    },
    async verify(run, result) {
      expectResult(result, { status: 'CLOSED', discrepancies: ['PAID_AFTER_CLOSE'] });
      check((await run.row()).status === 'CLOSED', 'the order is not CLOSED');
      const kinds = await discrepancyKinds(run);
      check(JSON.stringify(kinds) === '["PAID_AFTER_CLOSE"]', `discrepancies ${kinds.join(',')}`);
    },
  },
  {
    // The plain case: the workflow has ended; the late notice cannot start a second run
    // (REJECT_DUPLICATE) and is handled outside the workflow, as the consumer does.
    name: 'paid-after-close-ended',
    async verify(run, result) {
      expectResult(result, { status: 'CLOSED', discrepancies: [] });
      const row = await run.row();
      const late = run.notice();
      const input = orderWorkflowInput(row, run.config, { pollLadder: LADDER });
      const refused = await run.client.workflow
        .signalWithStart(orderWorkflow, {
          ...orderWorkflowStartOptions(input, run.config.TEMPORAL_TASK_QUEUE),
          signal: paymentNoticeSignal,
          signalArgs: [late],
        })
        .then(
          () => null,
          (error: unknown) => error,
        );
      check(
        refused instanceof WorkflowExecutionAlreadyStartedError,
        `signalWithStart after the close was not refused: ${String(refused)}`,
      );
      await handleNoticeForEndedWorkflow(run.db, row, late);
      check((await run.row()).status === 'CLOSED', 'the order is not CLOSED');
      const kinds = await discrepancyKinds(run);
      check(JSON.stringify(kinds) === '["PAID_AFTER_CLOSE"]', `discrepancies ${kinds.join(',')}`);
    },
  },
  {
    // Check 1 fails all 3 attempts (the activity retries 1 s, then 2 s apart); check 2 fails twice, then
    // the provider is back and says paid.
    name: 'provider-outage-then-back',
    script: { downForCalls: 5, paidFromQuery: 6 },
    payWithinMs: 15_000,
    async verify(run, result) {
      expectResult(result, { status: 'PAID', settledBy: 'poll', pollAttempts: 2 });
      check(run.gateway.queryCount(run.orderId) === 6, `${run.gateway.queryCount(run.orderId)} queries`);
    },
  },
  {
    name: 'payment-initiated-restarts-ladder',
    script: { paidFromQuery: 100 },
    ladder: { stepsMs: [1_000, 1_000, 1_000], repeatMs: 6_000 },
    payWithinMs: 15_000,
    async drive(run) {
      // After 3 checks the ladder is at its 6 s repeat step; "payment initiated" brings it back to 1 s.
      await eventually('3 ladder checks', async () => {
        const state = await run.handle.query(orderStateQuery);
        return state.pollAttempts >= 3 && state.ladderStep === 3 ? state : undefined;
      });
      const signalledAt = Date.now();
      await run.handle.signal(paymentInitiatedSignal);
      await eventually('the ladder to restart', async () => {
        const state = await run.handle.query(orderStateQuery);
        return state.ladderStep === 0 ? state : undefined;
      });
      // pollAttempts counts a check when it starts, ladderStep moves on when it has answered.
      const restarted = await eventually('the 4th check', async () => {
        const state = await run.handle.query(orderStateQuery);
        return state.pollAttempts >= 4 && state.ladderStep > 0 ? state : undefined;
      });
      check(restarted.ladderStep === 1, `ladder step ${restarted.ladderStep} after the restart`);
      const after = Date.now() - signalledAt;
      check(after < 4_000, `the first check after the restart came ${after} ms after the signal`);
      await run.handle.signal(paymentNoticeSignal, run.notice());
    },
    async verify(_run, result) {
      expectResult(result, { status: 'PAID', settledBy: 'mq', pollAttempts: 4 });
    },
  },
  {
    // A small history limit and bursts of one duplicated notice: the workflow continues as new (the
    // server may also fail a task whose continue-as-new races a signal), then a fresh notice pays it.
    name: 'continue-as-new-duplicate-flood',
    ladder: { stepsMs: [15_000], repeatMs: 15_000 },
    payWithinMs: 20_000,
    historyLimit: 40,
    async drive(run) {
      const duplicate = run.notice({ status: 'WAIT_BUYER_PAY' });
      for (let burst = 0; burst < 3; burst++) {
        await Promise.all(
          Array.from({ length: 10 }, () => run.handle.signal(paymentNoticeSignal, duplicate)),
        );
        await sleep(300);
      }
      const state = await eventually('a continue-as-new', async () => {
        const s = await run.handle.query(orderStateQuery);
        return s.generation >= 1 ? s : undefined;
      });
      check(state.duplicateNotices > 0, 'no duplicates were counted');
      await run.handle.signal(paymentNoticeSignal, run.notice());
    },
    async verify(_run, result) {
      expectResult(result, { status: 'PAID', settledBy: 'mq', pollAttempts: 0 });
    },
  },
];

/** Every run of a workflow id, first to last, following continue-as-new back from the latest run. */
async function fetchChain(client: Client, workflowId: string): Promise<History[]> {
  const runs: History[] = [];
  let runId: string | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    runs.unshift(history);
    runId =
      history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return runs;
}

async function writeFixtures(name: string, runs: History[]): Promise<string[]> {
  const stale = (await readdir(FIXTURES_DIR)).filter((file) =>
    new RegExp(`^${name}(\\.run\\d+)?\\.json$`).test(file),
  );
  await Promise.all(stale.map((file) => rm(path.join(FIXTURES_DIR, file))));
  const files = runs.map((_, i) => (runs.length === 1 ? `${name}.json` : `${name}.run${i + 1}.json`));
  await Promise.all(
    runs.map((history, i) =>
      writeFile(path.join(FIXTURES_DIR, files[i] as string), `${historyToJson(history)}\n`),
    ),
  );
  return files;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const scenario of SCENARIOS) console.log(scenario.name);
    return;
  }
  const unknown = args.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; see --list`);
  const selected = args.length > 0 ? SCENARIOS.filter((s) => args.includes(s.name)) : SCENARIOS;

  const suffix = randomBytes(4).toString('hex');
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/payrecon_test',
    TEMPORAL_TASK_QUEUE: `payrecon-histories-${suffix}`,
    LOG_LEVEL: 'warn',
  });
  // The scripted outage makes the SDK log every failed attempt; scenario checks report what matters.
  installWorkerRuntime('ERROR');
  await mkdir(FIXTURES_DIR, { recursive: true });
  const database = createDatabase(config.DATABASE_URL, { max: 5 });
  const client = await connectTemporal(config);
  const gateway = new RecordingGateway();
  const { worker, run: runWorker } = await createOrderWorker({ config, gateway });
  const workerRun = runWorker();
  console.log(
    `recording ${selected.length} scenario(s) on ${config.TEMPORAL_ADDRESS}, task queue ${config.TEMPORAL_TASK_QUEUE}`,
  );

  // A worker's first workflow tasks load the workflow bundle (seconds on a cold machine): warm it up
  // so that the millisecond ladders below run on time.
  await Promise.all(
    [1, 2, 3, 4].map(async (i) => {
      const orderId = `hist-warmup${i}-${suffix}`;
      const row = await insertOrder(database.db, {
        id: orderId,
        amount: AMOUNT,
        currency: 'CNY',
        payDeadline: new Date(Date.now() + 60_000),
      });
      const input = orderWorkflowInput(row, config, { pollLadder: SIGNAL_FIRST_LADDER });
      const handle = await client.workflow.start(
        orderWorkflow,
        orderWorkflowStartOptions(input, config.TEMPORAL_TASK_QUEUE),
      );
      await handle.signal(cancelOrderSignal, { reason: 'WARM_UP' });
      await handle.result();
    }),
  );

  const started = Date.now();
  const outcomes = await Promise.allSettled(
    selected.map(async (scenario) => {
      const t0 = Date.now();
      const orderId = `hist-${scenario.name}-${suffix}`;
      const row = await insertOrder(database.db, {
        id: orderId,
        amount: AMOUNT,
        currency: 'CNY',
        payDeadline: new Date(Date.now() + (scenario.payWithinMs ?? PAY_WINDOW_MS)),
      });
      gateway.script(orderId, { amount: AMOUNT, ...scenario.script });
      const input = {
        ...orderWorkflowInput(row, config, { pollLadder: scenario.ladder ?? LADDER }),
        ...(scenario.historyLimit ? { historyLimit: scenario.historyLimit } : {}),
      };
      const handle = await client.workflow.start(
        orderWorkflow,
        orderWorkflowStartOptions(input, config.TEMPORAL_TASK_QUEUE),
      );
      const run: Run = {
        orderId,
        handle,
        client,
        db: database.db,
        sql: database.sql,
        gateway,
        config,
        notice: (overrides = {}) => paidNotice(orderId, AMOUNT, overrides),
        async row() {
          const current = await findOrder(database.db, orderId);
          if (!current) throw new Error(`order ${orderId} disappeared`);
          return current;
        },
      };
      await scenario.drive?.(run);
      const result = await handle.result();
      await scenario.verify(run, result);
      const runs = await fetchChain(client, handle.workflowId);
      if (scenario.name.startsWith('continue-as-new')) check(runs.length >= 2, 'no continue-as-new happened');
      const files = await writeFixtures(scenario.name, runs);
      const events = runs.map((h) => h.events?.length ?? 0).join('+');
      return `${scenario.name}: ${result.status} in ${Date.now() - t0} ms, ${events} events -> ${files.join(', ')}`;
    }),
  );

  worker.shutdown();
  await workerRun;
  await client.connection.close();
  await database.close();

  let failed = 0;
  outcomes.forEach((outcome, i) => {
    if (outcome.status === 'fulfilled') {
      console.log(`  ok    ${outcome.value}`);
    } else {
      failed++;
      const reason = outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason);
      console.log(`  FAIL  ${selected[i]?.name}: ${reason}`);
    }
  });
  console.log(`${selected.length - failed}/${selected.length} recorded in ${Date.now() - started} ms`);
  if (failed > 0) {
    console.log('failed scenarios kept their previous fixtures');
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`record-histories failed: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  });
}
