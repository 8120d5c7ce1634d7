import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  readdirSync,
  readFileSync,
  type WriteStream,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const LOG_DIR = path.join(ROOT, '.run');

/** Resident memory of one process from /proc/<pid>/status, in MiB: now (VmRSS) and peak (VmHWM). */
export function readMemory(pid: number): { rssMb: number; hwmMb: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) =>
      Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

const TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat. */
export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** Everything a bench run started and must stop, even when interrupted (see stopEverything). */
const cleanups = new Set<() => Promise<void>>();

export function onInterrupt(cleanup: () => Promise<void>): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** Stops every process this run started (SIGINT/SIGTERM of the bench, or a crash). */
export async function stopEverything(): Promise<void> {
  await Promise.allSettled([...cleanups].map((cleanup) => cleanup()));
  cleanups.clear();
}

/**
 * A bench child process: one node process running a TypeScript file through tsx's loader
 * (`node --import tsx file`, not the `tsx` CLI, so the pid is the process whose memory we read).
 * Its output goes to a log file; `waitFor` resolves when a line matches.
 */
export class BenchProcess {
  readonly child: ChildProcess;
  private sampledPeakMb = 0;
  private readonly sampler: NodeJS.Timeout;
  private readonly waiters: { pattern: RegExp; resolve: () => void }[] = [];
  private readonly log: WriteStream;
  readonly exited: Promise<number | null>;

  constructor(
    readonly name: string,
    file: string,
    env: Record<string, string>,
    options: { ipc?: boolean; execArgv?: string[] } = {},
  ) {
    mkdirSync(LOG_DIR, { recursive: true });
    this.log = createWriteStream(path.join(LOG_DIR, `bench-${name}.log`), { flags: 'a' });
    this.log.write(`\n--- ${new Date().toISOString()} ${file}\n`);
    this.child = spawn(process.execPath, [...(options.execArgv ?? []), '--import', 'tsx', file], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? (['ipc'] as const) : [])],
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        this.log.write(`${line}\n`);
        for (const waiter of [...this.waiters]) {
          if (waiter.pattern.test(line)) {
            this.waiters.splice(this.waiters.indexOf(waiter), 1);
            waiter.resolve();
          }
        }
      });
    }
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.sampler = setInterval(() => this.sample(), 200);
    this.sampler.unref();
    const forget = onInterrupt(() => this.stop(5_000));
    this.exited.then(forget);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Resolves when the process prints a line matching `pattern`; rejects if it exits first or on timeout. */
  waitFor(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no line matching ${pattern} within ${timeoutMs / 1000}s`)),
        timeoutMs,
      );
      this.waiters.push({
        pattern,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      this.exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${this.name} exited with code ${code} (log: .run/bench-${this.name}.log)`));
      });
    });
  }

  private sample(): number | null {
    const memory = readMemory(this.pid);
    if (memory) this.sampledPeakMb = Math.max(this.sampledPeakMb, memory.rssMb);
    return memory?.rssMb ?? null;
  }

  cpuSeconds(): number | null {
    return readCpuSeconds(this.pid);
  }

  rssMb(): number | null {
    return this.sample();
  }

  /**
   * Peak RSS since the start or the last resetPeak(): the kernel's VmHWM when it could be reset
   * (`echo 5 > /proc/<pid>/clear_refs`), never below the 200 ms samples.
   */
  peakMb(): number | null {
    this.sample();
    const memory = readMemory(this.pid);
    if (!memory) return this.sampledPeakMb || null;
    return Math.max(memory.hwmMb, this.sampledPeakMb);
  }

  resetPeak(): void {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
    } catch {
      // not allowed here: the sampled peak still resets
    }
    this.sampledPeakMb = 0;
    this.sample();
  }

  send(message: unknown): void {
    this.child.send?.(message as object);
  }

  /** SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    clearInterval(this.sampler);
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const force = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      this.child.kill('SIGTERM');
      await this.exited;
      clearTimeout(force);
    }
    this.log.end();
  }
}

/**
 * The pid of the Temporal dev server in use: BENCH_TEMPORAL_PID, else the one scripts/temporal-dev.sh
 * started when TEMPORAL_ADDRESS is its default address. Null when unknown.
 */
