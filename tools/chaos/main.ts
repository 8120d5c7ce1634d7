import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ms from 'ms';
import { ChaosCluster, clusterSpec } from './cluster';
import { formatReport } from './report';
import { type ChaosOptions, chaosEnvironment, runChaos } from './run';

/**
 * `npm run chaos`: a batch of orders through their whole lifecycle (payment, refunds, merchant
 * notifications, the day's reconciliation) under notification, refund, merchant and statement faults,
 * process kills and a broker restart (or, with --cluster, the pay-success leader's node stopped on a
 * three-node RabbitMQ cluster), then the invariants checked from Postgres, the simulators' tables
 * and logs, RabbitMQ and Temporal (histories replayed).
 * Exit code: 0 every invariant holds, 1 a violation (or the run failed), 2 bad arguments.
 */

const usage = `usage: npm run chaos -- [options]
  --orders N            orders in the batch (default 1000)
  --seed S              seed of the fault plan and the kill times (default: random, printed)
  --processes P         workers and consumers, P processes each on one task queue and queue (default 2)
  --kills-worker K      SIGKILL and restart a worker K times, alternating (default 3; with 2 or more,
                        the last one during the day's reconciliation)
  --kills-consumer K    SIGKILL and restart a consumer K times, alternating (default 3)
  --kills-in-refund K   a worker SIGKILLs itself inside applyRefund, right after its commit, K times
                        (default 1; the workflow runs applyRefund again over its own write)
  --broker-restarts B   rabbitmqctl stop_app / start_app B times (default 1, 0 with --cluster; affects every
                        user of the broker)
  --cluster             run against a local three-node RabbitMQ cluster (scripts/rabbitmq-cluster.sh; started
                        unless it runs, and then stopped at the end): every process gets all three nodes'
                        URLs; instead of the broker restart the node leading the pay-success quorum queue
                        is stopped mid-stream and started again
  --leader-stops N      with --cluster: stop the pay-success leader's node N times, 5 s each (default 1)
  --merchant-refusals M the merchant simulator refuses every connection for 3 s, M times (default 1)
  --no-exhaust          no orders at the shop that answers 500 to everything (its events end EXHAUSTED
                        130 s after the first attempt; the CI configuration leaves it out to stay short)
  --late-race           late buyers pay as soon as the order row is CLOSED, not once its workflow ended
                        (reproduces the lost-notice bug described in tools/chaos/README.md)
  --pay-within D        each order's pay deadline (default 60s)
  --ladder L            polling ladder; the last step repeats until the deadline (default 2s,4s,8s)
  --rate R              orders created per second (default 10)
  --drain-timeout D     wait this long for queues and workflows (deliveries too) to drain (default 240s)
  --history N           check and replay the histories of at most N orders and N deliveries, spread
                        evenly (default all; every refund's is always checked)
  --json FILE           results file (default tools/chaos/results/chaos-<timestamp>.json)

environment: CHAOS_DATABASE_URL (default database payrecon_chaos on DATABASE_URL's server),
CHAOS_AMQP_PREFIX (payrecon-chaos), CHAOS_TASK_QUEUE (payrecon-chaos), CHAOS_SIMULATOR_PORT (a free port),
RABBITMQCTL (/usr/sbin/rabbitmqctl), CHAOS_CLUSTER (own: nodes payrecon-chaos-rmq1..3 on 5711-5713, data
.run/rabbitmq-cluster-chaos; shared: the script's default cluster, 5701-5703); Temporal, RabbitMQ and the HMAC secret as for the service.`;

export class UsageError extends Error {}

