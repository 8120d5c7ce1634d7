import formbody from '@fastify/formbody';
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { PaymentNoticeBody, refundNoticeSchema } from '../mq/notification';
import type { Logger } from '../platform/logger';
import { noMetrics, type PayreconMetrics } from '../platform/metrics';
import type { AlipayNotificationReader } from '../provider/alipay/notify';
import type { WechatPayNotificationReader } from '../provider/wechatpay/notify';

/**
 * The largest notification body the receiver reads: 64 KiB. Alipay's notifications are a few hundred
 * bytes to a few KiB (fund_bill_list, voucher_detail_list); a larger body is refused (413, `fail`)
 * before it is parsed.
 */
export const RECEIVER_BODY_LIMIT = 64 * 1024;

/** Where Alipay POSTs: the notify_url to register is `https://<your host>/notify/alipay`. */
export const ALIPAY_NOTIFY_PATH = '/notify/alipay';

/** Where WeChat Pay POSTs: WECHATPAY_NOTIFY_URL is `https://<your host>/notify/wechatpay`. */
export const WECHATPAY_NOTIFY_PATH = '/notify/wechatpay';

/** What the receiver needs of the publisher: publish a paid notice and resolve once the broker confirmed. */
export interface NoticePublisher {
  publishTradePaid(notice: PaymentNoticeBody): Promise<void>;
  publishTradeRefunded(notice: z.input<typeof refundNoticeSchema>): Promise<void>;
  isConnected(): boolean;
}

export interface ReceiverDeps {
  publisher: NoticePublisher;
  log: Logger;
  metrics?: PayreconMetrics;
  /** Alipay's route, when Alipay is configured. */
  alipay?: AlipayNotificationReader;
  /** WeChat Pay's route, when wechatpay is an enabled provider. */
  wechatpay?: WechatPayNotificationReader;
}

/**
 * The HTTP receiver of providers' asynchronous notifications, on fastify (which the shop's HTTP API will
 * share). A provider retries a notification until it reads its success answer, so the receiver answers
 * `success` only once the notice is in RabbitMQ (confirmed), or when there is nothing to publish; every
 * other outcome answers `fail` and is logged with its reason. `GET /healthz`: 200 while the publisher is
 * connected to RabbitMQ, 503 otherwise (notifications would answer `fail`).
 */
