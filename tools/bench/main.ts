import os from 'node:os';
import { parseArgs } from 'node:util';
import ms from 'ms';
import { createDatabase } from '../../src/db/client';
import { connectTemporal } from '../../src/platform/temporal';
import { installWorkerRuntime } from '../../workers/runtime';
import { chartRun } from './chart';
import { CRON_INTERVAL_MS, type CronBaselineResult, runCronBaseline } from './cron-baseline';
import {
  type E2EResult,
  type PayreconDesign,
  type PayreconVariant,
  payreconOrderFactory,
  runE2E,
  type StartDelay,
  startPayrecon,
  type VerifyNotices,
} from './e2e';
import { type FallbackResult, runFallback } from './fallback';
import type { BenchContext } from './lib/context';
import { DEV_SERVER_PRAGMAS, startDedicatedDevServer } from './lib/dev-server';
import { benchConfig, prepareBroker, prepareDatabase, sleep, terminateLeftovers } from './lib/env';
import { SettlementWatcher } from './lib/paid-watch';
import { stopEverything } from './lib/procs';
import { startSimulatorProcess } from './lib/simulator';
import { type NotifyOptions, type NotifyResult, runNotify } from './notify';
import { type ReconOptions, type ReconResult, runRecon } from './recon';
import {
  type BenchReport,
  goals,
  type LoadStats,
  machineInfo,
  neverPaidQueries,
  ratios,
  renderReport,
  startDelayCost,
  verifyCost,
  writeReport,
} from './report';
import { runScale, type ScaleResult } from './scale';
import {
  parseScaleReal,
  runScaleReal,
  SCALE_REAL_OPTIONS,
  SCALE_REAL_USAGE,
  type ScaleRealResult,
} from './scale-real';
import { type FloorResult, runTemporalFloor } from './temporal-floor';

