import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Database, Sql } from '../../src/db/client';
import {
  billDateOf,
  isBillDate,
  type StatementFormat,
  type StatementLocation,
  shiftBillDate,
} from '../../src/provider/statement-format';
import { HttpError, parseInput, readJson, sendJson } from '../lib/http';
import type { Route } from '../lib/router';
import {
  billFaultsSchema,
  billFormat,
  checkBillFaults,
  clearBillFaults,
  getBillFaults,
  setBillFaults,
  takeExpiredUrl,
} from './bill-faults';
import { type BillStats, BillTokens, billBytes, billContentType, billFileName, billText } from './bills';

/**
 * The provider's trade statement over HTTP: ask for a day's download URL, download the file before the
 * URL expires, and the knobs of the day's statement faults.
 *
 * - GET    /bills/:billDate/download-url → StatementLocation; 400 bad date, 409 BILL_NOT_READY (future)
 * - GET    /bills/download/:token        → the file, streamed; 410 URL_EXPIRED, 404 unknown token
 * - PUT    /bills/:billDate/faults       → replace the day's faults (GET reads, DELETE clears them)
 * - DELETE /bills/faults                 → clear every day's faults
 * - GET    /bills/stats                  → per day: urlRequests, downloads, expiredDownloads
 */

export interface BillSettings {
  /** Lifetime of a download URL (default 30 s, as at Alipay). */
  urlTtlMs: number;
  /** Encoding and zipping of a bill without faults saying otherwise. */
  format: StatementFormat;
}

export const DEFAULT_BILL_SETTINGS: BillSettings = {
  urlTtlMs: 30_000,
  format: { encoding: 'utf-8', zipped: false },
};

export interface BillRouteDeps {
  db: Database;
  sql: Sql;
  settings: BillSettings;
  /** The secret download tokens are signed with (derived from). */
  secret: string;
  stats: BillStats;
  logger: Logger;
  /** The server's own URL, for a request without a Host header. */
  baseUrl: () => string;
}

function parseBillDate(raw: string | undefined): string {
  if (raw === undefined || !isBillDate(raw)) {
    throw new HttpError(
      400,
      `not a bill date: ${JSON.stringify(raw)} (expected YYYY-MM-DD, a real calendar day)`,
      {
        code: 'INVALID_BILL_DATE',
      },
    );
  }
  return raw;
}

function origin(req: IncomingMessage, fallback: string): string {
  const host = req.headers.host;
  return host && /^[\w.:[\]-]+$/.test(host) ? `http://${host}` : fallback;
}

export function billRoutes(deps: BillRouteDeps): Route[] {
  const { db, sql, settings, stats, logger } = deps;
  const tokens = new BillTokens(deps.secret);

  return [
    {
      method: 'GET',
      pattern: /^\/bills\/stats$/,
      handler: async (_req, res) => sendJson(res, 200, stats.get()),
    },
    {
      method: 'DELETE',
      pattern: /^\/bills\/faults$/,
      handler: async (_req, res) => {
        const cleared = await clearBillFaults(db);
        logger.info({ cleared }, 'bill faults cleared');
        sendJson(res, 200, { cleared });
      },
    },
    {
      method: 'GET',
      pattern: /^\/bills\/download\/([^/]+)$/,
      handler: async (_req, res, [token]) => {
        const grant = tokens.verify(token ?? '');
        if (!grant)
          return sendJson(res, 404, { code: 'NOT_FOUND', error: 'no such bill download (unknown token)' });
        if (Date.now() >= grant.expiresAt) {
          stats.count(grant.billDate, 'expiredDownloads');
          throw new HttpError(
            410,
            `this download URL of the ${grant.billDate} bill expired at ${new Date(grant.expiresAt).toISOString()}; ask for a new one`,
            { code: 'URL_EXPIRED', billDate: grant.billDate },
          );
        }
        stats.count(grant.billDate, 'downloads');
        const [faults, previousFaults] = await Promise.all([
          getBillFaults(db, grant.billDate),
          getBillFaults(db, shiftBillDate(grant.billDate, -1)),
        ]);
        res.writeHead(200, {
          'content-type': billContentType(grant.format),
          'content-disposition': `attachment; filename="${billFileName(grant.billDate, grant.format.zipped)}"`,
          'cache-control': 'no-store',
        });
        const body = Readable.from(
          billBytes(billText(sql, grant.billDate, faults, previousFaults), grant.billDate, grant.format),
          {
            objectMode: false,
          },
        );
        try {
          await pipeline(body, res);
        } catch (error) {
          // The client went away (or the database failed mid-file): the connection is cut, nothing to answer.
          logger.warn({ err: (error as Error).message, billDate: grant.billDate }, 'bill download cut short');
          res.destroy();
        }
      },
    },
    {
      method: 'GET',
      pattern: /^\/bills\/([^/]+)\/download-url$/,
      handler: async (req, res, [raw]) => {
        const billDate = parseBillDate(raw);
        const today = billDateOf(new Date());
        if (billDate > today) {
          throw new HttpError(
            409,
            `the bill of ${billDate} is not ready: today is ${today} (Asia/Shanghai)`,
            {
              code: 'BILL_NOT_READY',
              billDate,
            },
          );
        }
        const faults = await getBillFaults(db, billDate);
        const now = Date.now();
        const bornExpired = (faults.expireNextUrls ?? 0) > 0 && (await takeExpiredUrl(db, billDate));
        const expiresAt = bornExpired ? now : now + (faults.urlTtlMs ?? settings.urlTtlMs);
        const format = billFormat(faults, settings.format);
        const token = tokens.sign({ billDate, expiresAt, format });
        stats.count(billDate, 'urlRequests');
        const location: StatementLocation = {
          billDate,
          downloadUrl: `${origin(req, deps.baseUrl())}/bills/download/${token}`,
          expiresAt: new Date(expiresAt).toISOString(),
          format,
        };
        if (bornExpired)
          logger.info({ billDate }, 'bill download URL handed out already expired (fault expireNextUrls)');
        sendJson(res, 200, location);
      },
    },
    {
      method: 'GET',
      pattern: /^\/bills\/([^/]+)\/faults$/,
      handler: async (_req, res, [raw]) => {
        const billDate = parseBillDate(raw);
        sendJson(res, 200, { billDate, faults: await getBillFaults(db, billDate) });
      },
    },
    {
      method: 'PUT',
      pattern: /^\/bills\/([^/]+)\/faults$/,
      handler: async (req, res, [raw]) => {
        const billDate = parseBillDate(raw);
        const faults = parseInput(billFaultsSchema, (await readJson(req)) ?? {}, 'bill faults');
        const problem = checkBillFaults(billDate, faults);
        if (problem) throw new HttpError(400, `invalid bill faults: ${problem}`);
        await setBillFaults(db, billDate, faults);
        logger.info({ billDate, faults }, 'bill faults replaced');
        sendJson(res, 200, { billDate, faults });
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/bills\/([^/]+)\/faults$/,
      handler: async (_req, res, [raw]) => {
        const billDate = parseBillDate(raw);
        await setBillFaults(db, billDate, {});
        sendJson(res, 200, { billDate, faults: {} });
      },
    },
  ];
}
