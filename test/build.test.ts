import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliContext } from '../src/cli/context';
import { buildProgram, COMMAND_GROUPS } from '../src/cli/main';
import type { Config } from '../src/platform/config';
import { freePort } from '../tools/net';
import { SimulatorClient } from '../tools/simulator/client';
import { type RunningSimulator, startSimulator } from '../tools/simulator/server';
import { type CliRun, cliEnv, removeOrdersAt, spawnCli } from './support/cli';
import { deleteTopology, eventually, testConfig } from './support/env';

/**
 * What ships, as it ships: `npm run build` (dist/), the worker, consumer and CLI run from dist/ against the
 * real services, the CLI's start-up (no client library for --help), the bin's choice between dist/ and
 * the source, and a lock file `npm ci` accepts on every platform.
 */

const ROOT = path.resolve(__dirname, '..');
const execFileAsync = promisify(execFile);
const { currentBuild } = createRequire(__filename)('../bin/payrecon.js') as {
  currentBuild: (root: string) => string | undefined;
};

/** Client libraries `payrecon --help` must not load (a command loads them when it connects). */
const CLIENT_LIBRARY =
  /[/\\]node_modules[/\\](@temporalio[/\\]|drizzle-orm|postgres|amqplib|amqp-connection-manager)/;

/** Runs the CLI's runCli in a fresh node process; answers its exit code and every module it required. */
async function modulesLoadedBy(mainFile: string, args: string[], nodeArgs: string[] = []) {
  const probe = `
    const sink = { write() {} };
    require(process.argv[1]).runCli(process.argv.slice(2), { env: process.env, stdout: sink, stderr: sink })
      .then((code) => process.stdout.write(JSON.stringify({ code, modules: Object.keys(require.cache) })));`;
  const { stdout } = await execFileAsync(process.execPath, [...nodeArgs, '-e', probe, mainFile, ...args], {
    cwd: ROOT,
  });
  return JSON.parse(stdout) as { code: number; modules: string[] };
}

/** --help and a usage error load no client library; the probe does see them once a group is loaded. */
async function expectLazyStart(mainFile: string, nodeArgs: string[] = []) {
  const help = await modulesLoadedBy(mainFile, ['--help'], nodeArgs);
  expect(help.code).toBe(0);
  expect(help.modules).toContain(mainFile);
  expect(help.modules.filter((file) => CLIENT_LIBRARY.test(file))).toEqual([]);

  const unknown = await modulesLoadedBy(mainFile, ['pay', 'ord_1'], nodeArgs);
  expect(unknown.code).toBe(2);
  expect(unknown.modules.filter((file) => CLIENT_LIBRARY.test(file))).toEqual([]);

  // `order --help` loads the order group, and with it drizzle and the Temporal client.
  const orderHelp = await modulesLoadedBy(mainFile, ['order', '--help'], nodeArgs);
  expect(orderHelp.code).toBe(0);
  expect(orderHelp.modules.filter((file) => CLIENT_LIBRARY.test(file)).length).toBeGreaterThan(0);
}

describe('the CLI starts without its client libraries', () => {
  it('from source: --help loads no Temporal, drizzle, postgres or amqplib module; a command group does', async () => {
    await expectLazyStart(path.join(ROOT, 'src/cli/main.ts'), ['--import', 'tsx']);
  });

  it("the bin's tsx fallback (PAYRECON_FROM_SOURCE=1) runs help and a command group", async () => {
    const env = { ...process.env, PAYRECON_FROM_SOURCE: '1' };
    const bin = path.join(ROOT, 'bin/payrecon.js');
    const help = await spawnCli(process.execPath, [bin, '--help'], env);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: payrecon /);
    const groupHelp = await spawnCli(process.execPath, [bin, 'help', 'dlq'], env);
    expect(groupHelp.code, groupHelp.stderr).toBe(0);
    expect(groupHelp.stdout).toContain('requeue [options] [messageId]');
  });

  it('payrecon --help from the stubs is the help of the fully loaded program, line for line', async () => {
    const sink = { write: () => true };
    const ctx = new CliContext({ env: process.env, stdout: sink, stderr: sink });
    const full = await buildProgram(ctx);
    const stubbed = await buildProgram(ctx, ['--help']);
    expect(stubbed.commands.map((command) => command.name())).toEqual(COMMAND_GROUPS.map((g) => g.name));
    expect(stubbed.helpInformation()).toBe(full.helpInformation());
    // Not vacuous: the fully loaded groups have subcommands or arguments, the stubs have none.
    expect(
      full.commands.every((command) => command.commands.length + command.registeredArguments.length > 0),
    ).toBe(true);
    expect(stubbed.commands.every((command) => command.commands.length === 0)).toBe(true);
  });
});

describe('bin/payrecon.js runs dist/ only while the build is current', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'payrecon-bin-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const at = (file: string, seconds: number) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), '');
    utimesSync(path.join(root, file), seconds, seconds);
  };

  it('no build: the source; a build newer than every source file: dist/; a source edited since: the source', () => {
    at('src/cli/main.ts', 1_000);
    at('workflows/order.ts', 1_000);
    expect(currentBuild(root)).toBeUndefined();
    at('dist/.build-stamp', 2_000);
    expect(currentBuild(root)).toBe(path.join(root, 'dist/src/cli/main.js'));
    at('workflows/order.ts', 3_000);
    expect(currentBuild(root)).toBeUndefined();
    // The image: dist/ and no source at all.
    rmSync(path.join(root, 'src'), { recursive: true });
    rmSync(path.join(root, 'workflows'), { recursive: true });
    expect(currentBuild(root)).toBe(path.join(root, 'dist/src/cli/main.js'));
  });
});

