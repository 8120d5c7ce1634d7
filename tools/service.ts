import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { type Config, enabledProviders, loadConfig } from '../src/platform/config';
import { loadMerchantConfig } from './merchant/config';

const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/**
 * The processes that make up payrecon, plus the payment simulator standing in for the provider and the
 * merchant simulator standing in for the shops payrecon notifies (tools/merchant, MERCHANT_PORT 8091).
 */
export const SERVICE_PROCESSES = {
  simulator: 'tools/simulator/server.ts',
  merchant: 'tools/merchant/server.ts',
  worker: 'workers/worker.ts',
  consumer: 'workers/consumer.ts',
  receiver: 'workers/receiver.ts',
} as const;
export type ServiceProcess = keyof typeof SERVICE_PROCESSES;

/**
 * What starts by default: all but the notification receiver, which runs once a provider's notifications
 * are configured (ALIPAY_APP_ID and ALIPAY_PUBLIC_KEY_FILE, or wechatpay enabled) and refuses to start
 * without one.
 */
export function defaultServiceProcesses(
  config: Pick<Config, 'ALIPAY_APP_ID' | 'ALIPAY_PUBLIC_KEY_FILE'> &
    Partial<Pick<Config, 'PAYMENT_PROVIDER' | 'PAYMENT_PROVIDERS'>> = {},
): ServiceProcess[] {
  const wechatpay = config.PAYMENT_PROVIDER
    ? enabledProviders({ ...config, PAYMENT_PROVIDER: config.PAYMENT_PROVIDER }).includes('wechatpay')
    : false;
  const receiver = Boolean(config.ALIPAY_APP_ID || config.ALIPAY_PUBLIC_KEY_FILE) || wechatpay;
  return (Object.keys(SERVICE_PROCESSES) as ServiceProcess[]).filter(
    (name) => name !== 'receiver' || receiver,
  );
}

export interface SpawnServiceOptions {
  env?: NodeJS.ProcessEnv;
  stdio?: 'inherit' | 'ignore' | number;
  /**
   * Run the file as one node process with tsx's loader (`node --import tsx file`) instead of the `tsx`
   * CLI, which runs it in a child node process and only forwards catchable signals: a SIGKILL of the
   * `tsx` wrapper would leave the service itself running. The chaos run and `npm start` set this.
   */
  singleProcess?: boolean;
  /** Another entry file for a process (the chaos run's worker with its fault hooks). */
  scripts?: Partial<Record<ServiceProcess, string>>;
}

/** The merchant simulator's address: what a local stack lets merchant endpoints lead to (SSRF guard). */
export const LOCAL_MERCHANT_ALLOWLIST = '127.0.0.1/32';

/** Spawns one of the service processes with the project root as working directory. */
export function spawnServiceProcess(name: ServiceProcess, options: SpawnServiceOptions = {}): ChildProcess {
  const script = options.scripts?.[name] ?? SERVICE_PROCESSES[name];
  const [command, args] = options.singleProcess
    ? [process.execPath, ['--import', 'tsx', script]]
    : [TSX, [script]];
  return spawn(command, args, {
    cwd: ROOT,
    // A local stack with the simulators: the development secret is allowed, and merchant endpoints may be
    // on this machine (the merchant simulator listens on 127.0.0.1), unless the caller says otherwise.
    env: {
      PAYRECON_ENV: 'development',
      MERCHANT_PRIVATE_ALLOWLIST: LOCAL_MERCHANT_ALLOWLIST,
      ...process.env,
      ...options.env,
    },
    stdio: ['ignore', options.stdio ?? 'inherit', options.stdio ?? 'inherit'],
  });
}

export interface RunningService {
  /** The current process of each service (a restart replaces the entry). */
  children: Map<ServiceProcess, ChildProcess>;
  /**
   * Resolves when any process exits on its own, with its name and code. Exits caused by stop(), kill()
   * and restart() do not count. Under `supervise` that process is also restarted.
   */
  firstExit: Promise<{ name: ServiceProcess; code: number | null }>;
  /**
   * Sends `signal` (default SIGTERM) to one process and resolves once it has exited. A SIGKILL reaches
   * the service itself only with `singleProcess`; otherwise it kills the `tsx` wrapper and orphans it.
   */
  kill(name: ServiceProcess, signal?: NodeJS.Signals): Promise<void>;
  /** Starts the process again (stopping the current one first if it still runs); returns the new one. */
  restart(name: ServiceProcess): Promise<ChildProcess>;
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, then SIGKILL if it is still running after 15 s; resolves once it has exited. */
function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
  child.kill('SIGTERM');
  return exited(child).finally(() => clearTimeout(force));
}

export interface SuperviseOptions {
  /** The delay before the first restart in a row; each further one doubles it. Default 1 s. */
  initialDelayMs?: number;
  /** The longest delay. Default 30 s. */
  maxDelayMs?: number;
  /** A process that ran at least this long before it exited starts the backoff over. Default 60 s. */
  resetAfterMs?: number;
  /** Where the restart lines go. Default: stderr. */
  log?: (line: string) => void;
}

