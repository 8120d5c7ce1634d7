import { readdirSync, readFileSync } from 'node:fs';
import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { ChannelModel, ConfirmChannel, Options } from 'amqplib';
import { and, sql as dsql, eq, inArray } from 'drizzle-orm';
import { createEndpoint, newWebhookSecret } from '../../src/db/merchant';
import { merchantEvents } from '../../src/db/schema';
import { connectAny } from '../../src/mq/connect';
import { connectTemporal } from '../../src/platform/temporal';
import { DELIVERY_LADDERS } from '../../workflows/ladder';
import type { merchantDeliveryWorkflow } from '../../workflows/notification';
import { deliveryWorkflowId } from '../../workflows/notify-merchant';
import { OrderIdKey } from '../../workflows/search-attributes';
import { MerchantClient } from '../merchant/client';
import { merchantDeliveries } from '../merchant/db/schema';
import { freePort } from '../net';
import { cpuPerOrder } from './e2e';
import type { BenchContext } from './lib/context';
import { type DedicatedDevServer, startDedicatedDevServer } from './lib/dev-server';
import { BENCH_PREFIX, configEnv, sleep } from './lib/env';
import type { LatencySummary } from './lib/hist';
import { BenchProcess, readCpuSeconds } from './lib/procs';
import { openLoop } from './lib/rate';
import {
  declareNotifyTtl,
  type NotifyTtlProgress,
  type NotifyTtlReport,
  type NotifyTtlRequest,
  notifyTtlTopology,
  TTL_HEADERS,
  type TtlMessage,
} from './notify-ttl';

const { EventType } = temporal.api.enums.v1;
type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/**
 * Merchant notification ladder: the seed article's design (one RabbitMQ delay queue with per-message
 * TTL, dead-lettered back to the work queue: tools/bench/notify-ttl-service.ts) beside payrecon's (one
 * merchantDeliveryWorkflow per order (one event each here), a durable timer between attempts, the real worker process).
 * The same N events arrive at the same times in both designs (open loop, `rate`/s); event i's orders
 * make the merchant simulator fail their first k_i attempts (k drawn from `failFirst` with a fixed
 * seed), and both designs wait the same ladder (payrecon's, times `ladderScale`) after each failure.
 * For every retry: when it was due (the design decided to wait at t, for step s: t + s) and when it
 * actually went out (consumed from the work queue / the postEvent activity task started).
 */
export interface NotifyOptions {
  events: number;
  /** Events per second (first attempts), open loop. */
  rate: number;
  ladder: keyof typeof DELIVERY_LADDERS;
  ladderScale: number;
  /** The k values events are drawn from (uniformly): the merchant fails the first k attempts. */
  failFirst: number[];
  /** Which design goes first (they run one after the other). */
  order: ('ttl' | 'payrecon')[];
  serverPragmas: string[];
  /** The run's dedicated dev server, if it has one; else the phase starts its own. */
  dedicated: DedicatedDevServer | null;
  seed: number;
}

