import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import amqplib from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signBody } from '../src/mq/notification';
import { declareTopology, TRADE_PAID_ROUTING_KEY, topologyFor } from '../src/mq/topology';
import { deleteTopology, eventually, testConfig } from './support/env';

const run = promisify(execFile);
const RABBITMQCTL = process.env.RABBITMQCTL ?? '/usr/sbin/rabbitmqctl';

/**
 * A run with known secrets (the HMAC secret, a PostgreSQL password, a RabbitMQ password of a user made
 * for this test) at the most verbose log level, through a normal run, bad messages, services that are
 * down and bad configuration: no line any process prints contains one of them.
 */
describe('no secret in any log line or error message', () => {
  const hmacSecret = `hmac-${randomUUID()}`;
  const dbPassword = `db-${randomUUID().slice(0, 12)}`;
  const amqpUser = `payrecon-secrets-${randomUUID().slice(0, 8)}`;
  const amqpPassword = `mq-${randomUUID().slice(0, 12)}`;
  const secrets = [hmacSecret, dbPassword, amqpPassword];
  const config = testConfig('secrets');
  const topology = topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY);
  const amqpUrl = `amqp://${amqpUser}:${amqpPassword}@127.0.0.1:5672`;
  // Trust authentication on the test database ignores the password: it still travels in the URL.
  const databaseUrl = config.DATABASE_URL.replace('postgres@', `postgres:${dbPassword}@`);
  const env = {
    ...process.env,
    PAYRECON_ENV: 'production',
    LOG_LEVEL: 'trace',
    AMQP_PREFIX: config.AMQP_PREFIX,
    TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
    CONSUMER_METRICS_ADDRESS: 'off',
    WORKER_METRICS_ADDRESS: 'off',
    CONSUMER_RETRY_DELAY: '200',
    CONSUMER_MAX_ATTEMPTS: '2',
    NOTIFY_HMAC_SECRET: hmacSecret,
    DATABASE_URL: databaseUrl,
    AMQP_URL: amqpUrl,
  };
  const output: string[] = [];
  const children: ChildProcess[] = [];

  const start = (file: string, overrides: Record<string, string> = {}) => {
    // One node process with tsx's loader (not the tsx CLI, whose child would outlive a SIGKILL of it).
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      env: { ...env, ...overrides },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    children.push(child);
    return child;
  };
  const exited = (child: ChildProcess) =>
    new Promise<number | null>((resolve) =>
      child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code)),
    );

  beforeAll(async () => {
    await run(RABBITMQCTL, ['add_user', amqpUser, amqpPassword]);
    await run(RABBITMQCTL, ['set_permissions', '-p', '/', amqpUser, '.*', '.*', '.*']);
  });
  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await run(RABBITMQCTL, ['delete_user', amqpUser]).catch(() => {});
    await deleteTopology(config);
  });

  it('consumer and worker, running and failing, print none of them', async () => {
    const consumer = start('workers/consumer.ts');
    await eventually('consumer started', async () =>
      output.join('').includes('consumer started') ? true : undefined,
    );

    // A forged message, a validly signed one for an unknown order, and one that breaks the schema.
    const connection = await amqplib.connect(amqpUrl);
    const channel = await connection.createConfirmChannel();
    // Declared here too: the consumer's own declaration may still be on its way.
    await declareTopology(channel, topology);
    const publish = (body: string, signature: string) =>
      channel.publish(topology.paymentExchange, TRADE_PAID_ROUTING_KEY, Buffer.from(body), {
        persistent: true,
        messageId: randomUUID(),
        headers: { 'x-signature': signature },
      });
    const unknown = JSON.stringify({
      version: 1,
      messageId: randomUUID(),
      orderId: `ghost_${randomUUID().slice(0, 8)}`,
      tradeNo: 'T1',
      status: 'TRADE_SUCCESS',
      amount: 1,
      currency: 'CNY',
      paidAt: new Date().toISOString(),
    });
    publish(unknown, signBody(unknown, 'not-the-secret'));
    publish(unknown, signBody(unknown, hmacSecret));
    publish('{"version":1}', signBody('{"version":1}', hmacSecret));
    await channel.waitForConfirms();
    await connection.close();
    await eventually('three messages parked', async () =>
      (output.join('').match(/notification parked/g) ?? []).length >= 3 ? true : undefined,
    );
    consumer.kill('SIGTERM');
    await exited(consumer);

    // Services that are down: each error names the service and its URL, without the password.
    const worker = start('workers/worker.ts', {
      DATABASE_URL: databaseUrl.replace('127.0.0.1:5432', '127.0.0.1:1'),
    });
    expect(await exited(worker)).toBe(1);
    const noBroker = start('workers/consumer.ts', { AMQP_URL: amqpUrl.replace(':5672', ':1') });
    await eventually('the consumer says RabbitMQ is not reachable', async () =>
      output.join('').includes('RabbitMQ is not reachable') ? true : undefined,
    );
    noBroker.kill('SIGKILL');

    // Bad configuration: the variable is named, its value is not printed.
    const badSecret = start('workers/consumer.ts', { NOTIFY_HMAC_SECRET: dbPassword.slice(0, 10) });
    expect(await exited(badSecret)).toBe(1);
    const badUrl = start('workers/worker.ts', {
      DATABASE_URL: `postgres://postgres:${dbPassword}@127.0.0.1:port/x`,
    });
    expect(await exited(badUrl)).toBe(1);

    const all = output.join('');
    expect(all).toContain('PostgreSQL is not reachable');
    expect(all).toContain('NOTIFY_HMAC_SECRET=(hidden');
    expect(all).toMatch(/DATABASE_URL="postgres:\/\/postgres:\*\*\*@/);
    for (const secret of secrets) expect(all).not.toContain(secret);
    expect(all).not.toContain(dbPassword.slice(0, 10));
  });
});
