import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { assertDatabaseReachable, createDatabase, redactUrl } from '../../src/db/client';
import { amqpUrls } from '../../src/mq/connect';
import { PaymentEventPublisher, type PaymentEventPublisherOptions } from '../../src/mq/publisher';
import { topologyFor } from '../../src/mq/topology';
import { type Config, loadConfig } from '../../src/platform/config';
import { createJsonServer, listen, once, runServerMain, serverUrl, stopServer } from '../lib/server';
import { type BillSettings, DEFAULT_BILL_SETTINGS } from './bill-routes';
import { BillStats } from './bills';
import { loadSimulatorConfig } from './config';
import { migrateSimulatorSchema } from './db/migrate';
import { FaultStore, type GlobalFaults, type Random } from './faults';
import { NotificationSender } from './notify';
import { RefundProcessor } from './refund-processor';
import { createRouter } from './routes';

/**
 * The payment-service simulator: owns trades in `provider.trades` (its own schema and migrations, in
 * ./db and ./drizzle) and refunds in `provider.refunds`, answers status queries, close and refund
 * requests over HTTP, and publishes "trade paid" and "trade refunded" notifications to RabbitMQ with publisher confirms, dropping, duplicating, delaying, corrupting or
 * forging them when told to.
 *
 * Run it with `npm run simulator` (`tsx tools/simulator/server.ts`); tests call startSimulator().
 */

export interface StartSimulatorOptions {
  config: Config;
  /** Defaults to config.SIMULATOR_PORT; 0 picks a free port. */
  port?: number;
  host?: string;
  logger?: Logger;
  /** Global fault knobs at start-up. */
  faults?: Partial<GlobalFaults>;
  /** Overrides of the publisher's defaults (timeouts, retries, buffer bound). */
  publisher?: Partial<Omit<PaymentEventPublisherOptions, 'url' | 'topology' | 'secret' | 'logger'>>;
  /** How long to wait for RabbitMQ at start-up before serving anyway (publishes then wait for it). */
  brokerWaitMs?: number;
  /** Dice for the global fault rates (tests pass a fixed one). */
  random?: Random;
  /** The trade statement's URL lifetime and default format (SIMULATOR_BILL_* in ./config.ts). */
  bills?: Partial<BillSettings>;
}

export interface RunningSimulator {
  url: string;
  port: number;
  faults: FaultStore;
  publisher: PaymentEventPublisher;
  /** Per bill date: URLs handed out, downloads, expired downloads. */
  billStats: BillStats;
  /** Stops accepting requests, finishes the ones in flight, publishes delayed notifications, disconnects. */
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 10_000;

export async function startSimulator(options: StartSimulatorOptions): Promise<RunningSimulator> {
  const { config } = options;
  const logger = (options.logger ?? pino({ level: config.LOG_LEVEL })).child({
    service: 'payment-simulator',
  });

  const database = createDatabase(config.DATABASE_URL, { max: config.DATABASE_POOL_MAX });
  try {
    await assertDatabaseReachable(database.sql, config.DATABASE_URL);
    // Its own table, on a fresh database too (tests start simulators in-process).
    await migrateSimulatorSchema(config.DATABASE_URL);
  } catch (error) {
    await database.close();
    throw error;
  }

  const publisher = new PaymentEventPublisher({
    ...options.publisher,
    // Every node of a cluster, so publishing goes on through a surviving one.
    url: amqpUrls(config.AMQP_URL),
    topology: topologyFor(config.AMQP_PREFIX, config.CONSUMER_RETRY_DELAY),
    secret: config.NOTIFY_HMAC_SECRET,
    logger,
    appId: 'payrecon-payment-simulator',
  });
  try {
    await publisher.waitForConnect(options.brokerWaitMs ?? 5_000);
  } catch (error) {
    logger.warn(
      { err: (error as Error).message },
      'RabbitMQ is not reachable yet; serving anyway, notifications wait for the broker',
    );
  }

  const faults = new FaultStore(options.faults);
  const sender = new NotificationSender(publisher, logger);
  const refunds = new RefundProcessor({ db: database.db, sender, faults, logger, random: options.random });
  const billStats = new BillStats();
  let url = '';
  const route = createRouter({
    refunds,
    db: database.db,
    sql: database.sql,
    faults,
    sender,
    publisher,
    logger,
    random: options.random,
    bills: {
      settings: { ...DEFAULT_BILL_SETTINGS, ...options.bills },
      secret: config.NOTIFY_HMAC_SECRET,
      stats: billStats,
      baseUrl: () => url,
    },
  });

  const server = createJsonServer(route, logger, { requestLogLevel: 'info' });
  const host = options.host ?? '127.0.0.1';
  try {
    await listen(server, options.port ?? config.SIMULATOR_PORT, host);
  } catch (error) {
    await publisher.close({ timeoutMs: 0 });
    await database.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  url = serverUrl(host, port);
  logger.info(
    {
      url,
      database: redactUrl(config.DATABASE_URL),
      exchange: publisher.topology.paymentExchange,
      faults: faults.get(),
    },
    'payment simulator listening',
  );

  const close = once(async () => {
    logger.info('payment simulator shutting down');
    await stopServer(server, SHUTDOWN_GRACE_MS);
    // Refunds still PROCESSING stay so in the database and end when their order is next asked about.
    refunds.close();
    await sender.flushDelayed();
    await publisher.close();
    await database.close();
    logger.info('payment simulator stopped');
  });

  return { url, port, faults, publisher, billStats, close };
}

if (typeof require !== 'undefined' && require.main === module) {
  runServerMain(
    'payment simulator',
    () => ({ config: loadConfig(), simulator: loadSimulatorConfig() }),
    async ({ config, simulator }) => {
      const logger = pino({ level: config.LOG_LEVEL });
      const running = await startSimulator({
        config,
        logger,
        host: simulator.host,
        faults: simulator.faults,
        bills: simulator.bills,
      });
      return { logger, running };
    },
  );
}
