import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ProviderReplyError, ProviderUnavailableError, StatementUrlExpiredError } from './gateway';
import type { StatementLocation } from './statement-format';

/**
 * Downloads a statement from the short-lived URL the provider handed out (a plain GET: the URL carries its
 * own token), streamed. Only the wait for the response is bounded: a day of a million rows takes a while
 * to stream. 403/410 mean the URL's time is up (ask for a new one); 5xx may pass; any other refusal is
 * an answer payrecon cannot use. `name` says whose file it is in errors ("Alipay's 2026-01-02 bill").
 */
export async function downloadStatementFile(
  location: StatementLocation,
  timeoutMs: number,
  name: string,
): Promise<Readable> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response: Response;
  try {
    response = await fetch(location.downloadUrl, { signal: controller.signal });
  } catch (error) {
    throw new ProviderUnavailableError(`${name} could not be downloaded: ${(error as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 403 || response.status === 410) {
    await response.body?.cancel();
    throw new StatementUrlExpiredError(`the download URL of ${name} has expired`);
  }
  if (!response.ok || !response.body) {
    const body = (await response.text()).slice(0, 300);
    const error = `downloading ${name} answered HTTP ${response.status}: ${body}`;
    throw response.status >= 500 ? new ProviderUnavailableError(error) : new ProviderReplyError(error);
  }
  return Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
}
