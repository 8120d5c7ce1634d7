import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './http';

/**
 * A tiny router for the rig's node:http servers: a list of routes, each a method and a path pattern whose
 * groups become the handler's (percent-decoded) params. An unknown path is a 404 and a known path with
 * another method a 405 that lists the allowed ones, both thrown as HttpError.
 */

export type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  params: string[],
  url: URL,
) => Promise<void>;

export interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

export function routeTable(routes: Route[]): RequestHandler {
  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const matching = routes.filter((route) => route.pattern.test(path));
    if (matching.length === 0) throw new HttpError(404, `no such endpoint: ${req.method} ${path}`);
    const route = matching.find((candidate) => candidate.method === req.method);
    if (!route) {
      const allowed = matching.map((candidate) => candidate.method).join(', ');
      throw new HttpError(405, `${req.method} is not allowed on ${path} (allowed: ${allowed})`);
    }
    const params = (route.pattern.exec(path) ?? []).slice(1).map((part) => {
      try {
        return decodeURIComponent(part);
      } catch {
        throw new HttpError(400, `malformed percent-encoding in ${path}`);
      }
    });
    await route.handler(req, res, params, url);
  };
}
