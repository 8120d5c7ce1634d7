import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DestinationPolicy } from '../src/merchant/destination';
import { merchantTransport, postWebhook, RESPONSE_READ_BYTES } from '../src/merchant/webhook';
import { ConfigError, loadConfig } from '../src/platform/config';

/**
 * The POST itself (src/merchant/webhook.ts) against a merchant of the test's own on 127.0.0.1: where the
 * destination policy lets it connect (SSRF), and how much of an answer it reads.
 */
let server: Server;
let port: number;
const requests: string[] = [];
/** What the merchant does next: its default answers `success`. */
let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end('success');

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push(req.url ?? '');
    req.resume();
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const SECRET = `whsec_${Buffer.from('a test secret of 24 bytes!').toString('base64')}`;

function post(url: string, allowlist?: string, timeoutMs = 5_000) {
  return postWebhook(
    { url, secrets: [SECRET], id: 'evt_test_1', body: '{"id":"evt_test_1"}', timeoutMs },
    merchantTransport(new DestinationPolicy(allowlist)),
  );
}

describe('merchant destinations (SSRF)', () => {
  it.each([
    ['loopback by address', () => `http://127.0.0.1:${port}/a`],
    ['loopback by name', () => `http://localhost:${port}/b`],
    ['loopback as an IPv4-mapped IPv6 address', () => `http://[::ffff:127.0.0.1]:${port}/c`],
    ['the cloud metadata address (link-local)', () => 'http://169.254.169.254/latest/meta-data/'],
    ['a private range', () => 'http://10.1.2.3/hooks'],
    ['IPv6 loopback', () => `http://[::1]:${port}/d`],
    ['loopback written as one decimal number', () => `http://2130706433:${port}/e`],
  ])('refuses %s without a request', async (_what, url) => {
    const before = requests.length;
    const outcome = await post(url());
    expect(outcome).toMatchObject({ outcome: 'FAILED', errorKind: 'REFUSED_DESTINATION', httpStatus: null });
    expect(outcome.responsePrefix).toMatch(/not a public address/);
    expect(requests.length).toBe(before);
  });

  it('connects to an address the allow-list names, by address and by a name that resolves to it', async () => {
    const before = requests.length;
    expect(await post(`http://127.0.0.1:${port}/ok`, '127.0.0.1/32')).toMatchObject({
      outcome: 'DELIVERED',
      httpStatus: 200,
    });
    // localhost may also resolve to ::1, which this list does not name: only IPv4 loopback is asked for.
    expect((await post(`http://localhost:${port}/ok`, '127.0.0.0/8,::1')).outcome).toBe('DELIVERED');
    expect(requests.length).toBe(before + 2);
  });

  it('a name with any refused address is refused whole', async () => {
    const policy = new DestinationPolicy('127.0.0.1/32');
    const answer = await new Promise<{ error: Error | null; addresses: unknown }>((resolve) =>
      policy.lookup('localhost', { all: true }, (error, addresses) => resolve({ error, addresses })),
    );
    // Either localhost is only 127.0.0.1 here (allowed, pinned to it), or it is ::1 too (refused).
    if (answer.error) expect(answer.error.message).toMatch(/::1 is not a public address/);
    else expect(answer.addresses).toEqual([{ address: '127.0.0.1', family: 4 }]);
  });

  it('connects to the address it checked: one resolution per connection, none a rebinding DNS could change', async () => {
    // A name whose DNS answers an allowed address first and the metadata address after (DNS rebinding).
    const answers = ['127.0.0.1', '169.254.169.254'];
    const asked: string[] = [];
    const policy = new DestinationPolicy('127.0.0.1/32', (hostname, callback) => {
      asked.push(hostname);
      callback(null, [{ address: answers[Math.min(asked.length - 1, 1)] as string, family: 4 }]);
    });
    const before = requests.length;
    const outcome = await postWebhook(
      {
        url: `http://merchant.rebind.test:${port}/pinned`,
        secrets: [SECRET],
        id: 'evt_test_2',
        body: '{}',
        timeoutMs: 5_000,
      },
      merchantTransport(policy),
    );
    expect(outcome).toMatchObject({ outcome: 'DELIVERED', httpStatus: 200 });
    expect(asked).toEqual(['merchant.rebind.test']);
    expect(requests.slice(before)).toEqual(['/pinned']);
  });

  it(`reads at most ${RESPONSE_READ_BYTES} bytes of an answer: an endless body is not an acknowledgement`, async () => {
    let written = 0;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(16_384, 'x');
      const pump = () => {
        while (!res.destroyed) {
          written += chunk.length;
          if (!res.write(chunk)) break;
        }
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    };
    try {
      const outcome = await post(`http://127.0.0.1:${port}/endless`, '127.0.0.1/32', 3_000);
      expect(outcome).toMatchObject({ outcome: 'FAILED', errorKind: 'BAD_BODY', httpStatus: 200 });
      expect(outcome.responsePrefix).toBe('x'.repeat(512));
      expect(outcome.durationMs).toBeLessThan(2_000);
    } finally {
      handler = (_req, res) => res.end('success');
    }
    expect(written).toBeGreaterThan(0);
  });

  it('MERCHANT_PRIVATE_ALLOWLIST must be addresses or CIDRs', () => {
    expect(
      loadConfig({ MERCHANT_PRIVATE_ALLOWLIST: '127.0.0.1/32, 10.0.0.0/8,::1' }).MERCHANT_PRIVATE_ALLOWLIST,
    ).toBe('127.0.0.1/32, 10.0.0.0/8,::1');
    expect(() => loadConfig({ MERCHANT_PRIVATE_ALLOWLIST: 'intranet.local' })).toThrow(ConfigError);
    expect(() => loadConfig({ MERCHANT_PRIVATE_ALLOWLIST: '10.0.0.0/99' })).toThrow(
      /MERCHANT_PRIVATE_ALLOWLIST/,
    );
  });
});
