import { describeError } from '../../src/cli/context';

/**
 * The base of the rig's HTTP clients for its own JSON services (tools/simulator/client.ts,
 * tools/merchant/client.ts): one request with a timeout, the reply's JSON whatever its status, an error
 * that names the URL and how to start the service when nothing answers, and `ok` for the calls that want
 * a 2xx.
 */

export const DEFAULT_TIMEOUT_MS = 30_000;

/** Nothing answered at the service's URL (not started, wrong URL, refusing connections, timed out). */
export class ServiceUnreachableError extends Error {
  override name = 'ServiceUnreachableError';
}

/** The service answered with an HTTP error; `body` is its JSON (`{ error, ... }`). */
export class ServiceHttpError extends Error {
  override name = 'ServiceHttpError';
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
    message: string,
  ) {
    super(message);
  }
}

export interface JsonReply<T = Record<string, unknown>> {
  status: number;
  body: T;
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Who the client talks to, for its errors. */
export interface ServiceDescription {
  /** As it reads in a sentence: `the payment simulator`. */
  name: string;
  /** How to start it: `npm run simulator`. */
  startWith: string;
  /** The errors to throw (subclasses, so callers can tell the services apart). */
  unreachable: new (
    message: string,
  ) => ServiceUnreachableError;
  httpError: new (status: number, body: Record<string, unknown>, message: string) => ServiceHttpError;
}

export abstract class JsonHttpClient<
  Method extends HttpMethod = HttpMethod,
  Health = Record<string, unknown>,
> {
  readonly url: string;
  private readonly timeoutMs: number;

  protected constructor(
    url: string,
    private readonly service: ServiceDescription,
    options: { timeoutMs?: number } = {},
  ) {
    this.url = url.replace(/\/$/, '');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /**
   * One request, whatever HTTP status it gets (a body that is not JSON comes back as `{ error: text }`).
   * Throws the service's unreachable error, naming the URL, when nothing answers.
   */
  async request<T = Record<string, unknown>>(
    method: Method,
    path: string,
    body?: unknown,
  ): Promise<JsonReply<T>> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      const cause = (error as { cause?: unknown }).cause ?? error;
      throw new this.service.unreachable(
        `${this.service.name} is not reachable at ${this.url} (start it with: ${this.service.startWith}): ${describeError(cause)}`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { error: text.slice(0, 500) };
    }
    return { status: response.status, body: parsed as T };
  }

  health(): Promise<JsonReply<Health>> {
    return this.request('GET' as Method, '/health');
  }

  /** Polls /health until the service answers 200; an abort (e.g. its process exited) ends the wait. */
  async waitUntilUp(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      try {
        if ((await this.health()).status === 200) return;
      } catch (error) {
        if (!(error instanceof this.service.unreachable)) throw error;
      }
      if (Date.now() >= until) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new this.service.unreachable(
      `${this.service.name} did not answer at ${this.url} within ${timeoutMs / 1000}s`,
    );
  }

  /** The reply's body if it is a 2xx; the service's HTTP error otherwise. */
  protected async ok<T>(method: Method, path: string, body?: unknown): Promise<T> {
    return this.check(method, path, await this.request<T>(method, path, body));
  }

  protected check<T>(method: Method, path: string, reply: JsonReply<T>): T {
    if (reply.status >= 200 && reply.status < 300) return reply.body;
    const body = reply.body as Record<string, unknown>;
    const detail = typeof body.error === 'string' ? body.error : JSON.stringify(body);
    throw new this.service.httpError(
      reply.status,
      body,
      `${this.service.name} answered ${method} ${path} with HTTP ${reply.status}: ${detail}`,
    );
  }
}