const usage = `usage: npm run bench -- [options]
  --rates 10,25,50          offered rates, orders per second (default 10,25,50); 0: skip every
                            end-to-end phase (payrecon, fallback, baselines), e.g. to run only --scale
  --duration 10s            how long each rate is offered (default 10s)
  --pay-delay 1s            buyer pays this long after the order was created (default 1s)
  --fallback-orders 30      orders whose notification is dropped (0: skip; default 30)
  --scale 200               scale probe sizes, e.g. 10000,50000,100000 (0: skip; default 200); each
                            on a dedicated, throwaway dev server
  --scale-sample 500        timers of each size that fire during the probe, the others keep waiting
                            (default 500)
  --scale-fire-rate 20      sampled timers due per second (default 20)
${SCALE_REAL_USAGE}
  --skip-baselines          only payrecon: no Temporal floor, no cron baseline
  --worker-options JSON     bench worker with Temporal WorkerOptions, e.g. '{"maxCachedWorkflows":500}'
  --prefetch N              CONSUMER_PREFETCH of payrecon's consumer and the baseline's
  --pool-max N              DATABASE_POOL_MAX of every service process
  --label NAME              name of the payrecon variant in the report
  --verify-notices MODE     VERIFY_PAID_NOTICES of the orders payrecon's end-to-end phase creates:
                            on-mismatch, always, or both (each rate with each mode, back to back on the
                            same processes, plus their ratios); default: VERIFY_PAID_NOTICES of the
                            environment, else on-mismatch
  --start-delay MODE        ORDER_START_DELAY of the orders payrecon's end-to-end phase creates: none,
                            first-step, or both (each rate with each, back to back on the same processes,
                            in alternating order, like --verify-notices both; plus a before/after table);
                            default: ORDER_START_DELAY of the environment, else its default
  --probe-half              after the end-to-end sweep, run every payrecon design again at half of each
                            design's ceiling (highest orders/s settled), and the floor and the seeds'
                            design there too, for goal (b) and (c) of the report's goal table
  --warmup 0s               before the end-to-end phase, each payrecon design at the first rate
                            for this long, not reported (default 0s: none)
  --notify                  the merchant notification ladder: the seed's design (one RabbitMQ delay queue
                            with per-message TTL, dead-lettered to the work queue) beside payrecon's
                            delivery workflows (the real worker, a dedicated dev server), how late each
                            retry fires against its schedule and what a delivery costs
  --notify-events 1000      events per design (default 1000)
  --notify-rate 10          events per second, open loop (default 10)
  --notify-ladder stepwise  stepwise (3s, 30s, 60s, 120s, 180s, 300s) or exponential (5·(2^n−1) s)
  --notify-ladder-scale 0.1 both designs wait the ladder times this (default 0.1: 0.3s, 3s, 6s, ... 30s)
  --notify-fail-first LIST  the merchant fails each event's first k attempts, k drawn uniformly from
                            LIST (default 1,2,3,4,5,6: every event retried, long and short steps mixed)
  --notify-order LIST       which design runs first: ttl,payrecon (default) or payrecon,ttl
  --recon                   the daily reconciliation at scale: a day of --recon-rows statement rows against as
                            many orders (seeded once in payrecon_bench_recon, reused), reconciled by the real
                            worker (a dedicated dev server) at two sizes, and a naive loop (one SELECT per
                            row) on the same statement; wall time, phases, rows/s, RSS; a chart beside the JSON
  --recon-rows 1000000      rows of the large day (default 1000000)
  --recon-small-rows N      rows of the small day, for the RSS ratio (default --recon-rows ÷ 10; 0: none)
  --recon-naive-rows 200000 the naive loop reads this many rows of the large day's statement (0: skip)
  --recon-naive-concurrency 8  lookups in flight in the naive loop (default 8)
  --recon-reseed            seed the days again even when their counts are right
  --recon-as-shipped        no ANALYZE between staging and matching (the bench adds one by default: without
                            it the match is quadratic; see tools/bench/README.md); use small sizes
  --recon-timeout 10m       a reconciliation run not done by then is terminated and reported (default 10m)
  --dedicated-server        run everything on a fresh, throwaway dev server instead of TEMPORAL_ADDRESS
  --server-pragmas LIST     --sqlite-pragma values for dedicated dev servers (default: those of
                            scripts/temporal-dev.sh, journal_mode=wal,synchronous=normal; '' for none)
  --json PATH               where to write the JSON (default tools/bench/results/bench-<timestamp>.json)
  --wait-load 1.5           wait (up to --wait-load-max, default 10m) until the 1-min load is below this; 0: don't`;

