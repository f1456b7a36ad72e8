import { Agent, fetch as undiciFetch } from 'undici';

/**
 * A fetch that trusts the given CA (PEM), and presents a client certificate when one is given;
 * the platform fetch when neither is.
 */
export function tlsFetch(caPem: string | undefined, clientCert?: { key: string; cert: string }): typeof fetch {
  if (!caPem && !clientCert) return globalThis.fetch;
  const dispatcher = new Agent({ connect: { ...(caPem ? { ca: caPem } : {}), ...(clientCert ?? {}) } });
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as string, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}
