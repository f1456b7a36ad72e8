import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { rootCertificates } from 'node:tls';
import { Agent, fetch as undiciFetch } from 'undici';
import { LatchkeyError } from '../errors.ts';

/**
 * Where the IdP may send a request, and how much it will take back. One policy per kind of
 * destination: URLs a client registered (jwks_uri) get the strict one; URLs the operator configured
 * (alert webhooks) are allowed wherever they point, and still get the caps.
 */
export interface OutboundPolicy {
  /** Plain http allowed (development without TLS); otherwise https only. */
  allowHttp: boolean;
  /** Loopback, private, link-local and other special-purpose addresses allowed (operator URLs). */
  allowSpecialAddresses: boolean;
  /** Hosts (exact names) and IP addresses or CIDRs reachable even though special-purpose. */
  allow?: readonly string[];
  /** Whole request, connection to last byte (default 5 s). */
  timeoutMs?: number;
  /** Largest response body read (default 64 KiB); a longer one is an error. */
  maxBytes?: number;
  /** PEM certificates trusted beside the system roots (a private CA of internal receivers and issuers). */
  ca?: string | undefined;
}

export type OutboundErrorKind = 'refused' | 'unreachable' | 'timeout' | 'too_large' | 'http_status' | 'redirect';

/**
 * Why an outbound request failed. `kind` is for logs and the audit only: the wire shows every
 * failure the same way, so the answers cannot be used to map the network behind the IdP.
 */
export class OutboundError extends LatchkeyError {
  readonly kind: OutboundErrorKind;

  constructor(kind: OutboundErrorKind, message: string) {
    super('outbound_fetch_failed', message);
    this.kind = kind;
  }
}

/** Special-purpose ranges (RFC 6890 and its IPv6 counterparts) a client's URL must not reach. */
const SPECIAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  SPECIAL.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['::ffff:0:0', 96],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  SPECIAL.addSubnet(net, prefix, 'ipv6');

const MAX_REDIRECTS = 3;

/** A fetch for the IdP's outbound requests, with one policy. See {@link OutboundPolicy}. */
export class OutboundFetch {
  private readonly allowedHosts = new Set<string>();
  private readonly allowedAddresses = new BlockList();
  private readonly agent: Agent;
  private readonly policy: OutboundPolicy;

  constructor(policy: OutboundPolicy) {
    this.policy = policy;
    for (const a of policy.allow ?? []) {
      const [addr, prefix] = a.split('/');
      const family = isIP(addr ?? '');
      if (family === 0) this.allowedHosts.add(a.toLowerCase());
      else if (prefix === undefined) this.allowedAddresses.addAddress(addr!, family === 4 ? 'ipv4' : 'ipv6');
      else this.allowedAddresses.addSubnet(addr!, Number(prefix), family === 4 ? 'ipv4' : 'ipv6');
    }
    // The address is checked where the connection is made, after DNS: a name that resolves (or
    // re-resolves, DNS rebinding) to a special-purpose address is refused before connecting.
    const lookup: LookupFunction = (hostname, options, callback) => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
        if (err) return callback(err, '', 0);
        const bad = addresses.find((a) => !this.addressAllowed(a.address, hostname));
        if (bad || addresses.length === 0)
          return callback(new OutboundError('refused', 'destination address not allowed'), '', 0);
        if ((options as { all?: boolean }).all)
          return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, addresses);
        callback(null, addresses[0]!.address, addresses[0]!.family);
      });
    };
    this.agent = new Agent({
      connect: { lookup, ...(policy.ca ? { ca: [...rootCertificates, policy.ca] } : {}) },
      connections: 16,
      headersTimeout: policy.timeoutMs ?? 5000,
      bodyTimeout: policy.timeoutMs ?? 5000,
    });
  }

  private addressAllowed(address: string, hostname: string): boolean {
    if (this.policy.allowSpecialAddresses || this.allowedHosts.has(hostname.toLowerCase())) return true;
    const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (this.allowedAddresses.check(address, family)) return true;
    return !SPECIAL.check(address, family);
  }

  /** Throws {@link OutboundError} `refused` when policy forbids the URL itself (scheme, literal address). */
  checkUrl(raw: string | URL): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OutboundError('refused', 'not a URL');
    }
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && this.policy.allowHttp))
      throw new OutboundError('refused', `${url.protocol} is not allowed`);
    if (url.username || url.password) throw new OutboundError('refused', 'credentials in URLs are not allowed');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // An IP literal is connected to without a lookup: check it here.
    if (isIP(host) !== 0 && !this.addressAllowed(host, host))
      throw new OutboundError('refused', 'destination address not allowed');
    return url;
  }

  /**
   * Sends the request and reads the whole body within the caps. Redirects are followed only
   * within the same origin (scheme, host and port), at most three. Non-2xx answers are errors
   * unless `acceptStatus` says otherwise.
   */
  async fetch(
    raw: string | URL,
    init: {
      method?: string;
      headers?: Record<string, string>;
      body?: string;
      acceptStatus?: (status: number) => boolean;
    } = {},
  ): Promise<{ status: number; headers: Headers; body: Buffer }> {
    let url = this.checkUrl(raw);
    const signal = AbortSignal.timeout(this.policy.timeoutMs ?? 5000);
    for (let hop = 0; ; hop++) {
      let res: Awaited<ReturnType<typeof undiciFetch>>;
      try {
        res = await undiciFetch(url, {
          method: init.method ?? 'GET',
          headers: init.headers,
          body: init.body,
          redirect: 'manual',
          signal,
          dispatcher: this.agent,
        });
      } catch (err) {
        throw classify(err);
      }
      if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
        await res.body?.cancel().catch(() => undefined);
        let next: URL;
        try {
          next = new URL(res.headers.get('location')!, url);
        } catch {
          throw new OutboundError('redirect', 'redirect to an invalid URL');
        }
        if (next.origin !== url.origin || hop >= MAX_REDIRECTS)
          throw new OutboundError('redirect', 'redirect to another origin, or too many');
        url = this.checkUrl(next);
        continue;
      }
      const body = await readCapped(res, this.policy.maxBytes ?? 64 * 1024).catch((err) => {
        throw err instanceof OutboundError ? err : classify(err);
      });
      const ok = init.acceptStatus ?? ((s: number) => s >= 200 && s < 300);
      if (!ok(res.status))
        throw Object.assign(new OutboundError('http_status', `HTTP ${res.status}`), { status: res.status });
      return { status: res.status, headers: res.headers as unknown as Headers, body };
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

async function readCapped(res: { body: unknown }, max: number): Promise<Buffer> {
  const body = res.body as (AsyncIterable<Uint8Array> & { cancel(): Promise<void> }) | null;
  if (!body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > max) throw new OutboundError('too_large', `response larger than ${max} bytes`); // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function classify(err: unknown): OutboundError {
  if (err instanceof OutboundError) return err;
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof OutboundError) return cause;
  const name = (err as Error).name;
  if (
    name === 'TimeoutError' ||
    name === 'AbortError' ||
    /timeout/i.test(String((cause as Error | undefined)?.name ?? ''))
  )
    return new OutboundError('timeout', 'timed out');
  return new OutboundError('unreachable', 'unreachable');
}
