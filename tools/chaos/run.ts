import { closeSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createDatabase, redactUrl } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { countOrdersByStatus, findOrders, findPaymentEvents } from '../../src/db/orders';
import { orderWorkflowId } from '../../src/domain';
import { readParkedAt } from '../../src/mq/parking';
import { topologyFor } from '../../src/mq/topology';
import { refundWorkflowId } from '../../src/order/refund';
import { createOrder } from '../../src/order/start';
import { loadConfig } from '../../src/platform/config';
import { connectTemporal } from '../../src/platform/temporal';
import { HttpPaymentGateway } from '../../src/provider/http';
import { deliveryWorkflowId } from '../../workflows/notify-merchant';
import type { ReconciliationSummary } from '../../workflows/reconciliation';
import { MerchantClient } from '../merchant/client';
import { freePort } from '../net';
import { SCENARIOS } from '../scenarios';
import { type PaymentReply, type PayOptions, SimulatorClient, SimulatorHttpError } from '../simulator/client';
import {
  type CheckResult,
  checkDiscrepancies,
  checkFinalStates,
  checkLifecycleRouting,
  checkMerchantDeliveries,
  checkMerchantEvents,
  checkMessageRouting,
  checkMessages,
  checkPlanCarriedOut,
  checkReconciliation,
  checkRefundMoney,
  checkRefundPlans,
  checkReplay,
  checkSettledBy,
  checkSingleTransition,
  faultMixSummary,
  type MessageAccounting,
  type OrderRowLite,
  type PlannedOrder,
  type PublishedMessage,
  type RefundEvidence,
  type RefundRecord,
  type WorkflowEvidence,
} from './checks';
import { allMembersOnline, type ChaosCluster, type ClusterQueue, checkClusterQueues } from './cluster';
import {
  type History,
  historyOf,
  mapLimit,
  notificationHistory,
  queueDepths,
  rabbitmqctl,
  readLifecycleRows,
  readRows,
  refundEvidence,
  refundNoticesFromLog,
  replayHistories,
  resetQueues,
  sample,
  sleep,
  terminateLeftovers,
  waitUntilServing,
  workflowEvidence,
} from './evidence';
import {
  type BreakRow,
  billDateIsFree,
  type ChaosShop,
  chaosPublisher,
  createShops,
  Fleet,
  type FleetProcess,
  merchantCall,
  moveRefundsOntoDay,
  type PlantedStatement,
  plantStatementFaults,
  readBreaks,
  recoverShops,
  runReconciliation,
  runRefunds,
} from './lifecycle';
import {
  candidateBillDate,
  type Disruption,
  expectedStatus,
  planDisruptions,
  planOrders,
  REFUND_SCENARIOS,
  type RefundKind,
  SHOPS,
  type ShopName,
  seededRandom,
} from './plan';

const ROOT = path.resolve(__dirname, '..', '..');

export interface ChaosOptions {
  orders: number;
  seed: number;
  killsWorker: number;
  killsConsumer: number;
  /** Times a worker SIGKILLs itself inside applyRefund, after its commit. */
  killsInRefund: number;
  brokerRestarts: number;
  /** --cluster: times the node leading the pay-success quorum queue is stopped, then started again. */
  leaderStops: number;
  payWithinMs: number;
  ladder: { stepsMs: number[]; repeatMs: number };
  /** Orders created per second. */
  rate: number;
  /** How long to wait, after every order settled, for queues to drain and workflows to finish. */
  drainTimeoutMs: number;
  /** Fetch, check and replay the workflow history of at most this many orders (all by default). */
  historyLimit: number;
  /** Workers and consumers, each this many processes on the same task queue and queue. */
  processes: number;
  /** Times the merchant simulator refuses every connection for 3 s. */
  merchantRefusals: number;
  /** Late buyers pay as soon as the order row is CLOSED, before its workflow ended. */
  lateRace: boolean;
  /** Orders at the `down` shop, whose events end EXHAUSTED 130 s later. */
  exhaust: boolean;
  /** --cluster: the three-node cluster every process and check of the run uses (AMQP_URL: its URLs). */
  cluster: { handle: ChaosCluster; urls: string; startedHere: boolean } | null;
  /** Where the service processes' logs go. */
  logFile: string;
  log: (line: string) => void;
  signal?: AbortSignal;
}

/** Where a chaos run lives, away from dev and test data: its own database, broker prefix, task queue. */
export interface ChaosEnvironment {
  databaseUrl: string;
  amqpPrefix: string;
  taskQueue: string;
  /** 0: pick a free port. */
  simulatorPort: number;
  rabbitmqctl: string;
}

/** CHAOS_DATABASE_URL (default: DATABASE_URL's server, database payrecon_chaos), CHAOS_AMQP_PREFIX, ... */
export function chaosEnvironment(env: NodeJS.ProcessEnv = process.env): ChaosEnvironment {
  const base = loadConfig(env);
  const url = new URL(base.DATABASE_URL);
  url.pathname = '/payrecon_chaos';
  return {
    databaseUrl: env.CHAOS_DATABASE_URL || url.toString(),
    amqpPrefix: env.CHAOS_AMQP_PREFIX || 'payrecon-chaos',
    taskQueue: env.CHAOS_TASK_QUEUE || 'payrecon-chaos',
    simulatorPort: Number(env.CHAOS_SIMULATOR_PORT || 0),
    rabbitmqctl: env.RABBITMQCTL || '/usr/sbin/rabbitmqctl',
  };
}

export interface DisruptionRecord extends Disruption {
  /** When it actually started, after the start of the run. */
  startedAtMs: number;
  /** How long the process or broker was really gone (kill to restart, stop_app to await_startup). */
  outageMs: number;
  detail: string;
  error?: string;
}

