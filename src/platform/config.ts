import { accessSync, constants, statSync } from 'node:fs';
import ms from 'ms';
import { z } from 'zod';
import { PAYMENT_PROVIDERS, type PaymentProvider, reconciledProvider } from '../domain/order';
import { isAllowlist } from '../merchant/destination';
import { loadWechatPayConfig, loadWechatPayNotifyConfig } from '../provider/wechatpay/config';
import { describeEnvValue } from './redact';
import { splitUrlList } from './url-list';

/** A duration such as `30s`, `5m` or a plain number of milliseconds. */
const duration = z.string().transform((raw, ctx) => {
  const value = /^\d+$/.test(raw.trim()) ? Number(raw) : ms(raw.trim() as ms.StringValue);
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${raw}" is not a positive duration (examples: 3s, 5m, 1500)` });
    return z.NEVER;
  }
  return value;
});

/** A comma-separated list of durations, e.g. the polling ladder `3s,30s,60s`. */
const durationList = z.string().transform((raw, ctx) => {
  const steps = raw.split(',').map((part) => duration.safeParse(part.trim()));
  const bad = steps.find((step) => !step.success);
  if (steps.length === 0 || bad) {
    ctx.addIssue({
      code: 'custom',
      message: `"${raw}" must be a comma-separated list of durations, e.g. 3s,30s,60s`,
    });
    return z.NEVER;
  }
  return steps.map((step) => step.data as number);
});