export interface StepLateness {
  stepMs: number;
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** payrecon: of that, timer due → TimerFired (the server's timer alone). */
  timerFired?: { p50: number; p99: number; max: number };
}

export interface NotifyDesignResult {
  design: 'payrecon' | 'ttl-dlx';
  mechanism: string;
  events: number;
  delivered: number;
  exhausted: number;
  /** Attempts the merchant simulator received (validly signed) for this design's events. */
  attempts: number;
  /** Retry due → retry went out, as the design itself records it (ms). */
  lateness: LatencySummary & { min: number };
  /** Lateness at percentiles 0, 1, ..., 100 (ms): the chart's curve. */
  cdf: number[];
  byStep: StepLateness[];
  /** Seen at the merchant: (attempt n+1 received) − (attempt n received) − the step between them (ms). */
  merchantSeen: LatencySummary & { min: number };
  /** First arrival → last event settled (s). */
  spanS: number;
  /** Server CPU per event (Temporal dev server for payrecon; the RabbitMQ broker for the baseline, which
   * is shared with the machine: `serverIdleCpuMsPerS` is its rate before the phase). */
  server: string;
  serverCpuMsPerEvent: number | null;
  /** The same, less the server's idle rate over the phase's time (measured for 5 s before it, with the
   * worker or consumer up and nothing sent). */
  serverCpuNetMsPerEvent: number | null;
  serverIdleCpuMsPerS: number | null;
  /** The design's own process (payrecon's worker; the baseline's consumer), CPU per event. */
  processCpuMsPerEvent: number | null;
  machineBusyPct: number | null;
  /** payrecon: what one event's delivery workflow history holds (means). */
  history: {
    events: number;
    workflowTasks: number;
    activityTasks: number;
    localActivities: number;
    timers: number;
  } | null;
  /** Baseline: messages through the broker per event: client publishes (first + one per retry) and
   * dead-letterings (one per retry). */
  brokerMessagesPerEvent: number | null;
  /** Extra lateness components (payrecon: timer due → TimerFired, TimerFired → activity started). */
  components: Record<string, LatencySummary>;
  errors: string[];
}

export interface NotifyResult {
  events: number;
  rate: number;
  ladder: string;
  ladderScale: number;
  ladderMs: number[];
  /** How many events got each k. */
  failFirstMix: Record<string, number>;
  /** Retries per event (the same in both designs: Σk / N). */
  retriesPerEvent: number;
  designs: NotifyDesignResult[];
  /** The baseline ÷ payrecon, measured in this run (higher = the baseline later or costlier). */
  ratio: {
    p50: number | null;
    p99: number | null;
    max: number | null;
    merchantSeenP99: number | null;
    serverCpu: number | null;
    serverCpuNet: number | null;
    processCpu: number | null;
  };
  chart?: string;
}

interface BenchEvent {
  index: number;
  orderId: string;
  eventId: string;
  k: number;
  body: string;
}

/** mulberry32: the same k for event i in both designs and in every run with the same seed. */
function seeded(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeEvents(tag: string, n: number, failFirst: number[], seed: number): BenchEvent[] {
  const random = seeded(seed);
  return Array.from({ length: n }, (_, index) => {
    const k = failFirst[Math.floor(random() * failFirst.length)] ?? 0;
    const orderId = `ord_${tag}${String(index).padStart(5, '0')}`;
    const eventId = `evt_${orderId}_1`;
    const now = new Date().toISOString();
    // The shape of payrecon's order.paid payload (src/db/orders.ts), so both designs POST the same bytes.
    const payload = {
      id: eventId,
      type: 'order.paid',
      sequence: 1,
      orderId,
      status: 'PAID',
      amount: 100 + index,
      currency: 'CNY',
      tradeNo: `T${orderId}`,
      settledBy: 'mq',
      paidAt: now,
      closedAt: null,
      closeReason: null,
      occurredAt: now,
    };
    return { index, orderId, eventId, k, body: JSON.stringify(payload) };
  });
}

/** Exact nearest-rank percentiles of a list of millisecond values. */
export function summarize(values: number[]): LatencySummary & { min: number } {
  if (values.length === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0, min: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
  const r = (v: number) => Math.round(v * 10) / 10;
  return {
    count: sorted.length,
    p50: r(at(50)),
    p95: r(at(95)),
    p99: r(at(99)),
    max: r(sorted[sorted.length - 1] ?? 0),
    mean: r(sorted.reduce((a, b) => a + b, 0) / sorted.length),
    min: r(sorted[0] ?? 0),
  };
}

/** Values at percentiles 0..100 (nearest rank), rounded to 0.1 ms. */
export function percentiles(values: number[]): number[] {
  if (values.length === 0) return [];
  const sorted = [...values].sort((a, b) => a - b);
  return Array.from({ length: 101 }, (_, p) => {
    const v = sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
    return Math.round(v * 10) / 10;
  });
}

function byStep(records: { stepMs: number; lateMs: number; firedLateMs?: number }[]): StepLateness[] {
  const steps = [...new Set(records.map((r) => r.stepMs))].sort((a, b) => a - b);
  return steps.map((stepMs) => {
    const mine = records.filter((r) => r.stepMs === stepMs);
    const s = summarize(mine.map((r) => r.lateMs));
    const fired = mine.flatMap((r) => (r.firedLateMs === undefined ? [] : [r.firedLateMs]));
    const f = fired.length > 0 ? summarize(fired) : null;
    return {
      stepMs,
      count: s.count,
      p50: s.p50,
      p99: s.p99,
      max: s.max,
      ...(f ? { timerFired: { p50: f.p50, p99: f.p99, max: f.max } } : {}),
    };
  });
}

/** The RabbitMQ broker's pid (beam.smp running rabbit), when it runs on this machine. */
export function brokerPid(): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'beam.smp') continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('rabbit')) return Number(entry);
    } catch {
      // gone, or not ours to read
    }
  }
  return null;
}