export interface ChaosReport {
  startedAt: string;
  durationMs: number;
  ordersPerSecond: number;
  options: Omit<ChaosOptions, 'log' | 'signal' | 'cluster'> & { cluster: boolean };
  /** --cluster: its nodes, whether the run started it, and the prefix's queues at the end (rabbitmqctl). */
  cluster: {
    nodes: string[];
    urls: string;
    startedHere: boolean;
    queuesAtEnd: ClusterQueue[];
  } | null;
  environment: ChaosEnvironment;
  phases: {
    createMs: number;
    settleMs: number;
    drainMs: number;
    reconMs: number;
    collectMs: number;
    replayMs: number;
  };
  disruptions: DisruptionRecord[];
  unplannedExits: string[];
  faultMix: ReturnType<typeof faultMixSummary>;
  refundMix: { kind: RefundKind; orders: number; what: string; final: string; asExpected: number }[];
  shops: {
    shop: ShopName;
    what: string;
    orders: number;
    events: number;
    delivered: number;
    exhausted: number;
    attemptsMax: number;
    attemptsMean: number;
  }[];
  /** The merchant events that ended EXHAUSTED (the down shop's), listed. */
  exhaustedEvents: string[];
  reconciliation: {
    billDate: string;
    provider: string;
    workflowId: string | null;
    planted: PlantedStatement['expected'];
    found: BreakRow[];
    summary: Pick<
      ReconciliationSummary,
      'status' | 'totalBreaks' | 'matchedPayments' | 'theirs' | 'ours'
    > | null;
    refundsMoved: { provider: number; ours: number };
  };
  finalStates: Record<string, number>;
  settledBy: Record<string, number>;
  messages: MessageAccounting;
  checks: CheckResult[];
  violations: number;
}

