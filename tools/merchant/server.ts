import type { AddressInfo } from 'node:net';
import pino, { type Logger } from 'pino';
import { assertDatabaseReachable, createDatabase, redactUrl } from '../../src/db/client';
import { type Config, loadConfig } from '../../src/platform/config';
import { createJsonServer, listen, once, runServerMain, serverUrl, stopServer } from '../lib/server';
import { loadMerchantConfig, type MerchantSecrets } from './config';
import { migrateMerchantSchema } from './db/migrate';
import { type AnswerFaults, FaultStore } from './faults';
import { createRouter, type Refusal } from './routes';
import { setSecrets } from './store';

/**
 * The merchant simulator: the shop's backend as payrecon's result notifications (issue 11) reach it.
 * `POST /hooks/:merchantId` verifies the Standard Webhooks signature with the merchant's secret(s),
 * records the delivery in `merchant.deliveries` (its own schema and migrations, in ./db and ./drizzle)
 * and answers `200 success`, or as its fault knobs say: fail the first n, a status such as 503 or 410,
 * slower than the sender's timeout, a body that is not `success`, or no connection at all for a while.
 *
 * Run it with `npm run merchant` (`tsx tools/merchant/server.ts`); tests call startMerchantSimulator().
 */

export interface StartMerchantSimulatorOptions {
  config: Pick<Config, 'DATABASE_URL' | 'DATABASE_POOL_MAX' | 'LOG_LEVEL'>;
  /** Default 8091 (MERCHANT_PORT); 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (MERCHANT_HOST). */
  host?: string;
  logger?: Logger;
  /** Secrets per merchant id, stored at start-up (replacing those ids' stored ones); `*` for any other id. */
  secrets?: MerchantSecrets;
  /** Global fault knobs at start-up. */
  faults?: AnswerFaults;
}

export interface RunningMerchantSimulator {
  /** http://host:port, without a trailing slash. */
  url: string;
  port: number;
  /** The URL a merchant endpoint points payrecon at: `${url}/hooks/${merchantId}`. */
  hookUrl(merchantId: string): string;
  faults: FaultStore;
  /** Stops accepting requests, finishes the ones in flight (held answers are cut), disconnects. */
  close(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 5_000;
const RELISTEN_RETRY_MS = 250;

export async function startMerchantSimulator(
  options: StartMerchantSimulatorOptions,
): Promise<RunningMerchantSimulator> {
  const { config } = options;
  const logger = (options.logger ?? pino({ level: config.LOG_LEVEL })).child({
    service: 'merchant-simulator',
  });

  const database = createDatabase(config.DATABASE_URL, { max: config.DATABASE_POOL_MAX });
  try {
    await assertDatabaseReachable(database.sql, config.DATABASE_URL);
    // Its own tables, on a fresh database too (tests start simulators in-process).
    await migrateMerchantSchema(config.DATABASE_URL);
    for (const [merchantId, secrets] of Object.entries(options.secrets ?? {})) {
      await setSecrets(database.db, merchantId, secrets);
    }
  } catch (error) {
    await database.close();
    throw error;
  }

  const faults = new FaultStore(options.faults);
  const host = options.host ?? '127.0.0.1';
  // The router needs the refusal, which needs the server: requests reach it once it is listening.
  const server = createJsonServer((req, res) => route(req, res), logger, { requestLogLevel: 'debug' });

  // --- connection refusal: close the listening socket for a while, then listen again on the same port.
  let port = 0;
  let listening = false;
  let closed = false;
  let refusingUntil: Date | null = null;
  let relistenTimer: NodeJS.Timeout | undefined;
  const listenOn = async (onPort: number) => {
    await listen(server, onPort, host);
    listening = true;
  };
  const relisten = () => {
    relistenTimer = undefined;
    if (closed) return;
    listenOn(port).then(
      () => {
        refusingUntil = null;
        logger.info({ port }, 'listening again: connections are accepted');
      },
      (error: Error) => {
        logger.warn({ err: error.message, port }, 'cannot listen again yet; retrying');
        relistenTimer = setTimeout(relisten, RELISTEN_RETRY_MS);
      },
    );
  };
  const refusal: Refusal = {
    refuse(ms) {
      if (closed) return;
      refusingUntil = new Date(Date.now() + ms);
      clearTimeout(relistenTimer);
      if (listening) {
        listening = false;
        server.close();
      }
      // Keep-alive connections would still carry requests: cut them all, held answers included.
      server.closeAllConnections();
      relistenTimer = setTimeout(relisten, ms);
      logger.info(
        { ms, until: refusingUntil.toISOString() },
        'listening socket closed: connections are refused',
      );
    },
    refusingUntil: () => refusingUntil,
  };

  const route = createRouter({ db: database.db, sql: database.sql, faults, refusal, logger });
  try {
    await listenOn(options.port ?? 8091);
  } catch (error) {
    await database.close();
    throw error;
  }
  port = (server.address() as AddressInfo).port;
  const url = serverUrl(host, port);
  logger.info(
    {
      url,
      database: redactUrl(config.DATABASE_URL),
      merchants: Object.keys(options.secrets ?? {}),
      faults: faults.get(),
    },
    'merchant simulator listening',
  );

  const close = once(async () => {
    logger.info('merchant simulator shutting down');
    closed = true;
    clearTimeout(relistenTimer);
    const wasListening = listening;
    listening = false;
    await stopServer(server, SHUTDOWN_GRACE_MS, wasListening);
    await database.close();
    logger.info('merchant simulator stopped');
  });

  return {
    url,
    port,
    hookUrl: (merchantId) => `${url}/hooks/${encodeURIComponent(merchantId)}`,
    faults,
    close,
  };
}

if (typeof require !== 'undefined' && require.main === module) {
  runServerMain(
    'merchant simulator',
    () => ({ config: loadConfig(), merchant: loadMerchantConfig() }),
    async ({ config, merchant }) => {
      const logger = pino({ level: config.LOG_LEVEL });
      const running = await startMerchantSimulator({
        config,
        logger,
        port: merchant.port,
        host: merchant.host,
        secrets: merchant.secrets,
        faults: merchant.faults,
      });
      return { logger, running };
    },
  );
}