function duration(name: string, raw: string): number {
  const value = /^\d+$/.test(raw) ? Number(raw) : ms(raw as ms.StringValue);
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${name} must be a duration such as 60s or 90000, got "${raw}"`);
  }
  return value;
}

function count(name: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

export function parseChaosArgs(argv: string[]) {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        orders: { type: 'string', default: '1000' },
        seed: { type: 'string' },
        processes: { type: 'string', default: '2' },
        'kills-worker': { type: 'string', default: '3' },
        'kills-in-refund': { type: 'string', default: '1' },
        'merchant-refusals': { type: 'string', default: '1' },
        'kills-consumer': { type: 'string', default: '3' },
        'broker-restarts': { type: 'string' },
        'leader-stops': { type: 'string' },
        cluster: { type: 'boolean', default: false },
        'pay-within': { type: 'string', default: '60s' },
        ladder: { type: 'string', default: '2s,4s,8s' },
        rate: { type: 'string', default: '10' },
        'drain-timeout': { type: 'string', default: '240s' },
        history: { type: 'string' },
        json: { type: 'string' },
        'late-race': { type: 'boolean', default: false },
        'no-exhaust': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const text = (name: string) => String(values[name]);
  const orders = count('orders', text('orders'), 1, 100_000);
  const steps = text('ladder')
    .split(',')
    .map((part) => duration('ladder', part.trim()));
  const payWithinMs = duration('pay-within', text('pay-within'));
  const rate = Number(text('rate'));
  if (!Number.isFinite(rate) || rate <= 0 || rate > 1_000) {
    throw new UsageError(`--rate must be a number of orders per second above 0, got "${text('rate')}"`);
  }
  const cluster = values.cluster === true;
  // The broker restart stops the machine's broker, which a cluster run does not use.
  if (cluster && values['broker-restarts'] !== undefined && text('broker-restarts') !== '0')
    throw new UsageError('--broker-restarts restarts the machine broker: with --cluster use --leader-stops');
  if (!cluster && values['leader-stops'] !== undefined && text('leader-stops') !== '0')
    throw new UsageError('--leader-stops needs --cluster');
  const brokerRestarts =
    values['broker-restarts'] === undefined
      ? cluster
        ? 0
        : 1
      : count('broker-restarts', text('broker-restarts'), 0, 10);
  const leaderStops =
    values['leader-stops'] === undefined
      ? cluster
        ? 1
        : 0
      : count('leader-stops', text('leader-stops'), 0, 10);
  const seed =
    values.seed === undefined
      ? Math.floor(Math.random() * 2 ** 31)
      : count('seed', text('seed'), 0, 2 ** 32 - 1);
  return {
    help: values.help === true,
    json: values.json === undefined ? undefined : text('json'),
    options: {
      orders,
      seed,
      killsWorker: count('kills-worker', text('kills-worker'), 0, 100),
      killsConsumer: count('kills-consumer', text('kills-consumer'), 0, 100),
      killsInRefund: count('kills-in-refund', text('kills-in-refund'), 0, 10),
      brokerRestarts,
      leaderStops,
      cluster,
      processes: count('processes', text('processes'), 1, 8),
      merchantRefusals: count('merchant-refusals', text('merchant-refusals'), 0, 10),
      lateRace: values['late-race'] === true,
      exhaust: values['no-exhaust'] !== true,
      payWithinMs,
      ladder: { stepsMs: steps, repeatMs: steps[steps.length - 1] as number },
      rate,
      drainTimeoutMs: duration('drain-timeout', text('drain-timeout')),
      historyLimit: values.history === undefined ? orders : count('history', text('history'), 0, 100_000),
    },
  };
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parseChaosArgs>;
  try {
    parsed = parseChaosArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`chaos: ${error.message}\n${usage}`);
    return 2;
  }
  if (parsed.help) {
    console.log(usage);
    return 0;
  }
  const root = path.resolve(__dirname, '..', '..');
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const jsonFile = path.resolve(
    parsed.json ?? path.join(root, 'tools', 'chaos', 'results', `chaos-${stamp}.json`),
  );
  const abort = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      console.error(
        `chaos: ${signal}: stopping the service (and starting RabbitMQ or a stopped cluster node again${parsed.options.cluster ? ', then stopping the cluster if this run started it' : ''})`,
      );
      abort.abort(new Error(`interrupted by ${signal}`));
    });
  }
  const log = (line: string) => console.log(`chaos: ${line}`);
  const environment = chaosEnvironment();
  const cluster = parsed.options.cluster ? new ChaosCluster(clusterSpec()) : null;
  let report: Awaited<ReturnType<typeof runChaos>>;
  try {
    const clusterRun = cluster ? { handle: cluster, ...(await cluster.ensure(log)) } : null;
    if (clusterRun) log(`AMQP_URL=${clusterRun.urls}`);
    const options: ChaosOptions = {
      ...parsed.options,
      cluster: clusterRun,
      logFile: path.join(root, '.run', `chaos-${stamp}.log`),
      log,
      signal: abort.signal,
    };
    console.log(`chaos: seed ${options.seed} (repeat with --seed ${options.seed})`);
    report = await runChaos(options, environment);
  } finally {
    // A cluster this run started goes again, whatever happened (a failure, Ctrl-C); one it found running stays.
    if (cluster?.startedHere) {
      log('stopping the RabbitMQ cluster this run started');
      await cluster.stop().catch((error: Error) => console.error(`chaos: ${error.message}`));
    }
  }
  console.log(formatReport(report, { color: process.stdout.isTTY }));
  mkdirSync(path.dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`results: ${path.relative(process.cwd(), jsonFile)}`);
  return report.violations === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(`chaos failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
