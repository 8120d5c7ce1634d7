import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Database, Sql } from '../../src/db/client';
import { HttpError, parseInput, pingDatabase, readJson, sendJson } from '../lib/http';
import { type Handler, type RequestHandler, type Route, routeTable } from '../lib/router';
import { merchantIdSchema } from './config';
import {
  type AnswerFaults,
  effectiveFaults,
  type FaultStore,
  type GlobalFaultsView,
  globalFaultsInputSchema,
  orderFaultsSchema,
  type PlannedAnswer,
  planAnswer,
} from './faults';
import { secretListSchema, verifyDelivery } from './signature';
import {
  deliveryView,
  finishDelivery,
  getOrderFaults,
  listDeliveries,
  type ReceivedDelivery,
  recordDelivery,
  secretsFor,
  setOrderFaults,
  setSecrets,
} from './store';

/**
 * The merchant simulator's HTTP API: the merchant's webhook endpoint (`POST /hooks/:merchantId`) and the
 * rig's knobs and records around it.
 */

/** Connection refusal, which lives in the server (it closes and reopens the listening socket). */
export interface Refusal {
  /** Stops listening for `ms`, cutting every open connection, then listens again on the same port. */
  refuse(ms: number): void;
  refusingUntil(): Date | null;
}

export interface RouteDeps {
  db: Database;
  sql: Sql;
  faults: FaultStore;
  refusal: Refusal;
  logger: Logger;
}

const MAX_HOOK_BODY_BYTES = 1024 * 1024;
const MAX_LIST = 10_000;

const orderIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,128}$/, 'order ids are 1-128 letters, digits, _ . : or -');
const hookMerchantIdSchema = merchantIdSchema.refine(
  (id) => id !== '*',
  'a delivery names a merchant id, not *',
);

const secretsInputSchema = z.strictObject({ secrets: secretListSchema });

const deliveryFilterSchema = z.strictObject({
  orderId: z.string().min(1).optional(),
  webhookId: z.string().min(1).optional(),
  merchantId: z.string().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST).optional(),
});

export function createRouter(deps: RouteDeps): RequestHandler {
  const { db, faults, refusal, logger } = deps;

  const faultsView = (): GlobalFaultsView => ({
    faults: faults.get(),
    refusingUntil: refusal.refusingUntil()?.toISOString() ?? null,
  });

  /** Answers the fault request, then (once the answer is out) starts refusing connections. */
  const answerFaults = (res: ServerResponse, refuseForMs: number | undefined) => {
    if (refuseForMs === undefined) return sendJson(res, 200, faultsView());
    res.setHeader('connection', 'close');
    res.once('finish', () => refusal.refuse(refuseForMs));
    const until = new Date(Date.now() + refuseForMs).toISOString();
    logger.info({ refuseForMs, until }, 'refusing connections');
    sendJson(res, 200, { ...faultsView(), refusingUntil: until });
  };

  /** PUT /faults (`replace`: every knob not given is reset) and PATCH /faults (`merge`). */
  const setFaults =
    (mode: 'replace' | 'merge'): Handler =>
    async (req, res) => {
      const { refuseForMs, ...knobs } = parseInput(
        globalFaultsInputSchema,
        (await readJson(req)) ?? {},
        'fault knobs',
      );
      if (mode === 'replace') logger.info({ faults: faults.replace(knobs) }, 'global faults replaced');
      else logger.info({ faults: faults.merge(knobs) }, 'global faults changed');
      answerFaults(res, refuseForMs);
    };

  const routes: Route[] = [
    {
      method: 'GET',
      pattern: /^\/health$/,
      handler: async (_req, res) => {
        const database = await pingDatabase(deps.sql);
        const ok = database === 'up';
        sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'degraded', database });
      },
    },
    {
      method: 'POST',
      pattern: /^\/hooks\/([^/]+)$/,
      handler: async (req, res, [rawId]) => {
        const merchantId = parseInput(hookMerchantIdSchema, rawId, 'merchant id');
        await receiveDelivery(deps, merchantId, req, res);
      },
    },
    {
      method: 'GET',
      pattern: /^\/deliveries$/,
      handler: async (_req, res, _params, url) => {
        const filter = parseInput(deliveryFilterSchema, Object.fromEntries(url.searchParams), 'filter');
        const { limit, ...by } = filter;
        const rows = await listDeliveries(db, by, limit ?? MAX_LIST);
        sendJson(res, 200, { deliveries: rows.map(deliveryView) });
      },
    },
    {
      method: 'GET',
      pattern: /^\/faults$/,
      handler: async (_req, res) => sendJson(res, 200, faultsView()),
    },
    { method: 'PUT', pattern: /^\/faults$/, handler: setFaults('replace') },
    { method: 'PATCH', pattern: /^\/faults$/, handler: setFaults('merge') },
    {
      method: 'GET',
      pattern: /^\/orders\/([^/]+)\/faults$/,
      handler: async (_req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        sendJson(res, 200, { orderId, faults: await getOrderFaults(db, orderId) });
      },
    },
    {
      method: 'PUT',
      pattern: /^\/orders\/([^/]+)\/faults$/,
      handler: async (req, res, [rawId]) => {
        const orderId = parseInput(orderIdSchema, rawId, 'order id');
        const input = parseInput(orderFaultsSchema, (await readJson(req)) ?? {}, 'order fault knobs');
        await setOrderFaults(db, orderId, input);
        logger.info({ orderId, faults: input }, 'order faults set');
        sendJson(res, 200, { orderId, faults: input });
      },
    },
    {
      method: 'GET',
      pattern: /^\/merchants\/([^/]+)$/,
      handler: async (_req, res, [rawId]) => {
        const merchantId = parseInput(merchantIdSchema, rawId, 'merchant id');
        // The number of secrets only: the rig knows them, nobody needs them read back.
        sendJson(res, 200, { merchantId, secrets: (await secretsFor(db, merchantId)).length });
      },
    },
    {
      method: 'PUT',
      pattern: /^\/merchants\/([^/]+)$/,
      handler: async (req, res, [rawId]) => {
        const merchantId = parseInput(merchantIdSchema, rawId, 'merchant id');
        const { secrets } = parseInput(secretsInputSchema, await readJson(req), 'merchant');
        await setSecrets(db, merchantId, secrets);
        logger.info({ merchantId, secrets: secrets.length }, 'merchant secrets set');
        sendJson(res, 200, { merchantId, secrets: secrets.length });
      },
    },
  ];

  return routeTable(routes);
}

