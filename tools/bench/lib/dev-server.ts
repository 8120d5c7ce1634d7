import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { freePort } from '../../net';
import { sleep } from './env';
import { LOG_DIR, onInterrupt, ROOT } from './procs';

/** The `temporal` CLI: from PATH, else the project's .venv (scripts/setup.sh installs it there). */
export function temporalCli(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).trim() || venvCli();
  } catch {
    return venvCli();
  }
}

function venvCli(): string {
  const bin = path.join(ROOT, '.venv', 'bin', 'temporal');
  if (!existsSync(bin)) throw new Error('no temporal CLI on PATH nor in .venv/bin; run: npm run setup');
  return bin;
}

/** scripts/temporal-dev.sh's --sqlite-pragma values (WAL: see the tuning table in tools/bench/README.md). */
export const DEV_SERVER_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];

export interface DedicatedDevServer {
  address: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * A throwaway Temporal dev server for the bench: the same `temporal server start-dev` and SQLite file
 * persistence as scripts/temporal-dev.sh, in a temporary folder, headless, on a free port. Nobody else
 * uses it, and stopping it discards everything (no cleanup of waiting workflows needed).
 * `pragmas` are passed as --sqlite-pragma (e.g. journal_mode=wal).
 */
export async function startDedicatedDevServer(
  pragmas: string[] = [],
  logDir: string = LOG_DIR,
): Promise<DedicatedDevServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'payrecon-bench-temporal-'));
  const port = await freePort();
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(port),
    '--headless',
    '--db-filename',
    path.join(dir, 'dev.db'),
    '--log-level',
    'warn',
    // scripts/temporal-dev.sh's search attributes: the workflows set them, so a server without one fails them.
    ...[
      'OrderId',
      'PaymentStatus',
      'SettledBy',
      'DeliveryStatus',
      'RefundStatus',
      'ReconDate',
      'ReconStatus',
    ].flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
    ...pragmas.flatMap((pragma) => ['--sqlite-pragma', pragma]),
  ];
  // A fresh clone has no .run/ yet: the dedicated server is often the first thing a bench run starts.
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(path.join(logDir, 'bench-temporal.log'), { flags: 'a' });
  const child: ChildProcess = spawn(temporalCli(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const address = `127.0.0.1:${port}`;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let forget = () => {};
  const stop = async () => {
    forget();
    if (child.exitCode === null && child.signalCode === null) {
      const force = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(force);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  forget = onInterrupt(stop);
  const until = Date.now() + 60_000;
  while (Date.now() < until && child.exitCode === null) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1_000 });
      await connection.close();
      // Search attributes are registered with the namespace at start-up; give the server a moment.
      await sleep(500);
      return { address, pid: child.pid ?? -1, stop };
    } catch {
      await sleep(250);
    }
  }
  await stop();
  throw new Error(
    `the dedicated Temporal dev server did not start on ${address} (log: ${path.join(logDir, 'bench-temporal.log')})`,
  );
}
