import type { ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import { DestinationPolicy } from '../../src/merchant/destination';
import { merchantTransport, postWebhook } from '../../src/merchant/webhook';
import { connectAny } from '../../src/mq/connect';
import { createLogger } from '../../src/platform/logger';
import {
  type NotifyTtlReport,
  type NotifyTtlRequest,
  notifyTtlTopology,
  type RetryRecord,
  TTL_HEADERS,
  type TtlMessage,
} from './notify-ttl';

/**
 * The seed article's merchant notification, for comparison only (never imported by payrecon): a
 * consumer on a work queue POSTs each event to the merchant (payrecon's own signing and POST,
 * src/merchant/webhook.ts, so only the ladder differs) and, when the merchant does not acknowledge,
 * republishes it to ONE delay queue with a per-message TTL (`expiration`) of the next ladder step; the
 * delay queue has no consumer and dead-letters expired messages back to the work queue. RabbitMQ only
 * expires a message when it reaches the head of its queue, so a short step behind a long one waits
 * for the long one: this service records, for every retry, when it was due and when it was consumed.
 *
 * Environment: AMQP_URL, BENCH_NOTIFY_PREFIX, BENCH_NOTIFY_LADDER (ms, comma-separated),
 * BENCH_NOTIFY_SECRET (whsec_...), BENCH_NOTIFY_TIMEOUT_MS (5000), BENCH_NOTIFY_PREFETCH (200).
 * Talks to the bench over IPC (`progress`, `report`).
 */

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is required`);
  return value;
}

async function main() {
  const log = createLogger('notify-ttl-baseline');
  const topology = notifyTtlTopology(requireEnv('BENCH_NOTIFY_PREFIX'));
  const ladder = requireEnv('BENCH_NOTIFY_LADDER').split(',').map(Number);
  const secret = requireEnv('BENCH_NOTIFY_SECRET');
  const timeoutMs = Number(process.env.BENCH_NOTIFY_TIMEOUT_MS || 5_000);
  const prefetch = Number(process.env.BENCH_NOTIFY_PREFETCH || 200);
  // The bench's merchant simulator listens on this machine: the same SSRF guard as payrecon's, told so.
  const transport = merchantTransport(
    new DestinationPolicy(process.env.MERCHANT_PRIVATE_ALLOWLIST ?? '127.0.0.1/32'),
  );

  const amqpUrl = requireEnv('AMQP_URL');
  const retries: RetryRecord[] = [];
  /** eventId/attempt of every retry recorded: a message redelivered after a lost connection counts once. */
  const seen = new Set<string>();
  const settled: NotifyTtlReport['settled'] = {};
  let published = 0;
  let consumed = 0;
  let reconnects = 0;
  const errors: string[] = [];
  const noteError = (message: string) => {
    if (errors.length < 5) errors.push(message);
  };

  const onMessage = async (channel: ConfirmChannel, message: ConsumeMessage) => {
    const firedAt = Date.now();
    consumed++;
    const headers = message.properties.headers ?? {};
    const before = Number(headers[TTL_HEADERS.attempts] ?? 0);
    const event = JSON.parse(message.content.toString('utf8')) as TtlMessage;
    const key = `${event.eventId}/${before + 1}`;
    if (before > 0 && !seen.has(key)) {
      seen.add(key);
      retries.push({
        eventId: event.eventId,
        attempt: before + 1,
        stepMs: Number(headers[TTL_HEADERS.stepMs]),
        scheduledAt: Number(headers[TTL_HEADERS.scheduledAt]),
        firedAt,
      });
    }
    try {
      const outcome = await postWebhook(
        { url: event.url, secrets: [secret], id: event.eventId, body: event.body, timeoutMs },
        transport,
      );
      const attempt = before + 1;
      if (outcome.outcome === 'DELIVERED' || outcome.outcome === 'GONE') {
        settled[event.eventId] = { status: outcome.outcome, attempts: attempt };
      } else {
        const step = ladder[attempt - 1];
        if (step === undefined) {
          settled[event.eventId] = { status: 'EXHAUSTED', attempts: attempt };
        } else {
          // The article's ladder: the wait is the message's own TTL in the one delay queue.
          const wait = Math.max(step, outcome.retryAfterMs ?? 0);
          await new Promise<void>((resolve, reject) => {
            channel.publish(
              topology.delayExchange,
              '',
              message.content,
              {
                persistent: true,
                expiration: String(wait),
                headers: {
                  [TTL_HEADERS.attempts]: attempt,
                  [TTL_HEADERS.stepMs]: wait,
                  [TTL_HEADERS.scheduledAt]: Date.now() + wait,
                },
              },
              (error) => (error ? reject(error) : resolve()),
            );
          });
          published++;
        }
      }
      channel.ack(message);
    } catch (error) {
      // A closed channel: the broker redelivers the unacknowledged message on the next connection.
      noteError((error as Error).message);
      log.warn({ err: (error as Error).message }, 'notification failed; requeued');
      try {
        channel.nack(message, false, true);
      } catch {
        // the channel is gone already
      }
    }
  };

  let connection: ChannelModel | null = null;
  let stopping = false;
  // Like any production consumer, it reconnects: other jobs on a shared machine restart the broker.
  const connect = async (): Promise<void> => {
    for (;;) {
      try {
        const conn = await connectAny(amqpUrl);
        conn.on('error', (error: Error) => log.warn({ err: error.message }, 'broker connection error'));
        conn.on('close', () => {
          if (stopping) return;
          reconnects++;
          noteError('the broker connection closed; reconnected');
          log.warn('broker connection closed; reconnecting');
          connection = null;
          setTimeout(() => void connect(), 1_000);
        });
        const channel = await conn.createConfirmChannel();
        channel.on('error', (error: Error) => log.warn({ err: error.message }, 'channel error'));
        await channel.prefetch(prefetch);
        await channel.consume(topology.workQueue, (message) => {
          if (message) void onMessage(channel, message);
        });
        connection = conn;
        return;
      } catch (error) {
        log.warn({ err: (error as Error).message }, 'cannot reach the broker; retrying in 1 s');
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      }
    }
  };
  await connect();

  process.on('message', (raw) => {
    const request = raw as NotifyTtlRequest;
    if (request.type === 'progress') {
      process.send?.({ type: 'progress', settled: Object.keys(settled).length, consumed });
    } else if (request.type === 'report') {
      const report: NotifyTtlReport = {
        type: 'report',
        retries,
        settled,
        published,
        consumed,
        reconnects,
        errors,
      };
      process.send?.(report);
    }
  });

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, async () => {
      stopping = true;
      await connection?.close().catch(() => {});
      process.exit(0);
    });
  }
  log.info({ ladder, prefetch, topology }, 'notify ttl baseline started');
}

main().catch((error) => {
  console.error(`notify ttl baseline failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
