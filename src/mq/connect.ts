import amqplib, { type ChannelModel } from 'amqplib';
import { redactUrl } from '../platform/redact';
import { splitUrlList } from '../platform/url-list';

/** The broker URLs of an AMQP_URL value: one, or every node of a cluster. */
export function amqpUrls(amqpUrl: string | readonly string[]): string[] {
  return typeof amqpUrl === 'string' ? splitUrlList(amqpUrl) : [...amqpUrl];
}

/** No node of the list accepted a connection; the message names each (password hidden) and why. */
export class BrokerUnreachableError extends Error {
  override name = 'BrokerUnreachableError';
}

/**
 * A plain amqplib connection to the first node of the list that accepts one, tried in order, for
 * short-lived work (declaring the topology, an operator command, reading the parking queue). It does
 * not reconnect: long-lived processes use amqp-connection-manager with the whole list instead.
 */
export async function connectAny(
  amqpUrl: string | readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<ChannelModel> {
  const urls = amqpUrls(amqpUrl);
  if (urls.length === 0) throw new BrokerUnreachableError('no RabbitMQ URL given');
  const failures: { url: string; error: unknown }[] = [];
  for (const url of urls) {
    try {
      return await amqplib.connect(url, { timeout: options.timeoutMs ?? 5_000 });
    } catch (error) {
      failures.push({ url, error });
    }
  }
  // One URL: its error as it was (callers already name the URL); several: which node said what.
  if (failures.length === 1) throw failures[0]?.error;
  throw new BrokerUnreachableError(
    `no node answered: ${failures.map((f) => `${redactUrl(f.url)}: ${reason(f.error)}`).join('; ')}`,
    { cause: failures.at(-1)?.error },
  );
}

/** A connection error in one line: Node's AggregateError (IPv4 and IPv6 refused) has no message of its own. */
function reason(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return error.errors.map(reason).join(', ');
  if (error instanceof Error)
    return error.message || String((error as NodeJS.ErrnoException).code ?? error.name);
  return String(error);
}