function parseCli(argv: string[]) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rates: { type: 'string', default: '10,25,50' },
      duration: { type: 'string', default: '10s' },
      'pay-delay': { type: 'string', default: '1s' },
      'fallback-orders': { type: 'string', default: '30' },
      scale: { type: 'string', default: '200' },
      'scale-sample': { type: 'string', default: '500' },
      'scale-fire-rate': { type: 'string', default: '20' },
      ...SCALE_REAL_OPTIONS,
      'dedicated-server': { type: 'boolean', default: false },
      'server-pragmas': { type: 'string', default: DEV_SERVER_PRAGMAS.join(',') },
      'skip-baselines': { type: 'boolean', default: false },
      'worker-options': { type: 'string' },
      prefetch: { type: 'string' },
      'pool-max': { type: 'string' },
      label: { type: 'string' },
      'verify-notices': { type: 'string' },
      'start-delay': { type: 'string' },
      'probe-half': { type: 'boolean', default: false },
      warmup: { type: 'string', default: '0s' },
      notify: { type: 'boolean', default: false },
      'notify-events': { type: 'string', default: '1000' },
      'notify-rate': { type: 'string', default: '10' },
      'notify-ladder': { type: 'string', default: 'stepwise' },
      'notify-ladder-scale': { type: 'string', default: '0.1' },
      'notify-fail-first': { type: 'string', default: '1,2,3,4,5,6' },
      'notify-order': { type: 'string', default: 'ttl,payrecon' },
      'notify-seed': { type: 'string', default: '11' },
      recon: { type: 'boolean', default: false },
      'recon-rows': { type: 'string', default: '1000000' },
      'recon-small-rows': { type: 'string' },
      'recon-naive-rows': { type: 'string', default: '200000' },
      'recon-naive-concurrency': { type: 'string', default: '8' },
      'recon-reseed': { type: 'boolean', default: false },
      'recon-as-shipped': { type: 'boolean', default: false },
      'recon-timeout': { type: 'string', default: '10m' },
      json: { type: 'string' },
      'wait-load': { type: 'string', default: '1.5' },
      'wait-load-max': { type: 'string', default: '10m' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const duration = (name: string, raw: string) => {
    const value = /^\d+$/.test(raw) ? Number(raw) : ms(raw as ms.StringValue);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`--${name} must be a duration such as 15s, got "${raw}"`);
    }
    return value;
  };
  const positive = (name: string, raw: string, allowZero = false) => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
      throw new Error(`--${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got "${raw}"`);
    }
    return value;
  };
  const list = (name: string, raw: string) =>
    raw
      .split(',')
      .map((part) => positive(name, part.trim(), true))
      .filter((n) => n > 0);
  const workerOptions = values['worker-options']
    ? (JSON.parse(values['worker-options']) as Record<string, number>)
    : undefined;
  const variantParts = [
    ...(workerOptions
      ? [
          Object.entries(workerOptions)
            .map(([k, v]) => `${k}=${v}`)
            .join(' '),
        ]
      : []),
    ...(values.prefetch ? [`prefetch ${values.prefetch}`] : []),
    ...(values['pool-max'] ? [`pool ${values['pool-max']}`] : []),
  ];
  const env: Record<string, string> = {};
  if (values.prefetch) env.CONSUMER_PREFETCH = String(positive('prefetch', values.prefetch));
  if (values['pool-max']) env.DATABASE_POOL_MAX = String(positive('pool-max', values['pool-max']));
  const variant: PayreconVariant = {
    name: values.label ?? (variantParts.length > 0 ? variantParts.join(', ') : 'defaults'),
    workerOptions,
    env,
  };
  const verifyRaw = values['verify-notices'] || process.env.VERIFY_PAID_NOTICES || 'on-mismatch';
  const verifyModes: Record<string, VerifyNotices[]> = {
    'on-mismatch': ['on-mismatch'],
    always: ['always'],
    both: ['on-mismatch', 'always'],
  };
  const verify = verifyModes[verifyRaw];
  if (!verify) throw new Error(`--verify-notices must be on-mismatch, always or both, got "${verifyRaw}"`);
  const startDelayModes: Record<string, StartDelay[]> = {
    none: ['none'],
    'first-step': ['first-step'],
    both: ['none', 'first-step'],
  };
  // Unset: whatever the configuration says (ORDER_START_DELAY or its default), resolved in main().
  const startDelayRaw = values['start-delay'] || process.env.ORDER_START_DELAY;
  const startDelays = startDelayRaw ? startDelayModes[startDelayRaw] : null;
  if (startDelayRaw && !startDelays)
    throw new Error(`--start-delay must be none, first-step or both, got "${startDelayRaw}"`);
  // --rates 0: no end-to-end phases at all (e.g. only the scale probe).
  const rates = list('rates', values.rates);
  const ladder = values['notify-ladder'];
  if (ladder !== 'stepwise' && ladder !== 'exponential') {
    throw new Error(`--notify-ladder must be stepwise or exponential, got "${ladder}"`);
  }
  const failFirst = values['notify-fail-first'].split(',').map((part) => {
    const k = Number(part.trim());
    if (!Number.isInteger(k) || k < 0 || k > 100) {
      throw new Error(`--notify-fail-first must be a list of whole numbers 0-100, got "${part}"`);
    }
    return k;
  });
  const order = values['notify-order'].split(',').map((part) => part.trim());
  if (
    order.length === 0 ||
    order.some((d) => d !== 'ttl' && d !== 'payrecon') ||
    new Set(order).size !== order.length
  ) {
    throw new Error(
      `--notify-order must be ttl,payrecon or payrecon,ttl (or one of them), got "${values['notify-order']}"`,
    );
  }
  const notify: Omit<NotifyOptions, 'dedicated' | 'serverPragmas'> | null = values.notify
    ? {
        events: Math.round(positive('notify-events', values['notify-events'])),
        rate: positive('notify-rate', values['notify-rate']),
        ladder,
        ladderScale: positive('notify-ladder-scale', values['notify-ladder-scale']),
        failFirst,
        order: order as NotifyOptions['order'],
        seed: Math.round(positive('notify-seed', values['notify-seed'], true)),
      }
    : null;
  const whole = (name: string, raw: string, allowZero = false) => {
    const value = positive(name, raw, allowZero);
    if (!Number.isSafeInteger(value) || value > 10_000_000)
      throw new Error(`--${name} must be a whole number up to 10000000, got "${raw}"`);
    return value;
  };
  const reconRows = whole('recon-rows', values['recon-rows']);
  const reconSmall = values['recon-small-rows']
    ? whole('recon-small-rows', values['recon-small-rows'], true)
    : Math.floor(reconRows / 10);
  if (values.recon && reconSmall >= reconRows)
    throw new Error('--recon-small-rows must be below --recon-rows');
  const recon: Omit<ReconOptions, 'dedicated' | 'serverPragmas'> | null = values.recon
    ? {
        sizes: [...(reconSmall > 0 ? [reconSmall] : []), reconRows],
        naiveRows: whole('recon-naive-rows', values['recon-naive-rows'], true),
        naiveConcurrency: whole('recon-naive-concurrency', values['recon-naive-concurrency']),
        reseed: values['recon-reseed'],
        asShipped: values['recon-as-shipped'],
        timeoutMs: duration('recon-timeout', values['recon-timeout']),
      }
    : null;
  const serverPragmas = values['server-pragmas']
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  return {
    help: values.help,
    recon,
    scaleReal: parseScaleReal(values, serverPragmas, duration),
    rates,
    durationMs: duration('duration', values.duration),
    payDelayMs: duration('pay-delay', values['pay-delay']),
    fallbackOrders: positive('fallback-orders', values['fallback-orders'], true),
    scale: list('scale', values.scale),
    scaleFireRate: positive('scale-fire-rate', values['scale-fire-rate']),
    scaleSample: positive('scale-sample', values['scale-sample']),
    dedicatedServer: values['dedicated-server'],
    serverPragmas: values['server-pragmas']
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
    skipBaselines: values['skip-baselines'],
    variant,
    verifyModes: verify,
    startDelays,
    probeHalf: values['probe-half'],
    warmupMs: duration('warmup', values.warmup),
    notify,
    json: values.json,
    waitLoad: positive('wait-load', values['wait-load'], true),
    waitLoadMaxMs: duration('wait-load-max', values['wait-load-max']),
  };
}

