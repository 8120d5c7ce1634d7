import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  assertSecretsConfigured,
  ConfigError,
  DEVELOPMENT_HMAC_SECRET,
  loadConfig,
} from '../src/platform/config';
import { formatDuration, ladderDelay } from '../workflows/ladder';

describe('configuration from the environment', () => {
  it('defaults to the local services', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/payrecon',
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672',
      POLL_LADDER: [3_000, 30_000, 60_000, 120_000, 180_000, 300_000],
      POLL_REPEAT: 300_000,
      PAY_DEADLINE: 1_800_000,
    });
  });

  it('parses durations and lists of durations', () => {
    const config = loadConfig({
      POLL_LADDER: '1s, 2500, 1m',
      PAY_DEADLINE: '2h',
      CONSUMER_METRICS_ADDRESS: 'off',
      WORKER_MAX_CACHED_WORKFLOWS: '500',
    });
    expect(config.WORKER_MAX_CACHED_WORKFLOWS).toBe(500);
    expect(loadConfig({}).WORKER_MAX_CACHED_WORKFLOWS).toBeUndefined();
    expect(config.POLL_LADDER).toEqual([1_000, 2_500, 60_000]);
    expect(config.PAY_DEADLINE).toBe(7_200_000);
    expect(config.CONSUMER_METRICS_ADDRESS).toBeUndefined();
  });

  it.each([
    ['TEMPORAL_ADDRESS', 'localhost'],
    ['DATABASE_URL', 'mysql://x@y/z'],
    ['AMQP_URL', 'not a url'],
    ['POLL_LADDER', '3s,soon'],
    ['PAY_DEADLINE', '-5m'],
    ['CONSUMER_PREFETCH', '0'],
    ['WORKER_MAX_CACHED_WORKFLOWS', 'lots'],
    ['NOTIFY_HMAC_SECRET', 'short'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}=`));
  });

  it('a process started with a bad value exits non-zero and says which variable', () => {
    const tsx = path.resolve(__dirname, '../node_modules/.bin/tsx');
    const run = spawnSync(tsx, [path.resolve(__dirname, '../workers/worker.ts')], {
      env: { ...process.env, DATABASE_URL: 'nope' },
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/DATABASE_URL="nope": must be a URL/);
  });
});

describe('the notification secret', () => {
  const consumer = path.resolve(__dirname, '../workers/consumer.ts');
  const tsx = path.resolve(__dirname, '../node_modules/.bin/tsx');

  it('outside development, a consumer with the public development secret refuses to start and says why', () => {
    const run = spawnSync(tsx, [consumer], {
      env: { ...process.env, PAYRECON_ENV: 'production', NOTIFY_HMAC_SECRET: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/NOTIFY_HMAC_SECRET is not set/);
    // The message names the variable, never the secret itself.
    expect(run.stderr).not.toContain(DEVELOPMENT_HMAC_SECRET);
  });

  it('is accepted in development, or when a secret of its own is set', () => {
    expect(() => assertSecretsConfigured(loadConfig({ PAYRECON_ENV: 'development' }))).not.toThrow();
    expect(() =>
      assertSecretsConfigured(loadConfig({ NOTIFY_HMAC_SECRET: 'a-secret-of-our-own-32-bytes-long' })),
    ).not.toThrow();
    expect(() => assertSecretsConfigured(loadConfig({}))).toThrow(ConfigError);
  });
});

describe('polling ladder', () => {
  const ladder = { stepsMs: [3_000, 30_000], repeatMs: 300_000 };
  it('walks the steps, then repeats', () => {
    expect([0, 1, 2, 9].map((step) => ladderDelay(ladder, step))).toEqual([3_000, 30_000, 300_000, 300_000]);
  });
  it('formats delays for Web UI summaries', () => {
    expect([3_000, 90_000, 1_800_000, 3_723_000, 200].map(formatDuration)).toEqual([
      '3s',
      '1m30s',
      '30m',
      '1h2m3s',
      '200ms',
    ]);
  });
});