async function readRaw(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_HOOK_BODY_BYTES)
      throw new HttpError(413, `request body exceeds ${MAX_HOOK_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(' ') : value;
}

/** orderId, type and sequence of a payload, at its top level or under `data` (the Standard Webhooks envelope). */
export function eventFields(body: string): Pick<ReceivedDelivery, 'orderId' | 'eventType' | 'sequence'> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { orderId: null, eventType: null, sequence: null };
  }
  const top = isRecord(json) ? json : {};
  const data = isRecord(top.data) ? top.data : {};
  const pick = (key: string) => top[key] ?? data[key];
  const orderId = pick('orderId');
  const type = pick('type');
  const sequence = pick('sequence');
  return {
    orderId: typeof orderId === 'string' && orderId !== '' ? orderId : null,
    eventType: typeof type === 'string' ? type : null,
    sequence: Number.isSafeInteger(sequence) ? (sequence as number) : null,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * One delivery: verify, record with the answer decided under the order's lock, answer (after `delayMs`
 * if told), and note a sender that hung up first (`timeout`) or a refusal window that cut it (`refused`).
 */
async function receiveDelivery(
  deps: RouteDeps,
  merchantId: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { db, faults, refusal, logger } = deps;
  const raw = await readRaw(req);
  const body = raw.toString('utf8');
  const headers = {
    id: header(req, 'webhook-id'),
    timestamp: header(req, 'webhook-timestamp'),
    signature: header(req, 'webhook-signature'),
  };
  const verdict = verifyDelivery(raw, headers, await secretsFor(db, merchantId));
  const timestamp = headers.timestamp !== undefined ? Number.parseInt(headers.timestamp, 10) : Number.NaN;
  const received: ReceivedDelivery = {
    merchantId,
    webhookId: headers.id ?? null,
    webhookTimestamp: Number.isSafeInteger(timestamp) ? timestamp : null,
    signatureHeader: headers.signature ?? null,
    ...eventFields(body),
    body,
    signatureValid: verdict.valid,
    signatureError: verdict.valid ? null : verdict.error,
  };

  const global = faults.get();
  const rejection = JSON.stringify({ error: `invalid signature: ${received.signatureError}` });
  let plan: PlannedAnswer | undefined;
  const row = await recordDelivery(db, received, (orderDelivery, orderFaults) => {
    if (orderDelivery === null) {
      return { answer: '401', answerBody: rejection, delayMs: 0, faults: {}, answered: true };
    }
    const applied: AnswerFaults = effectiveFaults(global, orderFaults);
    plan = planAnswer(applied, orderDelivery);
    const held = plan.delayMs > 0;
    return {
      answer: held ? 'pending' : String(plan.status),
      answerBody: plan.body,
      delayMs: plan.delayMs,
      faults: applied,
      answered: !held,
    };
  });
  const log = {
    deliveryId: row.id,
    merchantId,
    webhookId: row.webhookId,
    orderId: row.orderId,
    eventType: row.eventType,
    sequence: row.sequence,
    orderDelivery: row.orderDelivery,
  };

  if (!plan) {
    logger.warn({ ...log, error: received.signatureError }, 'delivery rejected: bad signature');
    res.writeHead(401, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(rejection),
      'cache-control': 'no-store',
    });
    res.end(rejection);
    return;
  }
  if (plan.delayMs > 0) {
    const hungUp = await holdBack(res, plan.delayMs);
    if (hungUp) {
      const answer = refusal.refusingUntil() ? 'refused' : 'timeout';
      await finishDelivery(db, row.id, answer);
      logger.info(
        { ...log, answer, delayMs: plan.delayMs },
        'delivery not answered: the connection closed first',
      );
      return;
    }
    await finishDelivery(db, row.id, String(plan.status));
  }
  res.writeHead(plan.status, {
    'content-type': plan.contentType,
    'content-length': Buffer.byteLength(plan.body),
    'cache-control': 'no-store',
    ...(plan.retryAfterSeconds !== undefined ? { 'retry-after': String(plan.retryAfterSeconds) } : {}),
  });
  res.end(plan.body);
  logger.info({ ...log, answer: plan.status, delayMs: plan.delayMs }, 'delivery answered');
}

/** Waits `ms`; resolves true if the connection closed meanwhile (the sender gave up, or a refusal cut it). */
function holdBack(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.socket === null || res.socket.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onClose = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(false);
    }, ms);
    res.once('close', onClose);
  });
}