export async function runChaos(options: ChaosOptions, environment: ChaosEnvironment): Promise<ChaosReport> {
  const { log, signal } = options;
  const startedAt = new Date();
  const t0 = Date.now();
  const since = () => Date.now() - t0;
  const runTag = startedAt.getTime().toString(36);

  const simulatorPort = environment.simulatorPort || (await freePort());
  const merchantPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: environment.databaseUrl,
    AMQP_PREFIX: environment.amqpPrefix,
    TEMPORAL_TASK_QUEUE: environment.taskQueue,
    SIMULATOR_PORT: String(simulatorPort),
    SIMULATOR_HOST: '127.0.0.1',
    SIMULATOR_FAULTS: '{}',
    PROVIDER_URL: `http://127.0.0.1:${simulatorPort}`,
    MERCHANT_PORT: String(merchantPort),
    MERCHANT_HOST: '127.0.0.1',
    // The merchant simulator is on this machine: the SSRF guard must let the worker reach it.
    MERCHANT_PRIVATE_ALLOWLIST: '127.0.0.1/32',
    MERCHANT_FAULTS: '{}',
    CONSUMER_RETRY_DELAY: '2s',
    POLL_LADDER: options.ladder.stepsMs.join(','),
    POLL_REPEAT: String(options.ladder.repeatMs),
    PAY_DEADLINE: String(options.payWithinMs),
    // The file that arms tools/chaos/worker.ts's kill inside applyRefund (it exists only while armed).
    CHAOS_KILL_IN_APPLY_REFUND: path.join(
      os.tmpdir(),
      `payrecon-chaos-kill-in-refund-${runTag}-${process.pid}`,
    ),
    // A short refund ladder, so a refund the provider keeps PROCESSING is queried within the run.
    REFUND_LADDER: '2s,4s,8s',
    REFUND_REPEAT: '8s',
    REFUND_DEADLINE: '10m',
    RECON_PROVIDER: 'simulator-chaos',
    RECON_HEAL_WAIT: '20s',
    LOG_LEVEL: 'info',
    // --cluster: every process (consumers, workers, the simulator's publisher) and the driver get all nodes.
    ...(options.cluster ? { AMQP_URL: options.cluster.urls } : {}),
  };
  const config = loadConfig({ ...process.env, ...env });

  log(
    `database ${redactUrl(config.DATABASE_URL)}, RabbitMQ prefix ${config.AMQP_PREFIX}, task queue ${config.TEMPORAL_TASK_QUEUE}`,
  );
  await migrateDatabase(config.DATABASE_URL);
  await resetQueues(config);
  const database = createDatabase(config.DATABASE_URL, { max: 8 });
  const temporal = await connectTemporal(config);
  await terminateLeftovers(temporal, config.TEMPORAL_TASK_QUEUE, log);

  mkdirSync(path.dirname(options.logFile), { recursive: true });
  const logFd = openSync(options.logFile, 'a');
  const simulatorLog = options.logFile.replace(/\.log$/, '-simulator.log');
  const simulatorFd = openSync(simulatorLog, 'a');
  const unplannedExits: string[] = [];
  const driverErrors: string[] = [];
  /** While a kill inside applyRefund is armed: told which worker died. */
  let inRefundKill: ((name: FleetProcess) => void) | null = null;
  let stopped = false;
  const fleet = new Fleet({
    env,
    logFd,
    simulatorFd,
    processes: options.processes,
    metricsPort: freePort,
    // Recorded (a violation) and restarted, so the run still ends with the evidence of what followed.
    onUnplannedExit: (name, code) => {
      if (stopped) return;
      // The kill inside applyRefund the run armed: planned, restarted by its disruption.
      if (inRefundKill && name.startsWith('worker-')) {
        inRefundKill(name);
        inRefundKill = null;
        return;
      }
      unplannedExits.push(`${name} exited on its own with code ${code} at ${Math.round(since() / 1000)}s`);
      log(
        `!! ${name} exited on its own (code ${code}); restarting it. See ${path.relative(process.cwd(), options.logFile)}`,
      );
      fleet.restart(name).catch(() => {});
    },
  });
  await fleet.start();
  log(
    `service started (simulator :${simulatorPort}, merchant :${merchantPort}, ${options.processes} workers, ${options.processes} consumers; ` +
      `logs ${path.relative(process.cwd(), options.logFile)})`,
  );

  const simulator = new SimulatorClient(config.PROVIDER_URL, { timeoutMs: 60_000 });
  const merchant = new MerchantClient(`http://127.0.0.1:${merchantPort}`, { timeoutMs: 30_000 });
  const gateway = new HttpPaymentGateway({ baseUrl: config.PROVIDER_URL, timeoutMs: 60_000 });
  const publisher = chaosPublisher(config);
  const published: PublishedMessage[] = [];
  const unconfirmed = new Set<string>();
  const disruptionRecords: DisruptionRecord[] = [];
  const payTimers = new Set<NodeJS.Timeout>();
  let disruptionsFinished: Promise<void> = Promise.resolve();
  let brokerDown = false;
  const phases = { createMs: 0, settleMs: 0, drainMs: 0, reconMs: 0, collectMs: 0, replayMs: 0 };

  try {
    await simulator.waitUntilUp(60_000, signal);
    await merchant.waitUntilUp(60_000, signal);
    // The run's own day in the past (the simulator has migrated its schema by now): the next free one
    // from a candidate of the run's start and seed.
    let billDate = candidateBillDate(startedAt.getTime(), options.seed);
    for (let i = 0; i < 100 && !(await billDateIsFree(database.sql, config.RECON_PROVIDER, billDate)); i++) {
      billDate = candidateBillDate(startedAt.getTime() + (i + 1) * 60_000, options.seed);
    }
    log(`bill date ${billDate}: this run's payments are "on" it, its statement holds them only`);
    const shops = await createShops(database.db, merchant, runTag);
    const shopOf = (name: ShopName) => shops.get(name) as ChaosShop;

    const payWindowMs = Math.min(20_000, Math.floor(options.payWithinMs / 3));
    const plans = planOrders({
      orders: options.orders,
      seed: options.seed,
      payWindowMs,
      billDate,
      exhaust: options.exhaust,
    });
    const createMsPlanned = (options.orders / options.rate) * 1000;
    const windowMs = createMsPlanned + options.payWithinMs;
    // With two or more worker kills, the last one hits the day's reconciliation.
    const reconKill = options.killsWorker >= 2;
    const disruptions = planDisruptions({
      seed: options.seed,
      windowMs,
      killsWorker: options.killsWorker - (reconKill ? 1 : 0),
      killsConsumer: options.killsConsumer,
      brokerRestarts: options.brokerRestarts,
      merchantRefusals: options.merchantRefusals,
      leaderStops: options.cluster ? options.leaderStops : 0,
      processes: options.processes,
      killsInRefund: options.killsInRefund,
    });
    log(
      `${options.orders} orders at ${options.rate}/s, pay deadline ${options.payWithinMs / 1000}s, ladder ${options.ladder.stepsMs.map((s) => `${s / 1000}s`).join(',')} then every ${options.ladder.repeatMs / 1000}s; ` +
        `${plans.filter((p) => p.refund).length} with refunds; disruptions at ${disruptions.map((d) => `${d.kind}${d.target ? `-${d.target}` : ''}@${Math.round(d.atMs / 1000)}s`).join(', ') || 'none'}` +
        `${reconKill ? ', kill-worker during the reconciliation' : ''}`,
    );

    const planned: PlannedOrder[] = [];
    let paysMade = 0;
    let paysResolved = 0;
    const paid = (orderId: string, reply: PaymentReply) => {
      paysMade++;
      const { messageId, outcome, copies } = reply.notification;
      if (outcome === 'published' && copies > 0) published.push({ orderId, messageId, copies });
    };
    const payFailed = (orderId: string, what: string, error: Error) => {
      const trade =
        error instanceof SimulatorHttpError && error.status === 502
          ? (error.body.trade as { status?: string } | undefined)
          : undefined;
      if (trade?.status === 'TRADE_SUCCESS') {
        // The payment went through but the broker did not confirm its notification in time (the broker
        // restart): the provider's problem, not payrecon's. The message may still have reached the
        // broker; it then shows up among the ids the simulator did not report.
        paysMade++;
        unconfirmed.add(orderId);
        log(`  ${orderId}: ${what}: paid, notification not confirmed by the broker (HTTP 502)`);
        return;
      }
      driverErrors.push(`${orderId}: ${what} failed: ${error.message}`);
    };
    const pay = (orderId: string, payOptions: PayOptions, what: string) => {
      simulator
        .pay(orderId, payOptions)
        .then(
          (reply) => paid(orderId, reply),
          (error: Error) => payFailed(orderId, what, error),
        )
        .finally(() => {
          paysResolved++;
        });
    };

    // --- the disruptions, on their own timeline --------------------------------------------------
    // The run's clock (disruption times, the report) starts with the first order.
    const createStarted = Date.now();
    const atRun = () => Date.now() - createStarted;
    // --cluster: the node leading pay-success stopped mid-stream (the script's stop-node: rabbitmqctl stop,
    // the VM exits), down for downMs, started again (start-node: it rejoins as a follower), then every
    // quorum member online again. Whichever node leads is stopped, also when it is the classic parking
    // queue's home node: parks during the outage are returned by the broker and retried (the consumer).
    const stopLeader = async (record: DisruptionRecord, downMs: number) => {
      const cluster = options.cluster?.handle;
      if (!cluster) throw new Error('stop-leader needs --cluster');
      const prefix = config.AMQP_PREFIX;
      const names = topologyFor(prefix, config.CONSUMER_RETRY_DELAY);
      const before = await cluster.queues(prefix);
      const leader = before.find((q) => q.name === names.paySuccessQueue)?.node;
      const parkingHome = before.find((q) => q.name === names.parkingQueue)?.node ?? null;
      if (!leader) throw new Error(`no leader of ${names.paySuccessQueue} on the cluster`);
      const where =
        parkingHome === leader
          ? "also the parking queue's home node"
          : `parking queue on node ${parkingHome}`;
      log(
        `>> RabbitMQ cluster: stop node ${leader} (leads ${names.paySuccessQueue}; ${where}), down ~${downMs / 1000}s`,
      );
      brokerDown = true;
      let newLeader: number | null = null;
      try {
        await cluster.stopNode(leader);
        const elected = await cluster.waitFor(
          prefix,
          (qs) => {
            const q = qs.find((x) => x.name === names.paySuccessQueue);
            return q?.node !== undefined && q.node !== null && q.node !== leader;
          },
          30_000,
        );
        newLeader = elected.queues.find((q) => q.name === names.paySuccessQueue)?.node ?? null;
        await sleep(downMs, signal);
      } finally {
        await cluster.startNode(leader);
        brokerDown = false;
      }
      const back = await cluster.waitFor(prefix, allMembersOnline, 60_000);
      record.outageMs = atRun() - record.startedAtMs;
      record.target = leader;
      record.detail =
        `node ${leader} stopped (led ${names.paySuccessQueue}; ${where}), new leader node ${newLeader ?? 'none within 30s'}, ` +
        `started again; quorum members ${back.ok ? 'all online' : 'NOT all online after 60s'}`;
      if (!back.ok)
        driverErrors.push(`after node ${leader} came back not every quorum member was online within 60s`);
      log(
        `<< RabbitMQ node ${leader} back after ${(record.outageMs / 1000).toFixed(1)}s (new leader was node ${newLeader})`,
      );
    };
    /**
     * Arms tools/chaos/worker.ts's hook: the next applyRefund to commit kills its worker before the reply
     * reaches the workflow, which then runs applyRefund again over its own write. Waits for a refund to
     * settle (up to 120 s), restarts that worker like a planned kill.
     */
    const killInRefund = async (record: DisruptionRecord, downMs: number) => {
      const armed = String(env.CHAOS_KILL_IN_APPLY_REFUND);
      const died = new Promise<FleetProcess>((resolve) => {
        inRefundKill = resolve;
      });
      writeFileSync(armed, `${record.startedAtMs}\n`);
      log('>> armed: the next applyRefund kills its worker after the commit');
      const name = await Promise.race([died, sleep(120_000, signal).then(() => null)]);
      if (!name) {
        inRefundKill = null;
        rmSync(armed, { force: true });
        throw new Error('no refund was applied within 120 s of arming the kill');
      }
      record.target = Number(name.replace(/^worker-/, ''));
      await sleep(downMs, signal);
      const newPid = await fleet.restart(name);
      const serving = await waitUntilServing('worker', newPid, {
        config,
        temporal,
        signal,
        consumers: options.processes,
      });
      record.outageMs = atRun() - record.startedAtMs;
      record.detail = `${name} killed itself inside applyRefund after its commit; pid ${newPid} ${serving ? 'serving' : 'NOT serving after 90s'}`;
      log(`<< ${name} back after the kill inside applyRefund`);
      if (!serving) driverErrors.push(`${name} pid ${newPid} did not serve within 90s of its restart`);
    };
    const disrupt = async (disruption: Disruption) => {
      const startedAtMs = atRun();
      const record: DisruptionRecord = { ...disruption, startedAtMs, outageMs: 0, detail: '' };
      disruptionRecords.push(record);
      try {
        if (disruption.kind === 'restart-broker') {
          log(`>> RabbitMQ: stop_app (down ~${disruption.downMs / 1000}s)`);
          brokerDown = true;
          try {
            await rabbitmqctl(environment.rabbitmqctl, ['stop_app']);
            await sleep(disruption.downMs, signal);
          } finally {
            await rabbitmqctl(environment.rabbitmqctl, ['start_app']);
            await rabbitmqctl(environment.rabbitmqctl, ['await_startup']);
            brokerDown = false;
          }
          record.outageMs = atRun() - startedAtMs;
          record.detail = 'rabbitmqctl stop_app, start_app, await_startup';
          log(`<< RabbitMQ back after ${(record.outageMs / 1000).toFixed(1)}s`);
        } else if (disruption.kind === 'stop-leader') {
          await stopLeader(record, disruption.downMs);
        } else if (disruption.kind === 'refuse-merchant') {
          log(`>> merchant simulator refuses connections for ${disruption.downMs / 1000}s`);
          await merchant.refuseConnections(disruption.downMs);
          await sleep(disruption.downMs, signal);
          record.outageMs = disruption.downMs;
          record.detail = 'every shop: connection refused';
        } else if (disruption.kind === 'kill-worker-in-refund') {
          await killInRefund(record, disruption.downMs);
        } else {
          const base = disruption.kind === 'kill-worker' ? 'worker' : 'consumer';
          const name = `${base}-${disruption.target}` as FleetProcess;
          const pid = fleet.pid(name);
          await fleet.kill(name);
          log(`>> SIGKILL ${name} (pid ${pid}); restart in ${(disruption.downMs / 1000).toFixed(1)}s`);
          await sleep(disruption.downMs, signal);
          const newPid = await fleet.restart(name);
          const serving = await waitUntilServing(base, newPid, {
            config,
            temporal,
            signal,
            consumers: options.processes,
          });
          record.outageMs = atRun() - startedAtMs;
          record.detail = `${name}: pid ${pid} killed, pid ${newPid} ${serving ? 'serving' : 'NOT serving after 90s'}`;
          if (!serving) driverErrors.push(`${name} pid ${newPid} did not serve within 90s of its restart`);
        }
      } catch (error) {
        record.error = (error as Error).message;
        driverErrors.push(`${disruption.kind} at ${Math.round(startedAtMs / 1000)}s failed: ${record.error}`);
        if (signal?.aborted) throw error;
      }
    };
    const disrupting = (async () => {
      for (const disruption of disruptions) {
        await sleep(Math.max(0, disruption.atMs - atRun()), signal);
        await disrupt(disruption);
      }
    })();
    let disruptionsDone = false;
    disruptionsFinished = disrupting.then(
      () => {
        disruptionsDone = true;
      },
      (error: Error) => {
        disruptionsDone = true;
        driverErrors.push(`disruptions stopped: ${error.message}`);
      },
    );

    // --- the watcher: late payments, refunds once PAID, shops that recover; progress -------------
    const late = new Set<string>();
    let lateTotal = 0;
    const refundWaiting = new Map<string, PlannedOrder>();
    const refundTasks = new Set<Promise<void>>();
    const refundRecords: RefundRecord[] = [];
    const refundNth: Partial<Record<RefundKind, number>> = {};
    const recovering = new Map<string, PlannedOrder>();
    let recovered = 0;
    let watching = true;
    let counts: Record<string, number> = {};
    const progress = () => {
      const settled = planned.length - (counts.UNPAID ?? 0);
      return (
        `  ${Math.round(atRun() / 1000)}s: created ${planned.length}/${plans.length}, settled ${settled} ` +
        `(PAID ${counts.PAID ?? 0}, CLOSED ${counts.CLOSED ?? 0}, NEEDS_REVIEW ${counts.NEEDS_REVIEW ?? 0}, ` +
        `PARTIALLY_REFUNDED ${counts.PARTIALLY_REFUNDED ?? 0}, REFUNDED ${counts.REFUNDED ?? 0}), ` +
        `payments ${paysMade} (${lateTotal - late.size}/${lateTotal} after close), refunds done ${refundRecords.length}, ` +
        `disruptions ${disruptionRecords.length}/${disruptions.length}${brokerDown ? ', broker down' : ''}`
      );
    };
    const startRefunds = (plan: PlannedOrder) => {
      const kind = plan.refund as RefundKind;
      const nth = refundNth[kind] ?? 0;
      refundNth[kind] = nth + 1;
      const original =
        SCENARIOS[plan.kind].message === 'recorded' && !unconfirmed.has(plan.orderId)
          ? (published.find((m) => m.orderId === plan.orderId)?.messageId ?? null)
          : null;
      const task = runRefunds(
        { db: database.db, temporal, config, simulator, publisher, signal },
        plan,
        nth,
        original,
      ).then((record) => {
        refundRecords.push(record);
      });
      refundTasks.add(task);
      task.finally(() => refundTasks.delete(task));
    };
    const watcher = (async () => {
      let lastProgress = Date.now();
      while (watching && !stopped) {
        try {
          if (late.size > 0) {
            for (const { id, status } of await findOrders(database.db, [...late])) {
              if (status !== 'CLOSED') continue;
              // Once the order's workflow has ended (its notification then takes the ended-workflow
              // path), or, with --late-race, as soon as the row is CLOSED, while the workflow still
              // starts the merchant notification: the window of the bug in the README's chaos section.
              if (!options.lateRace) {
                const { status: run } = await temporal.workflow.getHandle(orderWorkflowId(id)).describe();
                if (run.name === 'RUNNING') continue;
              }
              late.delete(id);
              pay(id, { force: true, faults: {} }, 'pay after close');
            }
          }
          if (refundWaiting.size > 0) {
            for (const { id, status } of await findOrders(database.db, [...refundWaiting.keys()])) {
              const plan = refundWaiting.get(id);
              if (!plan || status !== 'PAID') continue;
              refundWaiting.delete(id);
              startRefunds(plan);
            }
          }
          recovered += await recoverShops(database.db, merchant, recovering);
          counts = await countOrdersByStatus(
            database.db,
            planned.map((p) => p.orderId),
          );
        } catch (error) {
          log(`  watcher: ${(error as Error).message}`);
        }
        if (Date.now() - lastProgress >= 10_000) {
          lastProgress = Date.now();
          log(progress());
        }
        await sleep(500);
      }
    })();

    // --- create the orders, paced; schedule each buyer -------------------------------------------
    const inFlight = new Set<Promise<void>>();
    for (const plan of plans) {
      signal?.throwIfAborted();
      const due = createStarted + (plan.index / options.rate) * 1000;
      if (due > Date.now()) await sleep(due - Date.now(), signal);
      while (inFlight.size >= 4) await Promise.race(inFlight);
      const creating = (async () => {
        try {
          // payrecon opens the trade at the provider, as a shop does, and keeps its number.
          const { order, trade, tradeError } = await createOrder(
            { db: database.db, client: temporal, config, gateway },
            {
              amount: plan.amount,
              currency: 'CNY',
              payWithinMs: options.payWithinMs,
              pollLadder: options.ladder,
              notifyEndpointId: shopOf(plan.shop).endpointId,
            },
          );
          if (!trade) throw new Error(`the simulator did not open the trade of ${order.id}: ${tradeError}`);
          const faults = SHOPS[plan.shop].faults;
          // Before the buyer pays: the order's first event must meet its shop's answers.
          if (Object.keys(faults).length > 0)
            await merchantCall(() => merchant.setOrderFaults(order.id, faults), signal);
          const entry = { ...plan, orderId: order.id };
          planned.push(entry);
          if (SHOPS[plan.shop].recovers) recovering.set(order.id, entry);
          if (plan.refund) refundWaiting.set(order.id, entry);
          if (SCENARIOS[plan.kind].pays === 'after-close') {
            late.add(order.id);
            lateTotal++;
          }
          if (plan.payAfterMs !== null && plan.faults) {
            const payOptions: PayOptions = {
              faults: plan.faults,
              ...(plan.paidAt ? { paidAt: plan.paidAt } : {}),
            };
            payTimers.add(setTimeout(() => pay(order.id, payOptions, 'pay'), plan.payAfterMs));
          }
        } catch (error) {
          driverErrors.push(`order #${plan.index} (${plan.kind}) not created: ${(error as Error).message}`);
        }
      })();
      inFlight.add(creating);
      creating.finally(() => inFlight.delete(creating));
    }
    await Promise.all(inFlight);
    phases.createMs = Date.now() - createStarted;
    planned.sort((a, b) => a.index - b.index);
    const ids = planned.map((p) => p.orderId);
    const expectedPays = planned.filter((p) => p.payAfterMs !== null).length + lateTotal;
    log(
      `created ${planned.length} orders in ${(phases.createMs / 1000).toFixed(1)}s (${((planned.length / phases.createMs) * 1000).toFixed(1)}/s)`,
    );

    // --- wait until every order settled, every payment was made, every refund ended -------------
    const settleStarted = Date.now();
    const settleDeadline = settleStarted + options.payWithinMs + Math.max(180_000, options.payWithinMs);
    try {
      for (;;) {
        signal?.throwIfAborted();
        const settled = planned.length - ((await countOrdersByStatus(database.db, ids)).UNPAID ?? 0);
        if (
          settled === planned.length &&
          late.size === 0 &&
          paysResolved >= expectedPays &&
          disruptionsDone &&
          refundWaiting.size === 0 &&
          refundTasks.size === 0
        )
          break;
        if (Date.now() > settleDeadline) {
          driverErrors.push(
            `gave up waiting after ${Math.round((Date.now() - settleStarted) / 1000)}s: ${planned.length - settled} orders still UNPAID, ` +
              `${late.size} payments after close not made, ${expectedPays - paysResolved} payments unanswered, ` +
              `${refundWaiting.size + refundTasks.size} orders' refunds not done`,
          );
          break;
        }
        await sleep(500, signal);
      }
    } finally {
      watching = false;
      await watcher;
    }
    await disruptionsFinished;
    await Promise.all(refundTasks);
    phases.settleMs = Date.now() - settleStarted;
    log(
      `all orders and refunds settled ${(phases.settleMs / 1000).toFixed(1)}s after the last order was created`,
    );

    // --- drain: every workflow done (deliveries too), queues empty, every message accounted ----
    const republishedIds = new Set(refundRecords.flatMap((r) => r.republished.map((m) => m.messageId)));
    const expectParked = new Set(
      planned.filter((p) => typeof SCENARIOS[p.kind].message === 'object').map((p) => p.orderId),
    );
    const drain = async (timeoutMs: number) => {
      const started = Date.now();
      for (;;) {
        signal?.throwIfAborted();
        // Shops that recover must go on recovering while the deliveries finish.
        recovered += await recoverShops(database.db, merchant, recovering).catch(() => 0);
        const running = await temporal.workflow.count(
          `TaskQueue="${config.TEMPORAL_TASK_QUEUE}" AND ExecutionStatus="Running"`,
        );
        const depths = await queueDepths(config);
        const recorded = new Set(
          (await findPaymentEvents(database.db, ids))
            .filter((e) => e.source === 'mq')
            .map((e) => e.messageId),
        );
        const unrecordedValid =
          published.filter((m) => !expectParked.has(m.orderId) && !recorded.has(m.messageId)).length +
          [...republishedIds].filter((id) => !recorded.has(id)).length;
        const toPark = published.filter((m) => expectParked.has(m.orderId)).length;
        if (
          running.count === 0 &&
          depths.work === 0 &&
          depths.retry === 0 &&
          unrecordedValid === 0 &&
          depths.parking >= toPark
        ) {
          return;
        }
        if (Date.now() - started > timeoutMs) {
          log(
            `drain timed out: ${running.count} workflows running, work queue ${depths.work}, retry queue ${depths.retry}, ` +
              `${unrecordedValid} valid messages unrecorded, parking ${depths.parking}/${toPark}`,
          );
          return;
        }
        await sleep(1_000, signal);
      }
    };
    const drainStarted = Date.now();
    await drain(options.drainTimeoutMs);
    phases.drainMs = Date.now() - drainStarted;
    log(`drained in ${(phases.drainMs / 1000).toFixed(1)}s (${recovered} orders' shops recovered)`);

    // --- the day's reconciliation, over a statement with planted faults, a worker killed ---------
    const reconStarted = Date.now();
    const refundsMoved = await moveRefundsOntoDay(database.sql, billDate, ids);
    const rows0 = await findOrders(database.db, ids);
    const statusOf = new Map(rows0.map((r) => [r.id, r.status]));
    const pick = seededRandom(options.seed ^ 0x1b873593);
    const paidOnDay = planned
      .filter((p) => p.paidAt && statusOf.get(p.orderId) === 'PAID' && !p.refund)
      .map((p) => ({ id: p.orderId, key: pick() }))
      .sort((a, b) => a.key - b.key)
      .map((p) => p.id);
    const [refundOnDay] = await database.sql<{ out_request_no: string }[]>`
      select out_request_no from refunds where order_id = any(${database.sql.array(ids, 25)}::text[])
        and status = 'SUCCEEDED' order by out_request_no limit 1`;
    const planted = plantStatementFaults(billDate, runTag, paidOnDay, refundOnDay?.out_request_no);
    await simulator.setBillFaults(billDate, planted.faults);
    let reconError: string | null = null;
    let reconResult: Awaited<ReturnType<typeof runReconciliation>> | null = null;
    const reconKilling = reconKill
      ? (async () => {
          // Right after the start: the statement is being fetched and staged (heartbeats: a batch of
          // the killed worker is picked up again within 15 s).
          await sleep(300, signal);
          const workerKills = disruptionRecords.filter((d) => d.kind === 'kill-worker');
          const lastTarget = workerKills[workerKills.length - 1]?.target ?? 0;
          await disrupt({
            kind: 'kill-worker',
            target: (lastTarget % options.processes) + 1,
            atMs: atRun(),
            downMs: 1_500,
          });
        })()
      : Promise.resolve();
    try {
      log(`reconciliation of ${billDate}: ${planted.expected.length} statement faults planted`);
      reconResult = await runReconciliation(temporal, config, billDate, 300_000);
    } catch (error) {
      reconError = `the reconciliation failed: ${(error as Error).message}`;
    }
    await reconKilling;
    const found = await readBreaks(database.sql, config.RECON_PROVIDER, billDate);
    await drain(60_000);
    phases.reconMs = Date.now() - reconStarted;
    log(
      `reconciliation ${reconResult?.summary.status ?? 'FAILED'}: ${found.length} breaks in ${(phases.reconMs / 1000).toFixed(1)}s`,
    );

    // --- collect the evidence with the service stopped, so nothing moves underneath ------------
    const collectStarted = Date.now();
    const depths = await queueDepths(config);
    stopped = true;
    await fleet.stop();
    await publisher.close().catch(() => {});
    const { orders, trades, events, discrepancies } = await readRows(database.db, ids);
    const lifecycle = await readLifecycleRows(database.db, ids);
    const parked = await readParkedAt(
      config.AMQP_URL,
      topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY),
    );
    const refundNotices = refundNoticesFromLog(simulatorLog);
    // --cluster: the queues as the cluster holds them, after the parking queue was read (and given back).
    const clusterAtEnd = options.cluster
      ? {
          running: await options.cluster.handle.running(),
          queues: await options.cluster.handle.queues(config.AMQP_PREFIX),
        }
      : null;
    const fetchErrors: string[] = [];
    const histories: { workflowId: string; history: History }[] = [];
    const historyOrders = sample(ids, options.historyLimit);
    const evidence = await mapLimit(historyOrders, 8, (id) =>
      workflowEvidence(temporal, id).then(
        ({ history, ...rest }): WorkflowEvidence => {
          histories.push({ workflowId: orderWorkflowId(id), history });
          return rest;
        },
        (error: Error): WorkflowEvidence => ({
          orderId: id,
          execution: `UNREADABLE (${error.message})`,
          resultStatus: null,
          transitions: [],
        }),
      ),
    );
    const workflows = new Map(evidence.map((e) => [e.orderId, e]));
    const refundHistories: RefundEvidence[] = [];
    await mapLimit(lifecycle.refunds, 8, async (refund) => {
      try {
        const { history, ...rest } = await refundEvidence(temporal, refund);
        histories.push({ workflowId: refundWorkflowId(refund.id), history });
        refundHistories.push(rest);
      } catch (error) {
        fetchErrors.push(`refund-${refund.id}: history not readable: ${(error as Error).message}`);
      }
    });
    // One delivery workflow per order (notify-order-<orderId>): a sample of the orders with an endpoint.
    const notificationSample = sample(
      [...new Set(lifecycle.events.filter((e) => e.endpointId).map((e) => e.orderId))],
      options.historyLimit,
    );
    let notificationsNotEnded = 0;
    await mapLimit(notificationSample, 8, async (orderId) => {
      try {
        const { execution, history } = await notificationHistory(temporal, orderId);
        if (execution !== 'COMPLETED') notificationsNotEnded++;
        histories.push({ workflowId: deliveryWorkflowId(orderId), history });
      } catch (error) {
        fetchErrors.push(`${deliveryWorkflowId(orderId)}: history not readable: ${(error as Error).message}`);
      }
    });
    if (reconResult) {
      histories.push({
        workflowId: reconResult.workflowId,
        history: await historyOf(temporal, reconResult.workflowId),
      });
    }
    phases.collectMs = Date.now() - collectStarted;
    const replayStarted = Date.now();
    log(`replaying ${histories.length} workflow histories`);
    const replay = await replayHistories(histories).catch((error: Error) => ({
      replayed: 0,
      failures: [`the replay failed: ${error.message}`],
    }));
    histories.length = 0;
    phases.replayMs = Date.now() - replayStarted;

    // --- check ----------------------------------------------------------------------------------
    // Paid notices: the buyers' (pay replies) and the ones published again after a refund; refund
    // notices (the simulator's log) are checked by their own row, but every message counts.
    const refundMessageIds = new Set(refundNotices.published.map((m) => m.messageId));
    const republished: PublishedMessage[] = refundRecords.flatMap((r) =>
      r.republished
        .filter((m) => !m.original)
        .map((m) => ({ orderId: r.orderId, messageId: m.messageId, copies: m.copies })),
    );
    const allMessages = [...published, ...republished, ...refundNotices.published];
    const messages = checkMessages(allMessages, events, parked, { work: depths.work, retry: depths.retry });
    const againIds = new Set(republished.map((m) => m.messageId));
    const paidEvents = events.filter(
      (e) => !refundMessageIds.has(e.messageId ?? '') && !againIds.has(e.messageId ?? ''),
    );
    const processCheck: CheckResult = {
      name: 'no unplanned process exits',
      checked: fleet.names.length,
      violations: unplannedExits,
    };
    const deliveries = checkMerchantDeliveries(
      planned,
      lifecycle.events,
      lifecycle.attempts,
      lifecycle.deliveries,
    );
    if (notificationsNotEnded > 0)
      deliveries.check.violations.push(`${notificationsNotEnded} delivery workflows had not completed`);
    const refundRows = lifecycle.refunds;
    const checks = [
      checkFinalStates(planned, orders, trades),
      checkSingleTransition(planned, orders, workflows, refundHistories),
      checkDiscrepancies(planned, orders, trades, discrepancies),
      checkRefundMoney(planned, orders, trades, refundRows, lifecycle.providerRefunds),
      checkRefundPlans(planned, refundRows, refundRecords, refundHistories),
      messages.check,
      checkMessageRouting(planned, published, paidEvents, parked, unconfirmed),
      checkLifecycleRouting(
        planned,
        refundRows,
        refundNotices.published,
        refundNotices.dropped,
        refundRecords,
        events,
        parked,
      ),
      checkSettledBy(planned, orders),
      checkMerchantEvents(planned, orders, refundRows, lifecycle.events, (shop) => shopOf(shop).endpointId),
      deliveries.check,
      checkReconciliation(planted.expected, found, reconError),
      checkReplay(replay.replayed, replay.failures, fetchErrors),
      checkPlanCarriedOut(planned, trades, orders, [...driverErrors]),
      processCheck,
    ];
    if (clusterAtEnd) {
      const names = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
      checks.push(
        checkClusterQueues(
          clusterAtEnd,
          { work: names.paySuccessQueue, retry: names.retryQueue, parking: names.parkingQueue },
          parked.length,
        ),
      );
    }
    const tally = (key: (o: OrderRowLite) => string) => {
      const out: Record<string, number> = {};
      for (const o of orders.values()) out[key(o)] = (out[key(o)] ?? 0) + 1;
      return out;
    };
    const refundMix = (Object.keys(REFUND_SCENARIOS) as RefundKind[]).flatMap((kind) => {
      const mine = planned.filter((p) => p.refund === kind);
      if (mine.length === 0) return [];
      return [
        {
          kind,
          orders: mine.length,
          what: REFUND_SCENARIOS[kind].what,
          final: REFUND_SCENARIOS[kind].final,
          asExpected: mine.filter((p) => orders.get(p.orderId)?.status === expectedStatus(p)).length,
        },
      ];
    });
    const shopRows = (Object.keys(SHOPS) as ShopName[]).map((shop) => {
      const endpointId = shopOf(shop).endpointId;
      const mine = lifecycle.events.filter((e) => e.endpointId === endpointId);
      const attempts = mine.map((e) => lifecycle.attempts.filter((a) => a.eventId === e.id).length);
      return {
        shop,
        what: SHOPS[shop].what,
        orders: planned.filter((p) => p.shop === shop).length,
        events: mine.length,
        delivered: mine.filter((e) => e.status === 'DELIVERED').length,
        exhausted: mine.filter((e) => e.status === 'EXHAUSTED').length,
        attemptsMax: Math.max(0, ...attempts),
        attemptsMean: attempts.length
          ? Number((attempts.reduce((a, b) => a + b, 0) / attempts.length).toFixed(2))
          : 0,
      };
    });
    const durationMs = Date.now() - t0;
    return {
      startedAt: startedAt.toISOString(),
      durationMs,
      ordersPerSecond: Number(((planned.length / durationMs) * 1000).toFixed(2)),
      options: {
        orders: options.orders,
        seed: options.seed,
        killsWorker: options.killsWorker,
        killsConsumer: options.killsConsumer,
        killsInRefund: options.killsInRefund,
        brokerRestarts: options.brokerRestarts,
        leaderStops: options.leaderStops,
        cluster: options.cluster !== null,
        payWithinMs: options.payWithinMs,
        ladder: options.ladder,
        rate: options.rate,
        drainTimeoutMs: options.drainTimeoutMs,
        historyLimit: options.historyLimit,
        processes: options.processes,
        merchantRefusals: options.merchantRefusals,
        lateRace: options.lateRace,
        exhaust: options.exhaust,
        logFile: path.relative(ROOT, options.logFile),
      },
      environment: { ...environment, databaseUrl: redactUrl(environment.databaseUrl), simulatorPort },
      phases,
      cluster:
        options.cluster && clusterAtEnd
          ? {
              nodes: [1, 2, 3].map((i) => options.cluster?.handle.nodeName(i) ?? ''),
              urls: redactUrl(options.cluster.urls),
              startedHere: options.cluster.startedHere,
              queuesAtEnd: clusterAtEnd.queues,
            }
          : null,
      disruptions: disruptionRecords,
      unplannedExits,
      faultMix: faultMixSummary(planned, orders),
      refundMix,
      shops: shopRows,
      exhaustedEvents: deliveries.exhausted,
      reconciliation: {
        billDate,
        provider: config.RECON_PROVIDER,
        workflowId: reconResult?.workflowId ?? null,
        planted: planted.expected,
        found: [...found],
        summary: reconResult
          ? {
              status: reconResult.summary.status,
              totalBreaks: reconResult.summary.totalBreaks,
              matchedPayments: reconResult.summary.matchedPayments,
              theirs: reconResult.summary.theirs,
              ours: reconResult.summary.ours,
            }
          : null,
        refundsMoved: { provider: Number(refundsMoved.provider), ours: Number(refundsMoved.ours) },
      },
      finalStates: tally((o) => o.status),
      settledBy: tally((o) => `${o.status} by ${o.settledBy ?? '-'}`),
      messages: { ...messages.accounting, unconfirmed: unconfirmed.size },
      checks,
      violations: checks.reduce((sum, c) => sum + c.violations.length, 0),
    };
  } finally {
    // Stop the service (again) in every case; the broker's start_app ran in its own finally.
    stopped = true;
    for (const timer of payTimers) clearTimeout(timer);
    await disruptionsFinished; // a broker restart in progress gets its start_app first
    await fleet.stop().catch(() => {});
    await publisher.close().catch(() => {});
    closeSync(logFd);
    closeSync(simulatorFd);
    await temporal.connection.close().catch(() => {});
    await database.close().catch(() => {});
  }
}