export function buildReceiver(deps: ReceiverDeps): FastifyInstance {
  const { publisher, log } = deps;
  const metrics = deps.metrics ?? noMetrics;
  const app = Fastify({ logger: false, bodyLimit: RECEIVER_BODY_LIMIT });
  // Only forms: a JSON or text body is refused (415) rather than read as a notification.
  app.removeAllContentTypeParsers();
  app.register(formbody, { bodyLimit: RECEIVER_BODY_LIMIT });

  app.get('/healthz', async (_request, reply) => {
    const broker = publisher.isConnected() ? 'connected' : 'disconnected';
    return reply.code(broker === 'connected' ? 200 : 503).send({ status: 'ok', broker });
  });

  // A body too large, not a form, or malformed: the provider's request never reached a route handler.
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    if (request.url.startsWith('/notify/')) {
      metrics.providerNotification(providerOf(request.url), 'refused');
      log.warn(
        { route: request.url, status, code: error.code, reason: 'UNPARSEABLE', detail: error.message },
        'notification refused',
      );
      // Each provider reads its own failure answer; WeChat's is JSON.
      if (request.url.startsWith(WECHATPAY_NOTIFY_PATH)) {
        return reply.code(status).send({ code: 'FAIL', message: 'unreadable notification' });
      }
      return reply.code(status).type('text/plain').send('fail');
    }
    log.error({ route: request.url, status, err: error.message }, 'request failed');
    return reply.code(status).send({ error: error.message });
  });

  const { alipay } = deps;
  if (alipay) {
    app.post(ALIPAY_NOTIFY_PATH, async (request, reply) => {
      const answer = (status: number, text: 'success' | 'fail') =>
        reply.code(status).type('text/plain').send(text);
      const read = alipay.read(request.body);
      const about = { provider: 'alipay', notifyId: notifyIdOf(request.body) };
      if (read.kind === 'refused') {
        metrics.providerNotification('alipay', 'refused');
        log.warn({ ...about, reason: read.reason, detail: read.detail }, 'notification refused');
        return answer(400, 'fail');
      }
      if (read.kind === 'nothing') {
        metrics.providerNotification('alipay', 'acknowledged');
        log.info(
          { ...about, orderId: read.orderId, why: read.why },
          'notification acknowledged; nothing to publish',
        );
        return answer(200, 'success');
      }
      const { notice } = read;
      try {
        await publisher.publishTradePaid(notice);
      } catch (error) {
        metrics.providerNotification('alipay', 'failed');
        log.error(
          { ...about, orderId: notice.orderId, messageId: notice.messageId, err: (error as Error).message },
          'notification not published (RabbitMQ did not confirm); answering fail so Alipay sends it again',
        );
        return answer(503, 'fail');
      }
      metrics.providerNotification('alipay', 'published');
      log.info(
        { ...about, orderId: notice.orderId, messageId: notice.messageId, status: notice.status },
        'notification published',
      );
      return answer(200, 'success');
    });
  }
  const { wechatpay } = deps;
  if (wechatpay) {
    // Its own scope: JSON is read here only, as the raw string the signature covers (the Alipay route
    // still refuses JSON with 415).
    app.register(async (scope) => {
      scope.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) =>
        done(null, body),
      );
      scope.post(WECHATPAY_NOTIFY_PATH, async (request, reply) => {
        // WeChat reads any 2xx as received (204, no body) and anything else as "send it again".
        const fail = (status: number, message: string) => reply.code(status).send({ code: 'FAIL', message });
        const read = wechatpay.read({
          headers: request.headers,
          body: typeof request.body === 'string' ? request.body : '',
        });
        const about = { provider: 'wechatpay', notificationId: read.id?.slice(0, 64) };
        if (read.kind === 'refused') {
          metrics.providerNotification('wechatpay', 'refused');
          log.warn({ ...about, reason: read.reason, detail: read.detail }, 'notification refused');
          const signature = ['BAD_SIGNATURE', 'UNKNOWN_SERIAL', 'STALE_TIMESTAMP'].includes(read.reason);
          return fail(signature ? 401 : 400, read.reason);
        }
        if (read.kind === 'nothing') {
          metrics.providerNotification('wechatpay', 'acknowledged');
          log.info(
            { ...about, orderId: read.orderId, why: read.why },
            'notification acknowledged; nothing to publish',
          );
          return reply.code(204).send();
        }
        const { notice } = read;
        try {
          if (read.kind === 'paid') await publisher.publishTradePaid(read.notice);
          else await publisher.publishTradeRefunded(read.notice);
        } catch (error) {
          metrics.providerNotification('wechatpay', 'failed');
          log.error(
            { ...about, orderId: notice.orderId, messageId: notice.messageId, err: (error as Error).message },
            'notification not published (RabbitMQ did not confirm); answering a failure so WeChat Pay sends it again',
          );
          return fail(500, 'RabbitMQ did not confirm the notice; send it again');
        }
        metrics.providerNotification('wechatpay', 'published');
        log.info(
          { ...about, orderId: notice.orderId, messageId: notice.messageId, status: notice.status },
          'notification published',
        );
        return reply.code(204).send();
      });
    });
  }
  return app;
}

function providerOf(url: string): string {
  return url.split('?')[0]?.split('/')[2] || 'unknown';
}

function notifyIdOf(body: unknown): string | undefined {
  const id = (body as { notify_id?: unknown } | null)?.notify_id;
  return typeof id === 'string' ? id.slice(0, 64) : undefined;
}
