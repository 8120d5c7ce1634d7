import { assertSecretsConfigured, loadConfig } from '../src/platform/config';
import { createLogger } from '../src/platform/logger';
import { startReceiver } from '../src/receiver/start';
import { installWorkerRuntime } from './runtime';

/**
 * The notification receiver: providers' asynchronous notifications over HTTP (Alipay's at
 * /notify/alipay, WeChat Pay's at /notify/wechatpay), verified and published to payrecon's exchange
 * as signed notices (src/receiver).
 */
async function main() {
  const config = loadConfig(process.env, 'receiver');
  // It signs the notices the consumer trusts: never with the public development secret in production.
  assertSecretsConfigured(config);
  const log = createLogger('receiver', config.LOG_LEVEL);
  // The Temporal runtime is here only for its Prometheus exporter, as in the consumer.
  const metrics = installWorkerRuntime('WARN', config.RECEIVER_METRICS_ADDRESS);
  const receiver = await startReceiver({ config, log, metrics });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      log.info({ signal }, 'stopping: no new notifications, finishing those in flight');
      await receiver.close();
      log.info('receiver stopped');
      process.exit(0);
    });
  }
  log.info(
    { url: receiver.url, routes: [...receiver.routes, '/healthz'], prefix: config.AMQP_PREFIX },
    'receiver started',
  );
}

if (require.main === module) {
  main().catch((error) => {
    console.error(`receiver failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
}
