import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/main';
import type { Config } from '../src/platform/config';
import { freePort } from '../tools/net';
import { nextRestartDelay } from '../tools/service';
import { SimulatorClient } from '../tools/simulator/client';
import { cliEnv, inProcessCli, removeOrdersAt } from './support/cli';
import { deleteTopology, eventually, testConfig } from './support/env';

/**
 * `npm start` (tools/service.ts) supervises the local stack: a process that dies is restarted with
 * backoff and a line that says so, and the others keep running. Real processes: the entry itself, with
 * simulator, worker and consumer as its children, against the real services.
 */

const ROOT = path.resolve(__dirname, '..');

describe('restart backoff', () => {
  it('1 s, 2 s, 4 s ... capped at 30 s, and 1 s again after a process ran a while', () => {
    const delays: number[] = [];
    let delay: number | undefined;
    for (let restart = 0; restart < 8; restart++) {
      delay = nextRestartDelay(delay, 500);
      delays.push(delay);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
    expect(nextRestartDelay(30_000, 59_999)).toBe(30_000);
    expect(nextRestartDelay(30_000, 60_000)).toBe(1_000);
    expect(nextRestartDelay(undefined, 0, { initialDelayMs: 200, maxDelayMs: 500 })).toBe(200);
    expect(nextRestartDelay(400, 0, { initialDelayMs: 200, maxDelayMs: 500 })).toBe(500);
  });
});

describe('npm start: a supervised local stack', () => {
  let config: Config;
  let merchantPort: number;
  let service: ChildProcess | undefined;
  let output = '';
  let exit: Promise<number | null> | undefined;
  const orders: string[] = [];
  const { cliJson } = inProcessCli(runCli, () => config);

  beforeAll(async () => {
    const simulatorPort = await freePort();
    merchantPort = await freePort();
    config = testConfig('service', {
      SIMULATOR_PORT: String(simulatorPort),
      PROVIDER_URL: `http://127.0.0.1:${simulatorPort}`,
      WORKER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
      CONSUMER_METRICS_ADDRESS: `127.0.0.1:${await freePort()}`,
    });
  });

  afterAll(async () => {
    if (service && service.exitCode === null && service.signalCode === null) {
      service.kill('SIGTERM');
      await exit;
    }
    await removeOrdersAt(config, orders);
    await deleteTopology(config).catch(() => {});
  });

  /** The pids `name` had, in order: from the start line, then from each restart line. */
  const pidsOf = (name: string) => {
    const startLine = output.match(/^payrecon: (.*) started \(task queue/m)?.[1] ?? '';
    const first = startLine.match(new RegExp(`\\b${name} \\(pid (\\d+)\\)`))?.[1];
    const restarts = [...output.matchAll(new RegExp(`^payrecon: ${name} restarted \\(pid (\\d+)`, 'gm'))];
    return [first, ...restarts.map((match) => match[1])].filter(Boolean).map(Number);
  };
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  it('a SIGKILLed worker is restarted after 1 s with a line that names it; the stack still settles orders', async () => {
    service = spawn(process.execPath, ['--import', 'tsx', 'tools/service.ts'], {
      cwd: ROOT,
      env: {
        ...cliEnv(config),
        SIMULATOR_PORT: String(config.SIMULATOR_PORT),
        MERCHANT_PORT: String(merchantPort),
        WORKER_METRICS_ADDRESS: config.WORKER_METRICS_ADDRESS,
        CONSUMER_METRICS_ADDRESS: config.CONSUMER_METRICS_ADDRESS,
        PAYRECON_ENV: 'development',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const running = service;
    exit = new Promise((resolve) => running.once('exit', (code) => resolve(code)));
    running.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    running.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const workerStarts = () => output.split('"msg":"worker started"').length - 1;
    const waitFor = <T>(what: string, probe: () => T | undefined, timeoutMs = 60_000) =>
      eventually(
        what,
        async () => {
          if (running.exitCode !== null) throw new Error(`npm start exited ${running.exitCode}:\n${output}`);
          return probe();
        },
        timeoutMs,
      );

    await waitFor('the stack up', () =>
      workerStarts() === 1 && output.includes('"msg":"connected to RabbitMQ"') ? true : undefined,
    );
    const [simulatorPid] = pidsOf('simulator');
    const [merchantPid] = pidsOf('merchant');
    const [consumerPid] = pidsOf('consumer');
    const [workerPid] = pidsOf('worker');
    expect(workerPid).toBeGreaterThan(0);

    process.kill(workerPid as number, 'SIGKILL');
    const restarted = await waitFor('the worker restarted', () => pidsOf('worker')[1]);
    expect(output).toContain(`payrecon: worker (pid ${workerPid}) was killed by SIGKILL after`);
    expect(output).toMatch(/worker \(pid \d+\) was killed by SIGKILL after [\d.]+ s; restarting it in 1 s/);
    expect(output).toContain(`payrecon: worker restarted (pid ${restarted}, restart 1)`);
    expect(restarted).not.toBe(workerPid);
    expect(alive(workerPid as number)).toBe(false);
    expect(alive(restarted as number)).toBe(true);
    // The others were left alone.
    expect([simulatorPid, merchantPid, consumerPid].every((pid) => alive(pid as number))).toBe(true);
    expect(pidsOf('simulator')).toEqual([simulatorPid]);
    expect(pidsOf('merchant')).toEqual([merchantPid]);
    expect(pidsOf('consumer')).toEqual([consumerPid]);

    // The new worker does the work: an order paid over MQ is settled through its workflow.
    await waitFor('the new worker started', () => (workerStarts() === 2 ? true : undefined));
    const created = await cliJson<{ order: { id: string } }>([
      'order',
      'create',
      '--amount',
      '3100',
      '--pay-within',
      '1h',
      '--ladder',
      '1h',
    ]);
    orders.push(created.order.id);
    await new SimulatorClient(config.PROVIDER_URL).pay(created.order.id);
    const settled = await eventually('the order PAID', async () => {
      const shown = await cliJson<{ order: { status: string; settledBy: string | null } }>([
        'order',
        'show',
        created.order.id,
      ]);
      return shown.order.status === 'PAID' ? shown.order : undefined;
    });
    expect(settled.settledBy).toBe('mq');

    // Ctrl-C (SIGTERM here) stops every child and exits 0.
    running.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect([simulatorPid, merchantPid, consumerPid, restarted].some((pid) => alive(pid as number))).toBe(
      false,
    );
  }, 180_000);
});