describe('package-lock.json', () => {
  it('has an entry for every optional platform package, so npm ci accepts it anywhere (scripts/complete-lock.sh)', () => {
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string; optionalDependencies?: Record<string, string> }>;
    };
    const missing: string[] = [];
    let optional = 0;
    for (const [key, entry] of Object.entries(lock.packages)) {
      for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
        optional++;
        const candidates = [`${key}/node_modules/${dep}`];
        for (let up = key; up.includes('/node_modules/'); ) {
          up = up.slice(0, up.lastIndexOf('/node_modules/'));
          candidates.push(`${up}/node_modules/${dep}`);
        }
        candidates.push(`node_modules/${dep}`);
        const found = candidates.map((candidate) => lock.packages[candidate]).find(Boolean);
        if (!found) missing.push(`${dep}@${version} (for ${key})`);
      }
    }
    expect(optional).toBeGreaterThan(20);
    expect(missing, `run bash scripts/complete-lock.sh:\n${missing.join('\n')}`).toEqual([]);
  });
});

/** A long-running process whose output is collected; `waitFor` polls it for a line. */
function runProcess(file: string, env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exit,
    output: () => output,
    waitFor: (what: string, pattern: RegExp, timeoutMs = 30_000) =>
      eventually(
        `${what} in the output of ${file}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`${file} exited ${child.exitCode}: ${output}`);
          return output.match(pattern)?.[0];
        },
        timeoutMs,
      ),
  };
}

async function stop(running: { child: ChildProcess; exit: Promise<number | null> } | undefined) {
  if (!running || running.child.exitCode !== null || running.child.signalCode !== null) return running?.exit;
  running.child.kill('SIGTERM');
  return running.exit;
}

describe('dist/: the worker, the consumer and the CLI as the image runs them', () => {
  let config: Config;
  let simulator: RunningSimulator;
  let worker: ReturnType<typeof runProcess> | undefined;
  let consumer: ReturnType<typeof runProcess> | undefined;
  const orders: string[] = [];

  beforeAll(async () => {
    // CI builds here (a fresh clone has no dist/); a developer's current build is used as it is.
    if (!currentBuild(ROOT)) await execFileAsync('bash', ['scripts/build.sh'], { cwd: ROOT });
    // (Not currentBuild again: a source edited while it built makes the new build stale at once.)
    expect(existsSync(path.join(ROOT, 'dist/.build-stamp'))).toBe(true);
    const base = testConfig('dist');
    simulator = await startSimulator({ config: base, port: 0 });
    config = { ...base, PROVIDER_URL: simulator.url };
  }, 180_000);

  afterAll(async () => {
    await stop(worker);
    await stop(consumer);
    if (config) await removeOrdersAt(config, orders);
    await simulator?.close();
    if (config) await deleteTopology(config).catch(() => {});
  });

  it('--help from dist/ loads no client library either', async () => {
    await expectLazyStart(path.join(ROOT, 'dist/src/cli/main.js'));
  });

  const payrecon = (args: string[]): Promise<CliRun> =>
    spawnCli(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), ...args], cliEnv(config));

  it('an order created with the dist CLI is run by the dist worker from the prebuilt bundle and paid over MQ through the dist consumer', async () => {
    const env = {
      ...cliEnv(config),
      PAYRECON_ENV: 'development',
      LOG_LEVEL: 'info',
      WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
      CONSUMER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    };
    worker = runProcess(path.join(ROOT, 'dist/workers/worker.js'), env);
    consumer = runProcess(path.join(ROOT, 'dist/workers/consumer.js'), env);
    const started = await worker.waitFor('worker started', /\{[^\n]*"msg":"worker started"[^\n]*\}/);
    expect(JSON.parse(started)).toMatchObject({
      workflows: 'prebuilt bundle',
      taskQueue: config.TEMPORAL_TASK_QUEUE,
    });
    await consumer.waitFor('consumer connected', /"msg":"connected to RabbitMQ"/);

    const create = await payrecon([
      'order',
      'create',
      '--amount',
      '4200',
      '--pay-within',
      '1h',
      '--ladder',
      '1h',
      '--json',
    ]);
    expect(create.code, create.stderr).toBe(0);
    const { order } = JSON.parse(create.stdout) as { order: { id: string; status: string } };
    orders.push(order.id);
    expect(order.status).toBe('UNPAID');

    // Only a worker answers a query: this one runs the bundle from dist/.
    const query = await payrecon(['query', order.id, '--json']);
    expect(query.code, query.stderr).toBe(0);
    expect(JSON.parse(query.stdout)).toMatchObject({ state: { phase: 'AWAITING_PAYMENT' } });

    await new SimulatorClient(config.PROVIDER_URL).pay(order.id);
    const shown = await eventually('order PAID over MQ', async () => {
      const show = await payrecon(['order', 'show', order.id, '--json']);
      const parsed = JSON.parse(show.stdout) as { order: { status: string; settledBy: string | null } };
      return parsed.order.status === 'PAID' ? parsed.order : undefined;
    });
    expect(shown.settledBy).toBe('mq');

    expect(await stop(worker)).toBe(0);
    expect(await stop(consumer)).toBe(0);
    expect(worker.output()).toContain('"msg":"worker stopped"');
  }, 120_000);
});
