/** What the sidecar knows of a request, whichever mode it came in by (proxy, forward auth, ext_authz). */
export interface RequestFacts {
  method: string;
  /** The path, percent-encoded as sent, without the query. */
  path: string;
  query: URLSearchParams;
  /** Lowercase names. */
  headers: Record<string, string | string[] | undefined>;
  sourceIp: string;
  /** The verified SPIFFE ID of the TLS peer (this connection's, or the one Envoy reports). */
  peer?: string;
  /** Epoch milliseconds. */
  now: number;
  /** Envoy ext_authz context extensions, when the request came that way. */
  extensions?: Record<string, string>;
}

const AMBIGUOUS = /(^|\/)\.\.?(\/|$)|\/\/|\\|%2f|%5c|%2e|%00/i;

/**
 * Splits a request target into path and query, refusing paths that a route table and the
 * upstream could read differently (dot segments, doubled slashes, encoded slashes, backslashes,
 * encoded dots, NUL — RFC 3986 §5.2.4 and §6.2.2.2 normalisation differs between servers): the
 * sidecar decides on the same path the upstream will see, or not at all.
 */
export function splitTarget(target: string): { path: string; query: URLSearchParams } | undefined {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  if (!path.startsWith('/') || AMBIGUOUS.test(path)) return undefined;
  try {
    decodeURIComponent(path);
  } catch {
    return undefined;
  }
  return { path, query: new URLSearchParams(q === -1 ? '' : target.slice(q + 1)) };
}

/**
 * The client address a proxy in front added: the last X-Forwarded-For entry (earlier entries come
 * from the client and are not trusted).
 */
export function lastForwardedFor(headers: RequestFacts['headers']): string | undefined {
  return headerValue(headers, 'x-forwarded-for')?.split(',').at(-1)?.trim() || undefined;
}

/** A header's single value (the first of repeated ones is not trusted: repeated is absent). */
export function headerValue(headers: RequestFacts['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return typeof v === 'string' ? v : undefined;
}
