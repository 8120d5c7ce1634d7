import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../src/platform/config';

const ROOT = path.resolve(__dirname, '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');

/** The processes that make up payrecon, plus the payment simulator standing in for the provider. */
export const SERVICE_PROCESSES = {
  simulator: 'tools/simulator/server.ts',
  worker: 'workers/worker.ts',
  consumer: 'workers/consumer.ts',
} as const;
export type ServiceProcess = keyof typeof SERVICE_PROCESSES;

export interface SpawnServiceOptions {
  env?: NodeJS.ProcessEnv;
  stdio?: 'inherit' | 'ignore' | number;
  /**
   * Run the file as one node process with tsx's loader (`node --import tsx file`) instead of the `tsx`
   * CLI, which runs it in a child node process and only forwards catchable signals: a SIGKILL of the
   * `tsx` wrapper would leave the service itself running. The chaos run sets this to kill for real.
   */
  singleProcess?: boolean;
}

/** Spawns one of the service processes with the project root as working directory. */
export function spawnServiceProcess(name: ServiceProcess, options: SpawnServiceOptions = {}): ChildProcess {
  const [command, args] = options.singleProcess
    ? [process.execPath, ['--import', 'tsx', SERVICE_PROCESSES[name]]]
    : [TSX, [SERVICE_PROCESSES[name]]];
  return spawn(command, args, {
    cwd: ROOT,
    // A local stack with the simulator: the development secret is allowed unless the caller says otherwise.
    env: { PAYRECON_ENV: 'development', ...process.env, ...options.env },
    stdio: ['ignore', options.stdio ?? 'inherit', options.stdio ?? 'inherit'],
  });
}

export interface RunningService {
  /** The current process of each service (a restart replaces the entry). */
  children: Map<ServiceProcess, ChildProcess>;
  /**
   * Resolves when any process exits on its own, with its name and code. Exits caused by stop(), kill()
   * and restart() do not count.
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

/**
 * Starts simulator, worker and consumer as separate processes (as they run in production: each can
 * crash and restart alone). Their JSON logs go to `stdio` (inherit, or a file descriptor).
 */
export function startService(
  options: SpawnServiceOptions & { only?: ServiceProcess[] } = {},
): RunningService {
  const children = new Map<ServiceProcess, ChildProcess>();
  const expectedExits = new WeakSet<ChildProcess>();
  let stopping = false;
  let reportExit: (exit: { name: ServiceProcess; code: number | null }) => void = () => {};
  const firstExit = new Promise<{ name: ServiceProcess; code: number | null }>((resolve) => {
    reportExit = resolve;
  });
  const launch = (name: ServiceProcess) => {
    const child = spawnServiceProcess(name, options);
    children.set(name, child);
    child.once('exit', (code) => {
      if (!stopping && !expectedExits.has(child)) reportExit({ name, code });
    });
    return child;
  };
  const kill = async (name: ServiceProcess, signal: NodeJS.Signals = 'SIGTERM') => {
    const child = children.get(name);
    if (!child) return;
    expectedExits.add(child);
    if (signal === 'SIGTERM') return terminate(child);
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited(child);
  };
  const names = options.only ?? (Object.keys(SERVICE_PROCESSES) as ServiceProcess[]);
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
      await Promise.all([...children.values()].map(terminate));
    },
  };
}

async function main() {
  // Fail here, once, with every bad variable named, rather than in three children.
  const config = loadConfig();
  const service = startService();
  console.error(
    `payrecon: simulator, worker and consumer started (task queue ${config.TEMPORAL_TASK_QUEUE}); Ctrl-C stops them`,
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      await service.stop();
      process.exit(0);
    });
  }
  const { name, code } = await service.firstExit;
  console.error(`payrecon: ${name} exited with code ${code}; stopping the others`);
  await service.stop();
  process.exit(code || 1);
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`payrecon: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