/**
 * The delay before restarting a process that exited after running `ranMs`, when the restart before it
 * waited `previousDelayMs` (undefined: none yet): 1 s, 2 s, 4 s ... up to 30 s, and 1 s again once a
 * process has run for a while.
 */
export function nextRestartDelay(
  previousDelayMs: number | undefined,
  ranMs: number,
  { initialDelayMs = 1_000, maxDelayMs = 30_000, resetAfterMs = 60_000 }: SuperviseOptions = {},
): number {
  if (previousDelayMs === undefined || ranMs >= resetAfterMs) return Math.min(initialDelayMs, maxDelayMs);
  return Math.min(previousDelayMs * 2, maxDelayMs);
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/**
 * Starts simulator, merchant simulator, worker and consumer (and the receiver when `only` names it) as separate processes (as they run in
 * production: each can crash and restart alone). Their JSON logs go to `stdio` (inherit, or a file
 * descriptor).
 *
 * With `supervise`, a process that exits on its own (a crash, a kill from outside) is restarted after a
 * backoff (nextRestartDelay), with a line naming it, its pid, its exit code or signal and the delay; the
 * others keep running. Without it (the demo, the chaos run, which restarts processes itself), nothing is
 * restarted and `firstExit` tells the caller.
 */
export function startService(
  options: SpawnServiceOptions & { only?: ServiceProcess[]; supervise?: boolean | SuperviseOptions } = {},
): RunningService {
  const children = new Map<ServiceProcess, ChildProcess>();
  const expectedExits = new WeakSet<ChildProcess>();
  const supervise = options.supervise === true ? {} : options.supervise || undefined;
  const log = supervise?.log ?? ((line: string) => console.error(line));
  /** Per process under supervision: the delay of its last restart, and the restart waiting to happen. */
  const backoff = new Map<ServiceProcess, { delayMs?: number; restarts: number; timer?: NodeJS.Timeout }>();
  let stopping = false;
  let reportExit: (exit: { name: ServiceProcess; code: number | null }) => void = () => {};
  const firstExit = new Promise<{ name: ServiceProcess; code: number | null }>((resolve) => {
    reportExit = resolve;
  });
  const cancelRestart = (name: ServiceProcess) => {
    const state = backoff.get(name);
    if (state?.timer) clearTimeout(state.timer);
    if (state) state.timer = undefined;
  };
  const scheduleRestart = (
    name: ServiceProcess,
    child: ChildProcess,
    ranMs: number,
    settings: SuperviseOptions,
  ) => {
    const state = backoff.get(name) ?? { restarts: 0 };
    backoff.set(name, state);
    state.delayMs = nextRestartDelay(state.delayMs, ranMs, settings);
    const how = child.signalCode ? `was killed by ${child.signalCode}` : `exited with code ${child.exitCode}`;
    log(
      `payrecon: ${name} (pid ${child.pid}) ${how} after ${seconds(ranMs)}; restarting it in ${seconds(state.delayMs)}`,
    );
    state.timer = setTimeout(() => {
      state.timer = undefined;
      if (stopping) return;
      state.restarts++;
      const next = launch(name);
      log(`payrecon: ${name} restarted (pid ${next.pid}, restart ${state.restarts})`);
    }, state.delayMs);
  };
  const launch = (name: ServiceProcess) => {
    const child = spawnServiceProcess(name, options);
    const startedAt = Date.now();
    children.set(name, child);
    child.once('exit', () => {
      if (stopping || expectedExits.has(child)) return;
      reportExit({ name, code: child.exitCode });
      if (supervise) scheduleRestart(name, child, Date.now() - startedAt, supervise);
    });
    return child;
  };
  const kill = async (name: ServiceProcess, signal: NodeJS.Signals = 'SIGTERM') => {
    cancelRestart(name);
    const child = children.get(name);
    if (!child) return;
    expectedExits.add(child);
    if (signal === 'SIGTERM') return terminate(child);
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited(child);
  };
  const names = options.only ?? defaultServiceProcesses();
  for (const name of names) launch(name);
  return {
    children,
    firstExit,
    kill,
    async restart(name) {
      await kill(name);
      return launch(name);
    },
    async stop() {
      stopping = true;
      for (const name of backoff.keys()) cancelRestart(name);
      await Promise.all([...children.values()].map(terminate));
    },
  };
}

/**
 * `npm start`: the local stack, supervised. Each process runs as one node process (tsx's loader), so the
 * pid in the log is the service itself: `kill -9 <pid>` kills it for real, and it comes back.
 */
async function main() {
  // Fail here, once, with every bad variable named, rather than in each child.
  const config = loadConfig();
  loadMerchantConfig();
  const service = startService({
    singleProcess: true,
    supervise: true,
    only: defaultServiceProcesses(config),
  });
  const pids = [...service.children].map(([name, child]) => `${name} (pid ${child.pid})`).join(', ');
  console.error(
    `payrecon: ${pids} started (task queue ${config.TEMPORAL_TASK_QUEUE}); a process that exits is restarted with backoff; Ctrl-C stops them`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      await service.stop();
      process.exit(0);
    });
  }
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`payrecon: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