export function temporalServerPid(): number | null {
  const fromEnv = Number(process.env.BENCH_TEMPORAL_PID);
  if (Number.isInteger(fromEnv) && fromEnv > 0) return readMemory(fromEnv) ? fromEnv : null;
  const address = process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233';
  if (!/^(127\.0\.0\.1|localhost):7233$/.test(address)) return null;
  try {
    const pid = Number(readFileSync(path.join(ROOT, '.temporal', 'server.pid'), 'utf8').trim());
    return Number.isInteger(pid) && readMemory(pid) ? pid : null;
  } catch {
    return null;
  }
}

/** A CPU meter over an interval: the machine's busy share (%) and CPU time, and the Temporal dev server's CPU. */
export function cpuMeter() {
  const machine = () => {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    const total = fields.reduce((a, b) => a + b, 0);
    return { idle, total };
  };
  const serverPid = temporalServerPid();
  const m0 = machine();
  const s0 = serverPid ? readCpuSeconds(serverPid) : null;
  return {
    stop(orders: number) {
      const m1 = machine();
      const s1 = serverPid ? readCpuSeconds(serverPid) : null;
      const total = m1.total - m0.total;
      return {
        machineBusyPct: total > 0 ? Math.round((1 - (m1.idle - m0.idle) / total) * 100) : null,
        /** Busy CPU time of all cores over the interval (ms): /proc/stat counts USER_HZ ticks. */
        machineBusyMs: total > 0 ? ((total - (m1.idle - m0.idle)) * 1000) / TICKS_PER_SECOND : null,
        serverCpuMsPerOrder:
          s0 !== null && s1 !== null && orders > 0 ? Math.round(((s1 - s0) * 1000 * 10) / orders) / 10 : null,
      };
    },
  };
}

/** Postgres backends serving `database`: their process title is "postgres: ... <user> <database> <host> ...". */
function postgresBackends(database: string): number[] {
  const title = new RegExp(`^postgres: .*\\s${database.replace(/[^\w]/g, '\\$&')}\\s`);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (title.test(readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ')))
        pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The process listening on a local TCP port (the RabbitMQ broker), from `ss`; null when unknown. */
export function listenerPid(port: number): number | null {
  try {
    const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8', timeout: 5_000 });
    const pid = Number(/pid=(\d+)/.exec(out)?.[1]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export interface AttributedCpu {
  /** CPU ms over the interval of every process the design's orders run through, and the parts. */
  totalMs: number;
  parts: Record<string, number>;
}

/**
 * CPU of the processes one design's orders go through, over an interval: the given processes (worker,
 * consumer, simulator, Temporal server), this bench process (the shop's side: createOrder, the driver),
 * the Postgres backends of `database` (those that start meanwhile count from zero; the shared background
 * writers do not count) and the RabbitMQ broker (shared: others' queues count too). On a shared machine
 * /proc/stat's busy time holds everybody's work; this holds the design's (and the broker's other users').
 */
export function attributedCpuMeter(
  processes: Record<string, number | null | undefined>,
  database: string,
  amqpPort: number,
) {
  const broker = listenerPid(amqpPort);
  const named = Object.entries({ ...processes, broker }).filter(
    (entry): entry is [string, number] => typeof entry[1] === 'number' && entry[1] > 0,
  );
  const bench0 = process.cpuUsage();
  const before = new Map(named.map(([name, pid]) => [name, readCpuSeconds(pid)]));
  const pg0 = new Map(postgresBackends(database).map((pid) => [pid, readCpuSeconds(pid) ?? 0]));
  return {
    stop(): AttributedCpu {
      const parts: Record<string, number> = {};
      for (const [name, pid] of named) {
        const a = before.get(name);
        const b = readCpuSeconds(pid);
        if (a !== null && a !== undefined && b !== null) parts[name] = Math.round((b - a) * 1000);
      }
      let pg = 0;
      for (const pid of postgresBackends(database)) {
        const now = readCpuSeconds(pid);
        if (now !== null) pg += now - (pg0.get(pid) ?? 0);
      }
      parts.postgres = Math.round(pg * 1000);
      const bench = process.cpuUsage(bench0);
      parts.bench = Math.round((bench.user + bench.system) / 1000);
      return { totalMs: Object.values(parts).reduce((a, b) => a + b, 0), parts };
    },
  };
}