type Cli = ReturnType<typeof parseCli>;

const load1 = () => os.loadavg()[0] ?? 0;

async function waitForQuietMachine(cli: Cli, log: (line: string) => void) {
  if (cli.waitLoad <= 0) return;
  const until = Date.now() + cli.waitLoadMaxMs;
  let announced = false;
  while (load1() >= cli.waitLoad && Date.now() < until) {
    if (!announced)
      log(`waiting for the 1-min load average (${load1().toFixed(2)}) to drop below ${cli.waitLoad}`);
    announced = true;
    await sleep(5_000);
  }
  if (load1() >= cli.waitLoad)
    log(`load is still ${load1().toFixed(2)}; measuring anyway (see the load line)`);
}

function loadSampler() {
  const samples: number[] = [];
  const timer = setInterval(() => samples.push(load1()), 5_000);
  return {
    stop(before: number[]): LoadStats {
      clearInterval(timer);
      samples.push(load1());
      return {
        before,
        min: Math.min(...samples),
        mean: Math.round((samples.reduce((a, b) => a + b, 0) / samples.length) * 100) / 100,
        max: Math.max(...samples),
        samples: samples.length,
      };
    },
  };
}

/** Half of each design's ceiling (its highest orders/s settled), rounded, when no rate run is that one. */
function halfCeilingRates(results: E2EResult[], ran: number[]): number[] {
  const ceilings = new Map<string, number>();
  for (const r of results) {
    const key = `${r.verifyNotices}|${r.startDelay}`;
    ceilings.set(key, Math.max(ceilings.get(key) ?? 0, r.throughput));
  }
  const halves = [...ceilings.values()].map((c) => Math.max(1, Math.round(c / 2)));
  return [...new Set(halves)].filter((rate) => !ran.includes(rate)).sort((a, b) => a - b);
}

