import type { FastifyInstance } from 'fastify';
import { amqpUrls } from '../mq/connect';
import { PaymentEventPublisher, type PaymentEventPublisherOptions } from '../mq/publisher';
import { topologyFor } from '../mq/topology';
import { type Config, ConfigError, enabledProviders } from '../platform/config';
import type { Logger } from '../platform/logger';
import type { PayreconMetrics } from '../platform/metrics';
import { createAlipayNotificationReader } from '../provider/alipay';
import { loadWechatPayNotifyConfig } from '../provider/wechatpay/config';
import { WechatPayNotificationReader } from '../provider/wechatpay/notify';
import { ALIPAY_NOTIFY_PATH, buildReceiver, WECHATPAY_NOTIFY_PATH } from './app';

export interface RunningReceiver {
  app: FastifyInstance;
  /** http://host:port, as bound (port 0 picks a free one). */
  url: string;
  /** The notification routes it serves. */
  routes: string[];
  publisher: PaymentEventPublisher;
  /** Stops taking requests, finishes those in flight (and their publishes), disconnects. */
  close(): Promise<void>;
}

export interface StartReceiverOptions {
  config: Config;
  log: Logger;
  metrics?: PayreconMetrics;
  /** Where WeChat Pay's variables are read (loadWechatPayNotifyConfig); default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Overrides of the receiver's publisher settings (tests shorten the timeout). */
  publisher?: Partial<Omit<PaymentEventPublisherOptions, 'url' | 'topology' | 'secret' | 'logger'>>;
}

/**
 * A provider waits a few seconds for its answer; a publish that takes longer answers `fail` and the
 * provider sends the notification again (same notify_id, same messageId: the consumer dedupes).
 */
const PUBLISHER_DEFAULTS = { publishTimeoutMs: 2_000, maxRetries: 1, retryBaseMs: 200 } as const;

/**
 * Starts the notification receiver: the publisher (it connects in the background: while RabbitMQ is
 * down, notifications answer `fail` and /healthz 503), each configured provider's route, the listener.
 */
export async function startReceiver(options: StartReceiverOptions): Promise<RunningReceiver> {
  const { config, log } = options;
  const alipay = createAlipayNotificationReader(config);
  // WeChat Pay's route when wechatpay is enabled: its public key, key id and APIv3 key, never the
  // merchant private key.
  const wechatpay = enabledProviders(config).includes('wechatpay')
    ? new WechatPayNotificationReader(loadWechatPayNotifyConfig(options.env ?? process.env))
    : undefined;
  if (!alipay && !wechatpay) {
    throw new ConfigError(
      'the receiver has no provider to receive notifications for: set ALIPAY_APP_ID and ALIPAY_PUBLIC_KEY_FILE, or enable wechatpay (PAYMENT_PROVIDER(S)) with its WECHATPAY_* variables',
    );
  }
  const publisher = new PaymentEventPublisher({
    ...PUBLISHER_DEFAULTS,
    ...options.publisher,
    url: amqpUrls(config.AMQP_URL),
    topology: topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY),
    secret: config.NOTIFY_HMAC_SECRET,
    logger: log,
    appId: 'payrecon-receiver',
  });
  const app = buildReceiver({ publisher, log, metrics: options.metrics, alipay, wechatpay });
  try {
    await app.listen({ host: config.RECEIVER_HOST, port: config.RECEIVER_PORT });
  } catch (error) {
    await publisher.close({ timeoutMs: 0 });
    throw error;
  }
  const address = app.server.address();
  const url =
    typeof address === 'object' && address
      ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`
      : `http://${config.RECEIVER_HOST}:${config.RECEIVER_PORT}`;
  return {
    app,
    url,
    routes: [...(alipay ? [ALIPAY_NOTIFY_PATH] : []), ...(wechatpay ? [WECHATPAY_NOTIFY_PATH] : [])],
    publisher,
    async close() {
      await app.close();
      await publisher.close();
    },
  };
}
