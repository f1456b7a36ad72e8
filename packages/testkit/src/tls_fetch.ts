import { Agent, fetch as undiciFetch } from 'undici';

/**
 * A fetch that trusts the given CA (PEM), and presents a client certificate when one is given;
 * the platform fetch when neither is.
 */
export function tlsFetch(
  caPem: string | undefined,
  clientCert?: { key: string; cert: string },
  options: { localAddress?: string } = {},
): typeof fetch {
  if (!caPem && !clientCert && !options.localAddress) return globalThis.fetch;
  // localAddress: another loopback source (127.0.0.2, ...) to play a second client machine.
  const dispatcher = new Agent({
    connect: { ...(caPem ? { ca: caPem } : {}), ...(clientCert ?? {}) },
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  });
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as string, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}