const strip = (results: E2EResult[]) => results.map(({ orderIds: _ids, sentAt: _sent, ...rest }) => rest);

async function main() {
  const cli = parseCli(process.argv.slice(2));
  if (cli.help) {
    console.log(usage);
    return;
  }
  const log = (line: string) => console.log(line);
  const startedAt = new Date().toISOString();
  await waitForQuietMachine(cli, log);
  const loadBefore = os.loadavg();
  const load = loadSampler();

  installWorkerRuntime('WARN');
  const dedicated = cli.dedicatedServer ? await startDedicatedDevServer(cli.serverPragmas) : null;
  if (dedicated) {
    // benchConfig() and the CPU meter read these.
    process.env.TEMPORAL_ADDRESS = dedicated.address;
    process.env.BENCH_TEMPORAL_PID = String(dedicated.pid);
    log(
      `dedicated Temporal dev server at ${dedicated.address}${cli.serverPragmas.length ? ` (${cli.serverPragmas.join(', ')})` : ''}`,
    );
  }
  // The run's own VERIFY_PAID_NOTICES (the fallback phase's orders, every child process): the first
  // mode measured; each end-to-end phase sets its orders' own.
  const baseVerify = cli.verifyModes[0] ?? 'on-mismatch';
  const config = benchConfig({
    ...Object.fromEntries(
      Object.entries({
        CONSUMER_PREFETCH: cli.variant.env?.CONSUMER_PREFETCH,
        DATABASE_POOL_MAX: cli.variant.env?.DATABASE_POOL_MAX,
      })
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, Number(v)]),
    ),
    VERIFY_PAID_NOTICES: baseVerify,
    ...(cli.startDelays?.[0] ? { ORDER_START_DELAY: cli.startDelays[0] } : {}),
  });
  const startDelays = cli.startDelays ?? [config.ORDER_START_DELAY];
  // Every VERIFY_PAID_NOTICES mode with every ORDER_START_DELAY, in the order given.
  const designs: PayreconDesign[] = cli.verifyModes.flatMap((verifyNotices) =>
    startDelays.map((startDelay) => ({ verifyNotices, startDelay })),
  );
  const database = createDatabase(config.DATABASE_URL, { max: 20 });
  log(
    `preparing: database payrecon_bench, RabbitMQ prefix ${config.AMQP_PREFIX}, task queue ${config.TEMPORAL_TASK_QUEUE}`,
  );
  await prepareDatabase(config, () => database.sql);
  await prepareBroker(config);
  const temporal = await connectTemporal(config);
  for (const queue of [config.TEMPORAL_TASK_QUEUE, `${config.TEMPORAL_TASK_QUEUE}-floor`]) {
    const n = await terminateLeftovers(temporal, queue);
    if (n > 0) log(`terminated ${n} workflows an earlier run left on ${queue}`);
  }
  const simulator = await startSimulatorProcess(config);
  const withProvider = { ...config, PROVIDER_URL: simulator.client.url };
  const watcher = new SettlementWatcher(database.sql);
  const ctx: BenchContext = {
    config: withProvider,
    db: database.db,
    sql: database.sql,
    temporal,
    simulator: simulator.client,
    simulatorPid: simulator.process.pid,
    watcher,
    log,
  };
  const fallbackRate = 10;
  const fallbackPayDelayMaxMs = 2_000;

  let payreconE2E: E2EResult[] = [];
  let probeRates: number[] = [];
  let payreconFallback: FallbackResult | null = null;
  let floor: FloorResult[] | null = null;
  let cron: CronBaselineResult | null = null;
  let scale: ScaleResult[] = [];
  let notify: NotifyResult | null = null;
  let recon: ReconResult | null = null;
  let scaleReal: ScaleRealResult | null = null;
  const endToEnd = cli.rates.length > 0;
  try {
    if (endToEnd) {
      log(
        `payrecon (${cli.variant.name}): worker and consumer processes, rates ${cli.rates.join(', ')}/s for ${cli.durationMs / 1000}s each, VERIFY_PAID_NOTICES ${cli.verifyModes.join(' and ')}, ORDER_START_DELAY ${startDelays.join(' and ')}`,
      );
      const service = await startPayrecon(withProvider, cli.variant);
      try {
        payreconE2E = await runE2E(ctx, service, { ...cli, designs });
        if (cli.probeHalf) {
          probeRates = halfCeilingRates(payreconE2E, cli.rates);
          if (probeRates.length > 0) {
            log(`  half of each design's ceiling: ${probeRates.join(', ')}/s, every design`);
            payreconE2E = [
              ...payreconE2E,
              ...(await runE2E(ctx, service, { ...cli, rates: probeRates, designs, warmupMs: 0 })),
            ];
          }
        }
        if (cli.fallbackOrders > 0) {
          payreconFallback = await runFallback(ctx, {
            design: 'payrecon',
            mechanism: `workflow ladder ${config.POLL_LADDER.map((s) => `${s / 1000}s`).join(',')}`,
            createOrder: payreconOrderFactory(ctx),
            orders: cli.fallbackOrders,
            rate: fallbackRate,
            payDelayMaxMs: fallbackPayDelayMaxMs,
            drainTimeoutMs: 90_000,
          });
        }
      } finally {
        await service.stop();
      }
    }

    if (endToEnd && !cli.skipBaselines) {
      log('Temporal floor: bare workflow (start, one signal, one activity), in-process worker');
      floor = await runTemporalFloor(ctx, { ...cli, rates: [...cli.rates, ...probeRates] });
      await database.sql`truncate orders, payment_events, payment_discrepancies`;
      log(`seeds' design: amqplib consumer with a direct conditional update + a scan every 20 s`);
      cron = await runCronBaseline(ctx, {
        ...cli,
        rates: [...cli.rates, ...probeRates],
        fallback:
          cli.fallbackOrders > 0
            ? { orders: cli.fallbackOrders, rate: fallbackRate, payDelayMaxMs: fallbackPayDelayMaxMs }
            : null,
      });
    }

    if (cli.notify) {
      log(
        `merchant notification ladder: the seed's TTL + dead-letter queue, then payrecon's delivery workflows (${dedicated ? 'the run' : 'a'}'s dedicated dev server), ${cli.notify.events} events each`,
      );
      notify = await runNotify(ctx, { ...cli.notify, dedicated, serverPragmas: cli.serverPragmas });
    }

    if (cli.recon) {
      log(
        `daily reconciliation: ${cli.recon.sizes.map((n) => n.toLocaleString('en-US')).join(' and ')} rows (worker on ${dedicated ? "the run's" : 'its own'} dedicated dev server), naive loop on ${cli.recon.naiveRows.toLocaleString('en-US')} rows`,
      );
      recon = await runRecon(ctx, { ...cli.recon, dedicated, serverPragmas: cli.serverPragmas });
    }

    if (cli.scale.length > 0) {
      log(
        `scale probe: ${cli.scale.join(', ')} waiting workflows on dedicated dev servers, ${cli.scaleSample} timers of each due at ${cli.scaleFireRate}/s`,
      );
      scale = await runScale(ctx, {
        sizes: cli.scale,
        sample: cli.scaleSample,
        fireRate: cli.scaleFireRate,
        serverPragmas: cli.serverPragmas,
        startConcurrency: 32,
        workerOptions: cli.variant.workerOptions,
      });
    }
    if (cli.scaleReal) {
      log(
        `scale probe with the real order workflow: ${cli.scaleReal.size.toLocaleString('en-US')} waiting orders, ORDER_START_DELAY ${cli.scaleReal.designs.join(' then ')}, each on a dedicated dev server`,
      );
      scaleReal = await runScaleReal(ctx, cli.scaleReal);
    }
  } finally {
    watcher.close();
    await simulator.process.stop();
    await temporal.connection.close();
    await database.close();
    await dedicated?.stop();
  }

  const report: BenchReport = {
    startedAt,
    finishedAt: new Date().toISOString(),
    command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
    machine: machineInfo(),
    load: load.stop(loadBefore),
    options: {
      rates: cli.rates,
      durationMs: cli.durationMs,
      payDelayMs: cli.payDelayMs,
      fallbackOrders: cli.fallbackOrders,
      fallbackPayDelayMaxMs,
      scale: cli.scale,
      scaleFireRate: cli.scaleFireRate,
      scaleSample: cli.scaleSample,
      temporalServer: dedicated
        ? `dedicated dev server (fresh SQLite file${cli.serverPragmas.length ? `, ${cli.serverPragmas.join(', ')}` : ''})`
        : `${config.TEMPORAL_ADDRESS} (shared)`,
      verifyNotices: cli.verifyModes,
      startDelay: startDelays,
      probeHalf: cli.probeHalf,
      probeRates,
      warmupMs: cli.warmupMs,
      settlementPollMs: 25,
      latencyClock:
        'orders.updated_at (Postgres now() of the conditional update) − time the pay request was sent',
    },
    payrecon: { variant: cli.variant, e2e: strip(payreconE2E), fallback: payreconFallback },
    floor,
    cron: cron ? { e2e: strip(cron.e2e), fallback: cron.fallback } : null,
    ratios: ratios(
      payreconE2E.filter((r) => r.verifyNotices === baseVerify),
      floor,
      cron,
    ),
    goals: goals(strip(payreconE2E.filter((r) => r.verifyNotices === baseVerify)), floor, cron),
    startDelayCost: startDelayCost(strip(payreconE2E)),
    verifyCost: verifyCost(payreconE2E),
    scale,
    scaleReal,
    notify,
    recon,
    neverPaidQueries: neverPaidQueries(
      config.POLL_LADDER,
      config.POLL_REPEAT,
      config.PAY_DEADLINE,
      CRON_INTERVAL_MS,
    ),
  };
  console.log(`\n${renderReport(report)}`);
  const jsonPath = writeReport(report, cli.json);
  console.log(`\nJSON: ${jsonPath}`);
  await chartRun(report, jsonPath, log);
  if (report.recon && report.recon.errors.length > 0) {
    // The numbers are kept (above), but a reconciliation that found other breaks than the seed put
    // there measured something else: the run fails.
    console.error(`reconciliation phase FAILED its checks:\n  ${report.recon.errors.join('\n  ')}`);
    process.exitCode = 1;
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping every process the bench started`);
    void stopEverything().finally(() => process.exit(130));
  });
}

main().catch(async (error) => {
  console.error(`bench failed: ${error instanceof Error ? error.stack : String(error)}`);
  await stopEverything();
  process.exit(/must be|needs|Unknown option|unexpected/i.test(String(error)) ? 2 : 1);
});
