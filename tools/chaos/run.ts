import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import { createDatabase, redactUrl } from '../../src/db/client';
import { migrateDatabase } from '../../src/db/migrate';
import { countOrdersByStatus, findOrders, findPaymentEvents } from '../../src/db/orders';
import { readParkedAt } from '../../src/mq/parking';
import { topologyFor } from '../../src/mq/topology';
import { createOrder } from '../../src/order/start';
import { loadConfig } from '../../src/platform/config';
import { connectTemporal } from '../../src/platform/temporal';
import { HttpPaymentGateway } from '../../src/provider/http';
import { freePort } from '../net';
import { SCENARIOS } from '../scenarios';
import { type ServiceProcess, startService } from '../service';
import { type PaymentReply, type PayOptions, SimulatorClient, SimulatorHttpError } from '../simulator/client';
import {
  type CheckResult,
  checkDiscrepancies,
  checkFinalStates,
  checkMessageRouting,
  checkMessages,
  checkPlanCarriedOut,
  checkSettledBy,
  checkSingleTransition,
  faultMixSummary,
  type MessageAccounting,
  type OrderRowLite,
  type PlannedOrder,
  type PublishedMessage,
  type WorkflowEvidence,
} from './checks';
import {
  mapLimit,
  queueDepths,
  rabbitmqctl,
  readRows,
  resetQueues,
  sample,
  sleep,
  terminateLeftovers,
  waitUntilServing,
  workflowEvidence,
} from './evidence';
import { type Disruption, type DisruptionKind, planDisruptions, planOrders } from './plan';

const ROOT = path.resolve(__dirname, '..', '..');

export interface ChaosOptions {
  orders: number;
  seed: number;
  killsWorker: number;
  killsConsumer: number;
  brokerRestarts: number;
  payWithinMs: number;
  ladder: { stepsMs: number[]; repeatMs: number };
  /** Orders created per second. */
  rate: number;
  /** How long to wait, after every order settled, for queues to drain and workflows to finish. */
  drainTimeoutMs: number;
  /** Fetch and check the workflow history of at most this many orders (all by default). */
  historyLimit: number;
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
  options: Omit<ChaosOptions, 'log' | 'signal'>;
  environment: ChaosEnvironment;
  phases: { createMs: number; settleMs: number; drainMs: number; collectMs: number };
  disruptions: DisruptionRecord[];
  unplannedExits: string[];
  faultMix: ReturnType<typeof faultMixSummary>;
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

