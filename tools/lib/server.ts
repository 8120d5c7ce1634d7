import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError } from '../../src/platform/config';
import { HttpError, sendJson } from './http';
import type { RequestHandler } from './router';

/**
 * The lifecycle the rig's node:http servers share (tools/simulator/server.ts, tools/merchant/server.ts):
 * a server whose handler answers an HttpError as JSON and anything else as a logged 500, listening,
 * a graceful close with a deadline, and the `npm run <server>` entry point (config errors exit 2,
 * SIGTERM/SIGINT close it).
 */

/** A server that routes every request through `route`, answering what it throws, and logs each request. */
export function createJsonServer(
  route: RequestHandler,
  logger: Logger,
  options: { requestLogLevel: 'info' | 'debug' },
): Server {
  return createServer((req, res) => {
    void (async () => {
      const started = performance.now();
      try {
        await route(req, res);
      } catch (error) {
        if (error instanceof HttpError) {
          sendJson(res, error.status, { error: error.message, ...error.extra });
        } else {
          logger.error({ err: error, method: req.method, url: req.url }, 'request failed');
          if (!res.headersSent) sendJson(res, 500, { error: `internal error: ${(error as Error).message}` });
          else res.destroy();
        }
      } finally {
        logger[options.requestLogLevel](
          {
            method: req.method,
            url: req.url,
            status: res.statusCode,
            ms: Math.round(performance.now() - started),
          },
          'request',
        );
      }
    })();
  });
}

/** Listens on `port` (0: a free one) and `host`; rejects with the listen error (e.g. EADDRINUSE). */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** http://host:port (an IPv6 host in brackets). */
export function serverUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Stops accepting connections (when still listening), closes the idle ones and waits for the requests in
 * flight, cutting whatever is still open after `graceMs`.
 */
export async function stopServer(server: Server, graceMs: number, listening = true): Promise<void> {
  const stopped = listening
    ? new Promise<void>((resolve) => server.close(() => resolve()))
    : Promise.resolve();
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), graceMs);
  await stopped;
  clearTimeout(force);
}

/** `fn` run at most once: every call gets the first call's promise (a close called twice closes once). */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | undefined;
  return () => {
    running ??= fn();
    return running;
  };
}

/**
 * The entry point of `npm run <server>`: loads the configuration (a ConfigError is printed and exits 2),
 * starts the server, and closes it on SIGTERM or SIGINT (exit 0, or 1 on an unclean shutdown). A start
 * that fails prints `<what> failed to start: ...` and exits 1.
 */
export function runServerMain<C>(
  what: string,
  load: () => C,
  start: (config: C) => Promise<{ logger: Logger; running: { close(): Promise<void> } }>,
): void {
  const main = async () => {
    let config: C;
    try {
      config = load();
    } catch (error) {
      if (error instanceof ConfigError) {
        process.stderr.write(`${error.message}\n`);
        process.exit(2);
      }
      throw error;
    }
    const { logger, running } = await start(config);
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'signal received');
      running.close().then(
        () => process.exit(0),
        (error: Error) => {
          logger.error({ err: error }, 'unclean shutdown');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  };
  main().catch((error: Error) => {
    process.stderr.write(`${what} failed to start: ${error.message}\n`);
    process.exit(1);
  });
}