const url = (protocols: string[]) =>
  z.string().refine(
    (raw) => {
      try {
        return protocols.includes(new URL(raw).protocol);
      } catch {
        return false;
      }
    },
    { message: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

/**
 * One URL, or several separated by commas (every node of a cluster), each checked on its own. Normalised
 * to `url1,url2` without spaces; read the parts with splitUrlList. The message names a bad URL by its
 * position only, never by its text (it may hold a password).
 */
const urlList = (protocols: string[]) =>
  z
    .string()
    .superRefine((raw, ctx) => {
      const parts = splitUrlList(raw);
      if (parts.length === 0) {
        ctx.addIssue({ code: 'custom', message: 'must name at least one URL' });
        return;
      }
      const bad = parts.findIndex((part) => !url(protocols).safeParse(part).success);
      if (bad >= 0) {
        ctx.addIssue({
          code: 'custom',
          message:
            parts.length === 1
              ? `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}, or several separated by commas`
              : `URL ${bad + 1} of ${parts.length} must start with ${protocols.map((p) => `${p}//`).join(' or ')}`,
        });
      }
    })
    .transform((raw) => splitUrlList(raw).join(','));

/** A path to a file this process can read (a certificate or key), checked at start-up. */
const readableFile = z.string().refine(
  (raw) => {
    try {
      accessSync(raw, constants.R_OK);
      return statSync(raw).isFile();
    } catch {
      return false;
    }
  },
  { message: 'must be the path of a readable file' },
);

const positiveInt = z.coerce.number().int().positive();

/** host:port, or `off` (then undefined). The default comes before the transform, so `off` stays off. */
const metricsAddress = (fallback: string) =>
  z
    .string()
    .regex(/^(off|[\w.-]+:\d+)$/, 'must be host:port or off')
    .default(fallback)
    .transform((raw) => (raw === 'off' ? undefined : raw));

/** A reconciliation's name: a payment provider, optionally `-<label>` (reconciledProvider). */
export const reconciliationName = z
  .string()
  .regex(/^[a-z0-9-]{1,32}$/, 'lower-case letters, digits and dashes, at most 32')
  .refine((name) => reconciledProvider(name) !== undefined, {
    message: `must start with a payment provider (${PAYMENT_PROVIDERS.join(', ')}), optionally followed by -<label>`,
  });

/** The secret every developer machine shares: public, so never accepted outside development. */
export const DEVELOPMENT_HMAC_SECRET = 'local-dev-secret-change-me';

/**
 * Every setting payrecon reads from the environment. Defaults point at the local services a developer
 * runs (README, "Configuration"); production sets them all explicitly.
 */
export const configSchema = z.object({
  TEMPORAL_ADDRESS: z
    .string()
    .regex(/^[\w.-]+:\d+$/, 'must be host:port')
    .default('127.0.0.1:7233'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  /**
   * mTLS to Temporal Cloud or a TLS-secured self-hosted server: the client certificate and its key (PEM
   * files), set together. Either of them, a CA or an API key turns TLS on.
   */
  TEMPORAL_TLS_CERT_PATH: readableFile.optional(),
  TEMPORAL_TLS_KEY_PATH: readableFile.optional(),
  /** CA that signed a self-hosted server's certificate (PEM); unset: the system's roots (Temporal Cloud). */
  TEMPORAL_TLS_CA_PATH: readableFile.optional(),
  /** Temporal Cloud API key, instead of a client certificate: a secret, never logged (shown by its length). */
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('payrecon-orders'),
  TEMPORAL_UI_URL: url(['http:', 'https:']).default('http://127.0.0.1:8233'),
  DATABASE_URL: url(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/payrecon'),
  DATABASE_POOL_MAX: positiveInt.default(10),
  /** Workflows the worker keeps in memory; unset: the SDK's default from the heap size (~2,300 for 4 GiB). */
  WORKER_MAX_CACHED_WORKFLOWS: positiveInt.max(1_000_000).optional(),
  /** One broker, or every node of a cluster separated by commas (clients reconnect to a surviving one). */
  AMQP_URL: urlList(['amqp:', 'amqps:']).default('amqp://guest:guest@127.0.0.1:5672'),
  /** Prefix of every exchange and queue name, so several environments can share one broker. */
  AMQP_PREFIX: z
    .string()
    .regex(/^[a-z0-9.-]+$/, 'lower-case letters, digits, dots and dashes only')
    .default('payrecon'),
  CONSUMER_PREFETCH: positiveInt.max(10_000).default(50),
  CONSUMER_MAX_ATTEMPTS: positiveInt.max(100).default(5),
  CONSUMER_RETRY_DELAY: duration.default(5_000),
  /** How long the consumer waits for the broker to confirm a message it moved (retry, park). */
  CONSUMER_PUBLISH_TIMEOUT: duration.default(5_000),
  /** How long a stopping consumer waits for the messages in flight before it closes anyway. */
  CONSUMER_CLOSE_TIMEOUT: duration.default(30_000),
  /** development allows the development secret below; anything that runs for real leaves it at production. */
  PAYRECON_ENV: z.enum(['development', 'production']).default('production'),
  /** Shared secret of the HMAC-SHA256 signature on every payment notification. */
  NOTIFY_HMAC_SECRET: z.string().min(16, 'must be at least 16 characters').default(DEVELOPMENT_HMAC_SECRET),
  /**
   * The provider of new orders (an order keeps its own for life): the simulator (PROVIDER_URL), Alipay
   * (ALIPAY_*) or WeChat Pay (WECHATPAY_*, src/provider/wechatpay/config.ts). It must be enabled.
   */
  PAYMENT_PROVIDER: z.enum(PAYMENT_PROVIDERS).default('simulator'),
  /**
   * Every provider the worker and CLI hold a gateway for, separated by commas (a shop may take Alipay and
   * WeChat Pay side by side); unset: PAYMENT_PROVIDER alone. Read it with enabledProviders().
   */
  PAYMENT_PROVIDERS: z
    .string()
    .transform((raw, ctx) => {
      const names = [...new Set(raw.split(',').map((part) => part.trim()))];
      const unknown = names.filter((name) => !(PAYMENT_PROVIDERS as readonly string[]).includes(name));
      if (names.length === 0 || unknown.length > 0) {
        ctx.addIssue({
          code: 'custom',
          message: `must be providers separated by commas, each one of ${PAYMENT_PROVIDERS.join(', ')}`,
        });
        return z.NEVER;
      }
      return names as PaymentProvider[];
    })
    .optional(),
  PROVIDER_URL: url(['http:', 'https:']).default('http://127.0.0.1:8090'),
  /** The Alipay app id (开放平台应用 APPID); required with PAYMENT_PROVIDER=alipay. */
  ALIPAY_APP_ID: z
    .string()
    .regex(/^\d{8,32}$/, 'must be the digits of an Alipay app id')
    .optional(),
  /** The app's RSA2 private key (PEM, PKCS#1 or PKCS#8): a file, so the key never sits in the environment. */
  ALIPAY_PRIVATE_KEY_FILE: readableFile.optional(),
  /** Alipay's RSA2 public key (PEM) from the app's settings: every reply's signature is checked with it. */
  ALIPAY_PUBLIC_KEY_FILE: readableFile.optional(),
  /**
   * The v3 OpenAPI endpoint: https://openapi.alipay.com (production) or
   * https://openapi-sandbox.dl.alipaydev.com (the sandbox, with sandbox app id and keys).
   */
  ALIPAY_ENDPOINT: url(['http:', 'https:']).default('https://openapi.alipay.com'),
  /**
   * Where Alipay sends a trade's notifications (the precreate's notify_url): the receiver's public
   * address, `https://<your host>/notify/alipay`. Unset: no notify_url is sent, and payrecon learns of payments
   * by its queries alone unless the app's own settings name a notification address.
   */
  ALIPAY_NOTIFY_URL: url(['http:', 'https:']).optional(),
  /**
   * The seller's Alipay user id (2088…, the PID): when set, the notification receiver refuses a
   * notification for another seller's trade.
   */
  ALIPAY_SELLER_ID: z
    .string()
    .regex(/^2088\d{12}$/, 'must be an Alipay user id: 2088 and 12 more digits')
    .optional(),
  /** Where the notification receiver (workers/receiver.ts) listens: loopback unless a proxy needs more. */
  RECEIVER_HOST: z.string().min(1).default('127.0.0.1'),
  RECEIVER_PORT: z.coerce.number().int().min(0).max(65_535).default(8093),
  SIMULATOR_PORT: positiveInt.max(65_535).default(8090),
  POLL_LADDER: durationList.default([3_000, 30_000, 60_000, 120_000, 180_000, 300_000]),
  POLL_REPEAT: duration.default(300_000),
  PAY_DEADLINE: duration.default(30 * 60_000),
  /**
   * first-step: an order's workflow starts with a start delay of the ladder's first step, so an order
   * paid over MQ before then is started by the notice's signal-with-start and settles in one workflow
   * task, with no timer; none: it starts at once and waits on a timer (tools/bench/README.md: first-step
   * measured 1.17x the ceiling and 0.67-0.84x the CPU per order of none, so it is the default).
   */
  ORDER_START_DELAY: z.enum(['first-step', 'none']).default('first-step'),
  /**
   * on-mismatch: a paid notice is checked with a trade query when its trade, amount or currency differ
   * from what payrecon knows; always: every paid notice is (one more provider query per paid order).
   */
  VERIFY_PAID_NOTICES: z.enum(['on-mismatch', 'always']).default('on-mismatch'),
  /** Refund queries when no refund notice comes: 10s, then 1m ×5, then 5m, 10m, 20m, 30m ... */
  REFUND_LADDER: durationList.default([
    10_000, 60_000, 60_000, 60_000, 60_000, 60_000, 300_000, 600_000, 1_200_000, 1_800_000,
  ]),
  /** ... then every 30m ... */
  REFUND_REPEAT: duration.default(1_800_000),
  /** ... until the refund deadline: an unanswered refund is then UNKNOWN, for an operator. */
  REFUND_DEADLINE: duration.default(24 * 3_600_000),
  /**
   * The provider whose daily statement `recon` commands reconcile by default (`--provider` names another):
   * its name in ids (`reconciliation-<provider>-<date>`), optionally with `-<label>` after it (e.g.
   * `alipay-staging`) to keep one deployment's runs apart on a shared Temporal namespace. Only that
   * provider's orders are matched. Unset: PAYMENT_PROVIDER (loadConfig).
   */
  RECON_PROVIDER: reconciliationName.default('simulator'),
  /** When the daily run starts, Asia/Shanghai wall time: the statement is ready T+1 around 10:00. */
  RECON_SCHEDULE_AT: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (Asia/Shanghai)')
    .default('10:30'),
  /** How far back missed daily runs are caught up after the server or the schedule was down. */
  RECON_CATCHUP_WINDOW: duration.default(3 * 86_400_000),
  /** A trade this close to midnight may sit on the other day's statement: EXPECTED for one day. */
  RECON_MIDNIGHT_EDGE: duration.default(15 * 60_000),
  /** How long a run waits for the orders it signalled to settle before it reports them. */
  RECON_HEAL_WAIT: duration.default(30_000),
  /** The merchant endpoint (merchant_endpoints.id) of orders created without one; unset: none. */
  MERCHANT_DEFAULT_ENDPOINT: z.string().min(1).optional(),
  /**
   * Non-public addresses merchant endpoints may still lead to (SSRF guard, SECURITY.md): CIDRs or single
   * addresses separated by commas, e.g. `127.0.0.1/32` for a merchant simulator on this machine. Unset:
   * only public unicast addresses are ever POSTed to.
   */
  MERCHANT_PRIVATE_ALLOWLIST: z
    .string()
    .refine(isAllowlist, 'must be IP addresses or CIDRs separated by commas, e.g. 127.0.0.1/32,10.0.0.0/8')
    .optional(),
  /** host:port of the worker's Prometheus endpoint (Temporal SDK and payrecon metrics), or `off`. */
  WORKER_METRICS_ADDRESS: metricsAddress('127.0.0.1:9464'),
  /** host:port of the consumer's Prometheus endpoint, or `off`. */
  CONSUMER_METRICS_ADDRESS: metricsAddress('127.0.0.1:9465'),
  /** host:port of the notification receiver's Prometheus endpoint, or `off`. */
  RECEIVER_METRICS_ADDRESS: metricsAddress('127.0.0.1:9466'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Parses the variables `schema` names from the environment (empty counts as unset, so defaults apply);
 * a bad value throws a ConfigError naming each variable and what is wrong with it.
 */
export function parseEnv<S extends z.ZodObject>(
  schema: S,
  env: NodeJS.ProcessEnv,
  what = 'configuration',
): z.infer<S> {
  const present = Object.fromEntries(
    Object.keys(schema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '');
      return `  ${name}=${describeEnvValue(name, env[name])}: ${issue.message}`;
    });
    throw new ConfigError(`invalid ${what} in the environment:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/**
 * payrecon's configuration from the environment, validated (see README, "Configuration"). `receiver`:
 * the notification receiver's, which checks only the provider settings it verifies with (no merchant
 * or app private key).
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  purpose: 'payments' | 'receiver' = 'payments',
): Config {
  const parsed = parseEnv(configSchema, env);
  // The default reconciliation is of the provider of new orders.
  const config = env.RECON_PROVIDER ? parsed : { ...parsed, RECON_PROVIDER: parsed.PAYMENT_PROVIDER };
  // A certificate without its key (or the reverse) cannot make a TLS client: say so at start-up.
  if (Boolean(config.TEMPORAL_TLS_CERT_PATH) !== Boolean(config.TEMPORAL_TLS_KEY_PATH)) {
    const missing = config.TEMPORAL_TLS_CERT_PATH ? 'TEMPORAL_TLS_KEY_PATH' : 'TEMPORAL_TLS_CERT_PATH';
    throw new ConfigError(
      `invalid configuration in the environment:\n  ${missing}=(unset): TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH go together (the client certificate and its key)`,
    );
  }
  const enabled = enabledProviders(config);
  if (!enabled.includes(config.PAYMENT_PROVIDER)) {
    throw new ConfigError(
      `invalid configuration in the environment:\n  PAYMENT_PROVIDER=${config.PAYMENT_PROVIDER}: the provider of new orders must be one of PAYMENT_PROVIDERS (${enabled.join(', ')})`,
    );
  }
  const reconciled = reconciledProvider(config.RECON_PROVIDER);
  if (!reconciled || !enabled.includes(reconciled)) {
    throw new ConfigError(
      `invalid configuration in the environment:\n  RECON_PROVIDER=${config.RECON_PROVIDER}: its provider must be one of PAYMENT_PROVIDERS (${enabled.join(', ')}), or its statement cannot be fetched`,
    );
  }
  // Each enabled provider's settings are checked now rather than left to its first call: a worker
  // without keys must not start.
  if (enabled.includes('alipay')) {
    const needed =
      purpose === 'receiver'
        ? (['ALIPAY_APP_ID', 'ALIPAY_PUBLIC_KEY_FILE'] as const)
        : (['ALIPAY_APP_ID', 'ALIPAY_PRIVATE_KEY_FILE', 'ALIPAY_PUBLIC_KEY_FILE'] as const);
    const missing = needed.filter((name) => config[name] === undefined);
    if (missing.length > 0) {
      const why = config.PAYMENT_PROVIDERS ? 'alipay is in PAYMENT_PROVIDERS' : 'PAYMENT_PROVIDER=alipay';
      throw new ConfigError(
        `invalid configuration in the environment:\n${missing
          .map((name) => `  ${name}=(unset): required with ${why}`)
          .join('\n')}`,
      );
    }
  }
  // The keys are read again when the gateway is made (src/provider/select.ts); this only refuses to start.
  if (enabled.includes('wechatpay')) {
    if (purpose === 'receiver') loadWechatPayNotifyConfig(env);
    else loadWechatPayConfig(env);
  }
  return config;
}

/** The providers this process holds a gateway for: PAYMENT_PROVIDERS, or PAYMENT_PROVIDER alone. */
export function enabledProviders(
  config: Pick<Config, 'PAYMENT_PROVIDER'> & Partial<Pick<Config, 'PAYMENT_PROVIDERS'>>,
): PaymentProvider[] {
  return config.PAYMENT_PROVIDERS ?? [config.PAYMENT_PROVIDER];
}

/**
 * What a process that verifies notices checks before it starts: with the public development secret
 * anyone could sign a "paid" notice, so outside PAYRECON_ENV=development it refuses to run.
 */
export function assertSecretsConfigured(config: Pick<Config, 'PAYRECON_ENV' | 'NOTIFY_HMAC_SECRET'>): void {
  if (config.PAYRECON_ENV !== 'development' && usesDevelopmentSecret(config)) {
    throw new ConfigError(
      'NOTIFY_HMAC_SECRET is not set (the development default is public): set the secret shared with the payment service, or PAYRECON_ENV=development on a developer machine',
    );
  }
}

export function usesDevelopmentSecret(config: Pick<Config, 'NOTIFY_HMAC_SECRET'>): boolean {
  return config.NOTIFY_HMAC_SECRET === DEVELOPMENT_HMAC_SECRET;
}

/** The Web UI page of one order's workflow. */
export function workflowUiLink(config: Config, workflowId: string): string {
  return `${config.TEMPORAL_UI_URL}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(workflowId)}`;
}