function machineTicks() {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
}

const readCpu = (pid: number | null) => (pid ? readCpuSeconds(pid) : null);

/** A server's CPU while the phase's processes are up and nothing is sent (ms of CPU per second). */
async function idleRate(pid: number | null, ms = 5_000): Promise<number | null> {
  const before = readCpu(pid);
  await sleep(ms);
  const after = readCpu(pid);
  return before !== null && after !== null
    ? Math.round(((after - before) * 1000 * 10) / (ms / 1000)) / 10
    : null;
}

/**
 * CPU of the server and the design's process, and the machine's busy share, over the phase; the
 * server's also net of its idle rate (what it burns anyway over the same time).
 */
function meter(pids: { server: number | null; process: number | null }, serverIdleMsPerS: number | null) {
  const m0 = machineTicks();
  const t0 = Date.now();
  const s0 = readCpu(pids.server);
  const p0 = readCpu(pids.process);
  return {
    stop(events: number) {
      const m1 = machineTicks();
      const total = m1.total - m0.total;
      const s1 = readCpu(pids.server);
      const seconds = (Date.now() - t0) / 1000;
      const net =
        s0 !== null && s1 !== null && serverIdleMsPerS !== null && events > 0
          ? Math.round((((s1 - s0) * 1000 - serverIdleMsPerS * seconds) / events) * 10) / 10
          : null;
      return {
        serverCpuMsPerEvent: cpuPerOrder(s0, s1, events),
        serverCpuNetMsPerEvent: net,
        serverIdleCpuMsPerS: serverIdleMsPerS,
        processCpuMsPerEvent: cpuPerOrder(p0, readCpu(pids.process), events),
        machineBusyPct: total > 0 ? Math.round((1 - (m1.idle - m0.idle) / total) * 100) : null,
      };
    },
  };
}

/** Attempts the merchant received for these orders: per order, the arrival times in order (ms). */
async function merchantArrivals(ctx: BenchContext, merchantId: string): Promise<Map<string, number[]>> {
  const rows = await ctx.db
    .select({
      orderId: merchantDeliveries.orderId,
      n: merchantDeliveries.orderDelivery,
      at: dsql<number>`extract(epoch from ${merchantDeliveries.receivedAt}) * 1000`,
    })
    .from(merchantDeliveries)
    .where(and(eq(merchantDeliveries.merchantId, merchantId), eq(merchantDeliveries.signatureValid, true)))
    .orderBy(merchantDeliveries.id);
  const byOrder = new Map<string, number[]>();
  for (const row of rows) {
    if (!row.orderId) continue;
    byOrder.set(row.orderId, [...(byOrder.get(row.orderId) ?? []), Number(row.at)]);
  }
  return byOrder;
}

