import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { amqpUrls, BrokerUnreachableError, connectAny } from '../src/mq/connect';
import {
  assertSecretsConfigured,
  ConfigError,
  DEVELOPMENT_HMAC_SECRET,
  loadConfig,
} from '../src/platform/config';
import { describeEnvValue, redactUrl } from '../src/platform/redact';
import { temporalConnectionOptions } from '../src/platform/temporal';
import { splitUrlList } from '../src/platform/url-list';
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

describe('AMQP_URL with every node of a cluster', () => {
  it('takes a comma-separated list, each URL checked, normalised without spaces', () => {
    const config = loadConfig({
      AMQP_URL: 'amqp://guest:guest@127.0.0.1:5701, amqp://guest:guest@127.0.0.1:5702,amqps://u:p@mq3:5671',
    });
    expect(config.AMQP_URL).toBe(
      'amqp://guest:guest@127.0.0.1:5701,amqp://guest:guest@127.0.0.1:5702,amqps://u:p@mq3:5671',
    );
    expect(amqpUrls(config.AMQP_URL)).toHaveLength(3);
    // The single-URL form is unchanged.
    expect(amqpUrls(loadConfig({}).AMQP_URL)).toEqual(['amqp://guest:guest@127.0.0.1:5672']);
  });

  it('a comma inside a password does not split the URL', () => {
    expect(splitUrlList('amqp://u:pa,ss@h1:5672,amqp://u:pa,ss@h2:5672')).toEqual([
      'amqp://u:pa,ss@h1:5672',
      'amqp://u:pa,ss@h2:5672',
    ]);
  });

  it('names a bad URL of the list by its position, never prints a password', () => {
    const run = () => loadConfig({ AMQP_URL: 'amqp://u:hunter2-secret@h1:5672,http://u:hunter2-secret@h2' });
    expect(run).toThrow(ConfigError);
    expect(run).toThrow(/AMQP_URL=.*URL 2 of 2 must start with amqp:\/\/ or amqps:\/\//);
    expect(() => run()).not.toThrow(/hunter2-secret/);
  });

  it('redacts the password of every URL of the list', () => {
    expect(redactUrl('amqp://u:one@h1:5701,amqp://u:two@h2:5702')).toBe(
      'amqp://u:***@h1:5701,amqp://u:***@h2:5702',
    );
  });

  it('connectAny tries each node in turn and names each one, password hidden, when none answers', async () => {
    const error = await connectAny('amqp://u:s3cret-pw@127.0.0.1:1,amqp://u:s3cret-pw@127.0.0.1:2', {
      timeoutMs: 2_000,
    }).catch((e: unknown) => e as Error);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect((error as Error).message).toMatch(/127\.0\.0\.1:1.*127\.0\.0\.1:2/);
    expect((error as Error).message).not.toContain('s3cret-pw');
  });
});

describe('Temporal over TLS (Temporal Cloud, a self-hosted cluster)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'payrecon-tls-'));
  const cert = path.join(dir, 'client.pem');
  const key = path.join(dir, 'client.key');
  writeFileSync(cert, 'CERT');
  writeFileSync(key, 'KEY');

  it('no TLS setting: plain gRPC to the address (the local dev server)', () => {
    expect(temporalConnectionOptions(loadConfig({}))).toEqual({ address: '127.0.0.1:7233' });
  });

  it('a client certificate and key: mTLS with that pair', () => {
    const config = loadConfig({
      TEMPORAL_ADDRESS: 'payrecon.a1b2c.tmprl.cloud:7233',
      TEMPORAL_TLS_CERT_PATH: cert,
      TEMPORAL_TLS_KEY_PATH: key,
    });
    expect(temporalConnectionOptions(config)).toEqual({
      address: 'payrecon.a1b2c.tmprl.cloud:7233',
      tls: { clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') } },
    });
  });

  it('an API key: TLS on, the key as the bearer token', () => {
    const config = loadConfig({ TEMPORAL_API_KEY: 'tc-api-key-0123456789' });
    expect(temporalConnectionOptions(config)).toEqual({
      address: '127.0.0.1:7233',
      tls: {},
      apiKey: 'tc-api-key-0123456789',
    });
  });

  it('rejects a certificate without its key, and a path that is not a readable file', () => {
    expect(() => loadConfig({ TEMPORAL_TLS_CERT_PATH: cert })).toThrow(/TEMPORAL_TLS_KEY_PATH=\(unset\)/);
    expect(() =>
      loadConfig({ TEMPORAL_TLS_CERT_PATH: path.join(dir, 'nope.pem'), TEMPORAL_TLS_KEY_PATH: key }),
    ).toThrow(/TEMPORAL_TLS_CERT_PATH=.*must be the path of a readable file/);
  });

  it('never prints the API key: a bad value is shown by its length', () => {
    const run = () => loadConfig({ TEMPORAL_API_KEY: 'tc-api-key-0123456789', TEMPORAL_ADDRESS: 'nope' });
    expect(run).toThrow(ConfigError);
    expect(run).not.toThrow(/tc-api-key-0123456789/);
    expect(describeEnvValue('TEMPORAL_API_KEY', 'tc-api-key-0123456789')).toBe('(hidden, 21 characters)');
  });
});