  const simulatorPort = environment.simulatorPort || (await freePort());
  // WORKER/CONSUMER_METRICS_ADDRESS get free ports: a dev worker may hold the default ones.
  const env: NodeJS.ProcessEnv = {
    DATABASE_URL: environment.databaseUrl,
    AMQP_PREFIX: environment.amqpPrefix,
    TEMPORAL_TASK_QUEUE: environment.taskQueue,
    SIMULATOR_PORT: String(simulatorPort),
    SIMULATOR_HOST: '127.0.0.1',
    SIMULATOR_FAULTS: '{}',
    PROVIDER_URL: `http://127.0.0.1:${simulatorPort}`,
    WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    CONSUMER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    CONSUMER_RETRY_DELAY: '2s',
    POLL_LADDER: options.ladder.stepsMs.join(','),
    POLL_REPEAT: String(options.ladder.repeatMs),
    PAY_DEADLINE: String(options.payWithinMs),
    LOG_LEVEL: 'info',
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
  const service = startService({ env, stdio: logFd, singleProcess: true });
  const unplannedExits: string[] = [];
  const driverErrors: string[] = [];
  let stopped = false;
  // firstExit ignores stop() and the planned kills: anything else is a crash. It is recorded (a
  // violation) and the process restarted, so the run still ends with the evidence of what followed.
  service.firstExit.then(({ name, code }) => {
    if (stopped) return;
    unplannedExits.push(`${name} exited on its own with code ${code} at ${Math.round(since() / 1000)}s`);
    log(
      `!! ${name} exited on its own (code ${code}); restarting it. See ${path.relative(process.cwd(), options.logFile)}`,
    );
    service.restart(name).catch(() => {});
  });
  log(
    `service started (simulator :${simulatorPort}, worker, consumer; logs ${path.relative(process.cwd(), options.logFile)})`,
  );

  const simulator = new SimulatorClient(config.PROVIDER_URL, { timeoutMs: 60_000 });
  const gateway = new HttpPaymentGateway({ baseUrl: config.PROVIDER_URL, timeoutMs: 60_000 });
  const published: PublishedMessage[] = [];
  const unconfirmed = new Set<string>();
  const disruptionRecords: DisruptionRecord[] = [];
  const payTimers = new Set<NodeJS.Timeout>();
  let disruptionsFinished: Promise<void> = Promise.resolve();
  let brokerDown = false;
  const phases = { createMs: 0, settleMs: 0, drainMs: 0, collectMs: 0 };

  try {
    await simulator.waitUntilUp(60_000, signal);

    const payWindowMs = Math.min(20_000, Math.floor(options.payWithinMs / 3));
    const plans = planOrders({ orders: options.orders, seed: options.seed, payWindowMs });
    const createMsPlanned = (options.orders / options.rate) * 1000;
    const windowMs = createMsPlanned + options.payWithinMs;
    const disruptions = planDisruptions({
      seed: options.seed,
      windowMs,
      killsWorker: options.killsWorker,
      killsConsumer: options.killsConsumer,
      brokerRestarts: options.brokerRestarts,
    });
    log(
      `${options.orders} orders at ${options.rate}/s, pay deadline ${options.payWithinMs / 1000}s, ladder ${options.ladder.stepsMs.map((s) => `${s / 1000}s`).join(',')} then every ${options.ladder.repeatMs / 1000}s; ` +
        `disruptions at ${disruptions.map((d) => `${d.kind}@${Math.round(d.atMs / 1000)}s`).join(', ') || 'none'}`,
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
    const pay = (orderId: string, options: PayOptions, what: string) => {
      simulator
        .pay(orderId, options)
        .then(
          (reply) => paid(orderId, reply),
          (error: Error) => payFailed(orderId, what, error),
        )
        .finally(() => {
          paysResolved++;
        });
    };

    // --- the disruptions, on their own timeline --------------------------------------------------
    const processOf: Record<Exclude<DisruptionKind, 'restart-broker'>, ServiceProcess> = {
      'kill-worker': 'worker',
      'kill-consumer': 'consumer',
    };
    // The run's clock (disruption times, the report) starts with the first order.
    const createStarted = Date.now();
    const atRun = () => Date.now() - createStarted;
    const disrupting = (async () => {
      for (const disruption of disruptions) {
        await sleep(Math.max(0, disruption.atMs - atRun()), signal);
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
          } else {
            const name = processOf[disruption.kind];
            const pid = service.children.get(name)?.pid;
            await service.kill(name, 'SIGKILL');
            log(`>> SIGKILL ${name} (pid ${pid}); restart in ${(disruption.downMs / 1000).toFixed(1)}s`);
            await sleep(disruption.downMs, signal);
            const child = await service.restart(name);
            const serving = await waitUntilServing(name, child.pid, { config, temporal, signal });
            record.outageMs = atRun() - startedAtMs;
            record.detail = `pid ${pid} killed, pid ${child.pid} ${serving ? 'serving' : 'NOT serving after 90s'}`;
            if (!serving)
              driverErrors.push(`${name} pid ${child.pid} did not serve within 90s of its restart`);
          }
        } catch (error) {
          record.error = (error as Error).message;
          driverErrors.push(
            `${disruption.kind} at ${Math.round(startedAtMs / 1000)}s failed: ${record.error}`,
          );
          if (signal?.aborted) throw error;
        }
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

    // --- the watcher: pays each "late" order as soon as it is CLOSED, and reports progress --------
    const late = new Set<string>();
    let lateTotal = 0;
    let watching = true;
    let counts: Record<string, number> = {};
    const progress = () => {
      const settled = planned.length - (counts.UNPAID ?? 0);
      return (
        `  ${Math.round(atRun() / 1000)}s: created ${planned.length}/${plans.length}, settled ${settled} ` +
        `(PAID ${counts.PAID ?? 0}, CLOSED ${counts.CLOSED ?? 0}, NEEDS_REVIEW ${counts.NEEDS_REVIEW ?? 0}), ` +
        `payments ${paysMade} (${lateTotal - late.size}/${lateTotal} after close), ` +
        `disruptions ${disruptionRecords.length}/${disruptions.length}${brokerDown ? ', broker down' : ''}`
      );
    };
    const watcher = (async () => {
      let lastProgress = Date.now();
      while (watching && !stopped) {
        try {
          if (late.size > 0) {
            for (const { id, status } of await findOrders(database.db, [...late])) {
              if (status !== 'CLOSED') continue;
              late.delete(id);
              pay(id, { force: true, faults: {} }, 'pay after close');
            }
          }
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
            },
          );
          if (!trade) throw new Error(`the simulator did not open the trade of ${order.id}: ${tradeError}`);
          planned.push({ ...plan, orderId: order.id });
          if (SCENARIOS[plan.kind].pays === 'after-close') {
            late.add(order.id);
            lateTotal++;
          }
          if (plan.payAfterMs !== null && plan.faults) {
            const faults = plan.faults;
            payTimers.add(setTimeout(() => pay(order.id, { faults }, 'pay'), plan.payAfterMs));
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

    // --- wait until every order settled and every payment (after close too) was made ------------
    const settleStarted = Date.now();
    const settleDeadline = settleStarted + options.payWithinMs + Math.max(120_000, options.payWithinMs);
    try {
      for (;;) {
        signal?.throwIfAborted();
        const settled = planned.length - ((await countOrdersByStatus(database.db, ids)).UNPAID ?? 0);
        if (settled === planned.length && late.size === 0 && paysResolved >= expectedPays && disruptionsDone)
          break;
        if (Date.now() > settleDeadline) {
          driverErrors.push(
            `gave up waiting after ${Math.round((Date.now() - settleStarted) / 1000)}s: ${planned.length - settled} orders still UNPAID, ` +
              `${late.size} payments after close not made, ${expectedPays - paysResolved} payments unanswered`,
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
    phases.settleMs = Date.now() - settleStarted;
    log(`all orders settled ${(phases.settleMs / 1000).toFixed(1)}s after the last was created`);

    // --- drain: every workflow done, work and retry queues empty, every message accounted ------
    const drainStarted = Date.now();
    // Orders whose scenario parks its message (message fate `{ parked: [...] }`).
    const expectParked = new Set(
      planned.filter((p) => typeof SCENARIOS[p.kind].message === 'object').map((p) => p.orderId),
    );
    for (;;) {
      signal?.throwIfAborted();
      const running = await temporal.workflow.count(
        `TaskQueue="${config.TEMPORAL_TASK_QUEUE}" AND ExecutionStatus="Running"`,
      );
      const depths = await queueDepths(config);
      const recorded = new Set(
        (await findPaymentEvents(database.db, ids)).filter((e) => e.source === 'mq').map((e) => e.messageId),
      );
      const unrecordedValid = published.filter(
        (m) => !expectParked.has(m.orderId) && !recorded.has(m.messageId),
      );
      const toPark = published.filter((m) => expectParked.has(m.orderId)).length;
      if (
        running.count === 0 &&
        depths.work === 0 &&
        depths.retry === 0 &&
        unrecordedValid.length === 0 &&
        depths.parking >= toPark
      ) {
        break;
      }
      if (Date.now() - drainStarted > options.drainTimeoutMs) {
        log(
          `drain timed out: ${running.count} workflows running, work queue ${depths.work}, retry queue ${depths.retry}, ` +
            `${unrecordedValid.length} valid messages unrecorded, parking ${depths.parking}/${toPark}`,
        );
        break;
      }
      await sleep(1_000, signal);
    }
    phases.drainMs = Date.now() - drainStarted;

    // --- collect the evidence with the service stopped, so nothing moves underneath ------------
    const collectStarted = Date.now();
    const depths = await queueDepths(config);
    stopped = true;
    await service.stop();
    const { orders, trades, events, discrepancies } = await readRows(database.db, ids);
    const parked = await readParkedAt(
      config.AMQP_URL,
      topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY),
    );
    const historyOrders = sample(ids, options.historyLimit);
    const evidence = await mapLimit(historyOrders, 8, (id) =>
      workflowEvidence(temporal, id).catch(
        (error: Error): WorkflowEvidence => ({
          orderId: id,
          execution: `UNREADABLE (${error.message})`,
          resultStatus: null,
          transitions: [],
        }),
      ),
    );
    const workflows = new Map(evidence.map((e) => [e.orderId, e]));
    phases.collectMs = Date.now() - collectStarted;

    // --- check ----------------------------------------------------------------------------------
    const messages = checkMessages(published, events, parked, { work: depths.work, retry: depths.retry });
    const processCheck: CheckResult = {
      name: 'no unplanned process exits',
      checked: 3,
      violations: unplannedExits,
    };
    const checks = [
      checkFinalStates(planned, orders, trades),
      checkSingleTransition(planned, orders, workflows),
      checkDiscrepancies(planned, orders, trades, discrepancies),
      messages.check,
      checkMessageRouting(planned, published, events, parked, unconfirmed),
      checkSettledBy(planned, orders),
      checkPlanCarriedOut(planned, trades, orders, [...driverErrors]),
      processCheck,
    ];
    const tally = (key: (o: OrderRowLite) => string) => {
      const out: Record<string, number> = {};
      for (const o of orders.values()) out[key(o)] = (out[key(o)] ?? 0) + 1;
      return out;
    };
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
        brokerRestarts: options.brokerRestarts,
        payWithinMs: options.payWithinMs,
        ladder: options.ladder,
        rate: options.rate,
        drainTimeoutMs: options.drainTimeoutMs,
        historyLimit: options.historyLimit,
        logFile: path.relative(ROOT, options.logFile),
      },
      environment: { ...environment, databaseUrl: redactUrl(environment.databaseUrl), simulatorPort },
      phases,
      disruptions: disruptionRecords,
      unplannedExits,
      faultMix: faultMixSummary(planned, orders),
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
    await service.stop().catch(() => {});
    closeSync(logFd);
    await temporal.connection.close().catch(() => {});
    await database.close().catch(() => {});
  }
}