/** (attempt n+1 arrived) − (attempt n arrived) − ladder step n, for every retry the merchant saw. */
function merchantSeen(arrivals: Map<string, number[]>, ladderMs: number[]) {
  const late: number[] = [];
  let attempts = 0;
  for (const times of arrivals.values()) {
    attempts += times.length;
    for (let n = 1; n < times.length; n++) {
      const step = ladderMs[n - 1];
      const prev = times[n - 1];
      const next = times[n];
      if (step === undefined || prev === undefined || next === undefined) continue;
      late.push(next - prev - step);
    }
  }
  return { summary: summarize(late), attempts };
}

/** Asks the baseline's consumer over IPC and waits for its answer. */
function ask<T extends { type: string }>(proc: BenchProcess, request: NotifyTtlRequest): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      proc.child.off('message', onMessage);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${request.type} answer from ${proc.name}`));
    }, 30_000);
    const onMessage = (message: unknown) => {
      if ((message as { type?: string }).type !== request.type) return;
      done();
      resolve(message as T);
    };
    proc.child.on('message', onMessage);
    if (!proc.child.connected) {
      done();
      reject(
        new Error(`${proc.name} exited (code ${proc.child.exitCode}; log: .run/bench-${proc.name}.log)`),
      );
      return;
    }
    // With a callback, a closed channel is an error here rather than an unhandled 'error' event.
    proc.child.send(request, (error) => {
      if (!error) return;
      done();
      reject(error);
    });
  });
}

/** Publishes the first attempt of each event, with confirms; reconnects if the broker went away. */
function ttlProducer(amqpUrl: string) {
  let channel: Promise<ConfirmChannel> | null = null;
  const connections: ChannelModel[] = [];
  const open = () => {
    channel ??= (async () => {
      const connection = await connectAny(amqpUrl);
      connections.push(connection);
      connection.on('error', () => {});
      connection.on('close', () => {
        channel = null;
      });
      const created = await connection.createConfirmChannel();
      created.on('error', () => {});
      return created;
    })().catch((error: unknown) => {
      channel = null;
      throw error;
    });
    return channel;
  };
  return {
    async publish(exchange: string, content: Buffer, options: Options.Publish): Promise<void> {
      for (let attempt = 1; ; attempt++) {
        try {
          const ch = await open();
          await new Promise<void>((resolve, reject) => {
            ch.publish(exchange, '', content, options, (error) => (error ? reject(error) : resolve()));
          });
          return;
        } catch (error) {
          channel = null;
          if (attempt >= 10) throw error;
          await sleep(1_000);
        }
      }
    },
    async close() {
      for (const connection of connections) await connection.close().catch(() => {});
    },
  };
}

async function setFaults(merchant: MerchantClient, events: BenchEvent[]) {
  const queue = events.filter((e) => e.k > 0);
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let e = queue.shift(); e; e = queue.shift()) {
        await merchant.setOrderFaults(e.orderId, { failFirst: e.k });
      }
    }),
  );
}

const mechanismOf = (ladderMs: number[]) => ladderMs.map((s) => `${s / 1000}s`).join(', ');

/** The seed's design: a producer (here) publishes each event once; the consumer process does the rest. */
async function runTtl(
  ctx: BenchContext,
  options: NotifyOptions,
  merchant: MerchantClient,
  merchantId: string,
  secret: string,
  events: BenchEvent[],
  ladderMs: number[],
): Promise<NotifyDesignResult> {
  const topology = notifyTtlTopology(`${BENCH_PREFIX}-notify`);
  await declareNotifyTtl(ctx.config.AMQP_URL, topology);
  const service = new BenchProcess(
    'notify-ttl',
    'tools/bench/notify-ttl-service.ts',
    {
      ...configEnv(ctx.config),
      BENCH_NOTIFY_PREFIX: `${BENCH_PREFIX}-notify`,
      BENCH_NOTIFY_LADDER: ladderMs.join(','),
      BENCH_NOTIFY_SECRET: secret,
    },
    { ipc: true },
  );
  const producer = ttlProducer(ctx.config.AMQP_URL);
  try {
    await service.waitFor(/"msg":"notify ttl baseline started"/);
    const pid = brokerPid();
    // The broker is shared with the machine: its idle rate says how much of its CPU is not ours.
    const cpu = meter({ server: pid, process: service.pid }, await idleRate(pid));
    const url = merchant.hookUrl(merchantId);
    const run = await openLoop(options.rate, (options.events * 1000) / options.rate, async (i) => {
      const event = events[i];
      if (!event) return;
      const message: TtlMessage = { eventId: event.eventId, orderId: event.orderId, url, body: event.body };
      await producer.publish(topology.workExchange, Buffer.from(JSON.stringify(message)), {
        persistent: true,
        contentType: 'application/json',
        headers: { [TTL_HEADERS.attempts]: 0 },
      });
    });
    const expected = run.launched - run.failed;
    const deadline = Date.now() + drainTimeoutMs(ladderMs);
    let progress: NotifyTtlProgress = { type: 'progress', settled: 0, consumed: 0 };
    while (Date.now() < deadline) {
      progress = await ask<NotifyTtlProgress>(service, { type: 'progress' });
      if (progress.settled >= expected) break;
      await sleep(250);
    }
    const finishedAt = Date.now();
    const usage = cpu.stop(events.length);
    const report = await ask<NotifyTtlReport>(service, { type: 'report' });
    const records = report.retries.map((r) => ({ stepMs: r.stepMs, lateMs: r.firedAt - r.scheduledAt }));
    const seen = merchantSeen(await merchantArrivals(ctx, merchantId), ladderMs);
    const statuses = Object.values(report.settled);
    return {
      design: 'ttl-dlx',
      mechanism: `one RabbitMQ delay queue, per-message TTL ${mechanismOf(ladderMs)}, dead-lettered to the work queue`,
      events: events.length,
      delivered: statuses.filter((s) => s.status === 'DELIVERED').length,
      exhausted: statuses.filter((s) => s.status === 'EXHAUSTED').length,
      attempts: seen.attempts,
      lateness: summarize(records.map((r) => r.lateMs)),
      cdf: percentiles(records.map((r) => r.lateMs)),
      byStep: byStep(records),
      merchantSeen: seen.summary,
      spanS: Math.round((finishedAt - run.startedAt) / 100) / 10,
      server: pid ? `RabbitMQ broker (pid ${pid}, shared)` : 'RabbitMQ broker (not found on this machine)',
      ...usage,
      history: null,
      // First publish + per retry one publish to the delay queue and one dead-lettering back.
      brokerMessagesPerEvent:
        Math.round(((events.length + 2 * report.published) / events.length) * 100) / 100,
      components: {},
      errors: [
        ...run.errors,
        ...report.errors,
        ...(report.reconnects > 0
          ? [
              `the consumer lost its broker connection ${report.reconnects} time(s) (a broker restart?): retries held meanwhile count as late`,
            ]
          : []),
        ...(progress.settled < expected
          ? [`${expected - progress.settled} events still unsettled at the drain timeout`]
          : []),
      ],
    };
  } finally {
    await producer.close();
    await service.stop();
  }
}

function drainTimeoutMs(ladderMs: number[]) {
  const ladderSpan = ladderMs.reduce((a, b) => a + b, 0);
  // The baseline's head-of-line waits can add up to one long step per retry.
  return ladderSpan + ladderMs.length * Math.max(...ladderMs) + 120_000;
}

const millis = (event: HistoryEvent) =>
  Number(event.eventTime?.seconds ?? 0) * 1000 + (event.eventTime?.nanos ?? 0) / 1e6;
const durationMs = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
  Number(d?.seconds ?? 0) * 1000 + (d?.nanos ?? 0) / 1e6;

/** Every retry of one delivery workflow: timer started + its duration → the next postEvent started. */
function historyRetries(events: HistoryEvent[]) {
  const retries: { stepMs: number; lateMs: number; firedLateMs: number; firedToStartMs: number }[] = [];
  for (const started of events) {
    if (started.eventType !== EventType.EVENT_TYPE_TIMER_STARTED) continue;
    const stepMs = durationMs(started.timerStartedEventAttributes?.startToFireTimeout);
    const due = millis(started) + stepMs;
    const fired = events.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_TIMER_FIRED &&
        Number(e.timerFiredEventAttributes?.startedEventId) === Number(started.eventId),
    );
    if (!fired) continue;
    const scheduled = events.find(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
        Number(e.eventId) > Number(fired.eventId) &&
        e.activityTaskScheduledEventAttributes?.activityType?.name === 'postEvent',
    );
    const activityStarted = scheduled
      ? events.find(
          (e) =>
            e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED &&
            Number(e.activityTaskStartedEventAttributes?.scheduledEventId) === Number(scheduled.eventId),
        )
      : undefined;
    if (!activityStarted) continue;
    retries.push({
      stepMs: Math.round(stepMs),
      lateMs: millis(activityStarted) - due,
      firedLateMs: millis(fired) - due,
      firedToStartMs: millis(activityStarted) - millis(fired),
    });
  }
  const count = (type: number) => events.filter((e) => e.eventType === type).length;
  return {
    retries,
    shape: {
      events: events.length,
      workflowTasks: count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
      activityTasks: count(EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
      localActivities: events.filter(
        (e) =>
          e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED &&
          e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
      ).length,
      timers: count(EventType.EVENT_TYPE_TIMER_STARTED),
    },
  };
}

/** payrecon: the real worker process, one merchantDeliveryWorkflow per order (one event each here). */
async function runPayrecon(
  ctx: BenchContext,
  options: NotifyOptions,
  merchant: MerchantClient,
  merchantId: string,
  secret: string,
  events: BenchEvent[],
  ladderMs: number[],
): Promise<NotifyDesignResult> {
  let server = options.dedicated;
  const own = server ? null : await startDedicatedDevServer(options.serverPragmas);
  server = server ?? own;
  if (!server) throw new Error('no dev server for the notification phase');
  const config = {
    ...ctx.config,
    TEMPORAL_ADDRESS: server.address,
    TEMPORAL_TASK_QUEUE: `${BENCH_PREFIX}-notify`,
  };
  let client: Client | null = null;
  const worker = new BenchProcess('notify-worker', 'workers/worker.ts', configEnv(config));
  try {
    client = await connectTemporal(config);
    await worker.waitFor(/"msg":"worker started"/, 120_000);
    const endpoint = await createEndpoint(ctx.db, {
      url: merchant.hookUrl(merchantId),
      secrets: [secret],
      ladder: options.ladder,
    });
    for (let i = 0; i < events.length; i += 500) {
      await ctx.db.insert(merchantEvents).values(
        events.slice(i, i + 500).map((e) => ({
          id: e.eventId,
          orderId: e.orderId,
          sequence: 1,
          type: 'order.paid',
          payload: JSON.parse(e.body) as Record<string, unknown>,
          endpointId: endpoint.id,
        })),
      );
    }
    const cpu = meter({ server: server.pid, process: worker.pid }, await idleRate(server.pid));
    const temporalClient = client;
    const started: string[] = [];
    const startErrors: string[] = [];
    const run = await openLoop(options.rate, (options.events * 1000) / options.rate, async (i) => {
      const event = events[i];
      if (!event) return;
      // As the order workflow's startChild would: a start the busy server did not answer is tried again.
      for (let attempt = 1; ; attempt++) {
        try {
          // Each bench event is its own order's only event: one delivery workflow each, as payrecon's
          // signal-with-start would start it.
          await temporalClient.workflow.start<typeof merchantDeliveryWorkflow>('merchantDeliveryWorkflow', {
            taskQueue: config.TEMPORAL_TASK_QUEUE,
            workflowId: deliveryWorkflowId(event.orderId),
            args: [{ orderId: event.orderId, ladderMs }],
            typedSearchAttributes: [{ key: OrderIdKey, value: event.orderId }],
          });
          break;
        } catch (error) {
          if (error instanceof WorkflowExecutionAlreadyStartedError) break;
          if (startErrors.length < 3) startErrors.push(`start retried: ${(error as Error).message}`);
          if (attempt >= 5) throw error;
          await sleep(1_000);
        }
      }
      started.push(event.eventId);
    });
    const ids = started;
    const deadline = Date.now() + drainTimeoutMs(ladderMs);
    let settled: { status: string; n: number }[] = [];
    while (Date.now() < deadline) {
      settled = await ctx.db
        .select({ status: merchantEvents.status, n: dsql<number>`count(*)::int` })
        .from(merchantEvents)
        .where(inArray(merchantEvents.id, ids))
        .groupBy(merchantEvents.status);
      const pending = settled.find((s) => s.status === 'PENDING')?.n ?? 0;
      if (pending === 0) break;
      await sleep(250);
    }
    const finishedAt = Date.now();
    const usage = cpu.stop(events.length);
    const count = (status: string) => settled.find((s) => s.status === status)?.n ?? 0;

    // Every history: the retries' lateness and what one delivery costs the server.
    const queue = [...events];
    const records: ReturnType<typeof historyRetries>['retries'] = [];
    const shapes: ReturnType<typeof historyRetries>['shape'][] = [];
    const historyErrors: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let e = queue.shift(); e; e = queue.shift()) {
          try {
            const history = await temporalClient.workflow
              .getHandle(deliveryWorkflowId(e.orderId))
              .fetchHistory();
            const parsed = historyRetries(history.events ?? []);
            records.push(...parsed.retries);
            shapes.push(parsed.shape);
          } catch (error) {
            if (historyErrors.length < 3) historyErrors.push((error as Error).message);
          }
        }
      }),
    );
    const mean = (key: keyof (typeof shapes)[number]) =>
      shapes.length ? Math.round((shapes.reduce((a, s) => a + s[key], 0) / shapes.length) * 10) / 10 : 0;
    const seen = merchantSeen(await merchantArrivals(ctx, merchantId), ladderMs);
    return {
      design: 'payrecon',
      mechanism: `merchantDeliveryWorkflow per order (one event each here), durable timers ${mechanismOf(ladderMs)}`,
      events: events.length,
      delivered: count('DELIVERED'),
      exhausted: count('EXHAUSTED'),
      attempts: seen.attempts,
      lateness: summarize(records.map((r) => r.lateMs)),
      cdf: percentiles(records.map((r) => r.lateMs)),
      byStep: byStep(records),
      merchantSeen: seen.summary,
      spanS: Math.round((finishedAt - run.startedAt) / 100) / 10,
      server: `Temporal dev server (pid ${server.pid}, dedicated${own ? ' to this phase' : ''})`,
      ...usage,
      history: {
        events: mean('events'),
        workflowTasks: mean('workflowTasks'),
        activityTasks: mean('activityTasks'),
        localActivities: mean('localActivities'),
        timers: mean('timers'),
      },
      brokerMessagesPerEvent: null,
      components: {
        'timer due → TimerFired': summarize(records.map((r) => r.firedLateMs)),
        'TimerFired → postEvent started': summarize(records.map((r) => r.firedToStartMs)),
      },
      errors: [
        ...run.errors,
        ...startErrors,
        ...historyErrors,
        ...(count('PENDING') > 0 ? [`${count('PENDING')} events still PENDING at the drain timeout`] : []),
      ],
    };
  } finally {
    await worker.stop();
    await client?.connection.close();
    await own?.stop();
  }
}

const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a !== null && a !== undefined && b !== null && b !== undefined && b > 0
    ? Math.round((a / b) * 100) / 100
    : null;

export async function runNotify(ctx: BenchContext, options: NotifyOptions): Promise<NotifyResult> {
  const ladderMs = DELIVERY_LADDERS[options.ladder].map((s) =>
    Math.max(1, Math.round(s * options.ladderScale)),
  );
  const tag = Date.now().toString(36);
  const ttlEvents = makeEvents(`${tag}t`, options.events, options.failFirst, options.seed);
  const wfEvents = makeEvents(`${tag}p`, options.events, options.failFirst, options.seed);
  const secret = newWebhookSecret();
  const ids = { ttl: `bench-ttl-${tag}`, payrecon: `bench-payrecon-${tag}` };

  // The bench database only: earlier runs' events, attempts and endpoints go.
  await ctx.sql`truncate merchant_events, notification_attempts, merchant_endpoints`;
  const port = await freePort();
  const simulator = new BenchProcess('merchant', 'tools/merchant/server.ts', {
    ...configEnv(ctx.config),
    MERCHANT_PORT: String(port),
    MERCHANT_SECRETS: JSON.stringify({ [ids.ttl]: [secret], [ids.payrecon]: [secret] }),
    LOG_LEVEL: 'info',
  });
  try {
    await simulator.waitFor(/"msg":"merchant simulator listening"/, 60_000);
    const merchant = new MerchantClient(`http://127.0.0.1:${port}`);
    await ctx.sql`truncate merchant.deliveries, merchant.order_faults`;
    await setFaults(merchant, [...ttlEvents, ...wfEvents]);
    ctx.log(
      `  ${options.events} events at ${options.rate}/s, ladder ${mechanismOf(ladderMs)} (${options.ladder} × ${options.ladderScale}), merchant fails the first k ∈ {${options.failFirst.join(',')}} attempts`,
    );

    const designs: NotifyDesignResult[] = [];
    for (const design of options.order) {
      const result =
        design === 'ttl'
          ? await runTtl(ctx, options, merchant, ids.ttl, secret, ttlEvents, ladderMs)
          : await runPayrecon(ctx, options, merchant, ids.payrecon, secret, wfEvents, ladderMs);
      designs.push(result);
      ctx.log(
        `  ${result.design}: ${result.delivered}/${result.events} delivered, ${result.lateness.count} retries late p50 ${result.lateness.p50} ms, p99 ${result.lateness.p99} ms, max ${result.lateness.max} ms; server CPU ${result.serverCpuMsPerEvent ?? '-'} ms/event${result.errors.length ? `; errors: ${result.errors.join('; ')}` : ''}`,
      );
      await sleep(2_000);
    }
    const mix: Record<string, number> = {};
    for (const e of wfEvents) mix[e.k] = (mix[e.k] ?? 0) + 1;
    const ttl = designs.find((d) => d.design === 'ttl-dlx');
    const wf = designs.find((d) => d.design === 'payrecon');
    return {
      events: options.events,
      rate: options.rate,
      ladder: options.ladder,
      ladderScale: options.ladderScale,
      ladderMs,
      failFirstMix: mix,
      retriesPerEvent:
        Math.round(
          (wfEvents.reduce((a, e) => a + Math.min(e.k, ladderMs.length), 0) / wfEvents.length) * 100,
        ) / 100,
      designs,
      ratio: {
        p50: ratio(ttl?.lateness.p50, wf?.lateness.p50),
        p99: ratio(ttl?.lateness.p99, wf?.lateness.p99),
        max: ratio(ttl?.lateness.max, wf?.lateness.max),
        merchantSeenP99: ratio(ttl?.merchantSeen.p99, wf?.merchantSeen.p99),
        serverCpu: ratio(ttl?.serverCpuMsPerEvent, wf?.serverCpuMsPerEvent),
        serverCpuNet: ratio(ttl?.serverCpuNetMsPerEvent, wf?.serverCpuNetMsPerEvent),
        processCpu: ratio(ttl?.processCpuMsPerEvent, wf?.processCpuMsPerEvent),
      },
    };
  } finally {
    await simulator.stop();
  }
}
