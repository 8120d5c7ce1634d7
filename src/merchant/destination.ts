import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * Where a merchant URL may lead (SSRF): only to public unicast addresses, unless the operator's
 * allow-list (MERCHANT_PRIVATE_ALLOWLIST) names the address. Loopback, link-local (169.254.169.254, the
 * cloud metadata service), private, carrier-grade NAT, unique-local, multicast, reserved and the IPv6
 * forms that embed an IPv4 address (mapped, 6to4, NAT64, Teredo) are refused otherwise. Ranges are
 * classified by ipaddr.js (its `range()` is "unicast" only for a public address).
 */

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** A destination the policy refuses: the attempt fails without a request. */
export class RefusedDestinationError extends Error {
  override name = 'RefusedDestinationError';
  readonly code = 'ERR_REFUSED_DESTINATION';
}

/** Parses `10.0.0.0/8,127.0.0.1,fd00::/8`: CIDRs or single addresses; throws on a bad entry. */
export function parseAllowlist(raw: string | undefined): Range[] {
  return (raw ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part): Range => {
      if (part.includes('/')) return ipaddr.parseCIDR(part);
      const address = ipaddr.parse(part);
      return [address, address.kind() === 'ipv4' ? 32 : 128];
    });
}

/** True when every entry of the comma-separated list is an address or a CIDR. */
export function isAllowlist(raw: string): boolean {
  try {
    parseAllowlist(raw);
    return true;
  } catch {
    return false;
  }
}

/** dns.lookup's shape with `all: true`: every address of a name. */
export type Resolver = (
  hostname: string,
  callback: (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void,
) => void;

const systemResolver: Resolver = (hostname, callback) => dnsLookup(hostname, { all: true }, callback);

export class DestinationPolicy {
  private readonly allowed: Range[];

  /** `resolve`: the system's resolver (getaddrinfo); tests give their own. */
  constructor(
    allowlist: string | undefined = undefined,
    private readonly resolve: Resolver = systemResolver,
  ) {
    this.allowed = parseAllowlist(allowlist);
  }

  /** Why `address` may not be connected to, or null when it may. */
  refusal(address: string): string | null {
    let ip: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      ip = ipaddr.parse(address);
    } catch {
      return `${address} is not an IP address`;
    }
    // ::ffff:127.0.0.1 is 127.0.0.1.
    if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress())
      ip = (ip as ipaddr.IPv6).toIPv4Address();
    if (this.allowed.some(([range, bits]) => range.kind() === ip.kind() && ip.match(range, bits)))
      return null;
    const range = ip.range();
    if (range === 'unicast') return null;
    return `${address} is not a public address (${range}); MERCHANT_PRIVATE_ALLOWLIST does not name it`;
  }

  /** Throws RefusedDestinationError unless `address` may be connected to. */
  check(address: string): void {
    const why = this.refusal(address);
    if (why) throw new RefusedDestinationError(why);
  }

  /**
   * A `lookup` for net/tls connect (undici's `connect.lookup`): resolves the name, refuses it unless
   * every address it has is allowed, and hands the connection exactly the addresses it checked, so the
   * socket goes where the check said (no second resolution that a rebinding DNS could answer otherwise).
   */
  readonly lookup = (
    hostname: string,
    options: { family?: number | string; all?: boolean; hints?: number },
    callback: (
      error: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void,
  ): void => {
    this.resolve(hostname, (error, addresses) => {
      if (error) return callback(error, []);
      const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
      const usable = addresses.filter((a) => !family || a.family === family);
      const refused = usable.map((a) => this.refusal(a.address)).find((why) => why !== null);
      if (refused) return callback(new RefusedDestinationError(`${hostname}: ${refused}`), []);
      const [first] = usable;
      if (!first)
        return callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), []);
      if (options.all) return callback(null, usable);
      callback(null, first.address, first.family);
    });
  };

  /** An IP literal in a URL is connected to without a lookup: it is checked here instead. */
  checkUrlHost(url: URL): void {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) this.check(host);
  }
}
