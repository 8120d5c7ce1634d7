import { spawn } from 'node:child_process';
import type { ProgramRunner } from '../../src/cli/program';
import { createDatabase } from '../../src/db/client';
import { orderWorkflowId } from '../../src/domain';
import type { Config } from '../../src/platform/config';
import { connectTemporal } from '../../src/platform/temporal';
import type { Stack } from './stack';

/** Running a command-line program (payrecon's CLI, the simulator's) the way the CLI tests do. */

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a CLI run sees: the test's configuration, plus overrides. */
export function cliEnv(config: Config, overrides: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: config.DATABASE_URL,
    AMQP_URL: config.AMQP_URL,
    AMQP_PREFIX: config.AMQP_PREFIX,
    CONSUMER_RETRY_DELAY: String(config.CONSUMER_RETRY_DELAY),
    TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS,
    TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
    TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
    PROVIDER_URL: config.PROVIDER_URL,
    NOTIFY_HMAC_SECRET: config.NOTIFY_HMAC_SECRET,
    LOG_LEVEL: 'silent',
    ...overrides,
  };
}

/**
 * A program run in-process (the bin's code path, output captured) against `config()`: `cli` for any
 * outcome, `cliJson` for the `--json` output of a command that must succeed.
 */
export function inProcessCli(run: ProgramRunner, config: () => Config) {
  const cli = async (args: string[], env: Record<string, string> = {}): Promise<CliRun> => {
    let stdout = '';
    let stderr = '';
    const code = await run(args, {
      env: cliEnv(config(), env),
      stdout: { write: (chunk: string) => (stdout += chunk) },
      stderr: { write: (chunk: string) => (stderr += chunk) },
    });
    return { code, stdout, stderr };
  };
  const cliJson = async <T = Record<string, unknown>>(args: string[]): Promise<T> => {
    const result = await cli([...args, '--json']);
    if (result.code !== 0) throw new Error(`${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  };
  return { cli, cliJson };
}

/** A real process (e.g. `node bin/payrecon.js ...`), with the output a shell sees. */
export function spawnCli(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** Removes what a test file's orders left: their workflows terminated, their rows and trades deleted. */
export async function removeOrders(
  stack: Pick<Stack, 'temporal' | 'sql'> | undefined,
  ids: string[],
): Promise<void> {
  if (!stack || ids.length === 0) return;
  for (const id of ids) {
    await stack.temporal.workflow
      .getHandle(orderWorkflowId(id))
      .terminate('test cleanup')
      .catch(() => {});
  }
  await stack.sql`delete from payment_events where order_id = any(${ids})`;
  await stack.sql`delete from payment_discrepancies where order_id = any(${ids})`;
  await stack.sql`delete from provider.trades where order_id = any(${ids})`;
  await stack.sql`delete from orders where id = any(${ids})`;
}

/** removeOrders for a test without a stack (its processes run apart): its own connections to `config`. */
export async function removeOrdersAt(config: Config, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  const temporal = await connectTemporal(config);
  const database = createDatabase(config.DATABASE_URL, { max: 1 });
  try {
    await removeOrders({ temporal, sql: database.sql }, ids);
  } finally {
    await temporal.connection.close();
    await database.close();
  }
}
