import { Agent, fetch as undiciFetch } from 'undici';

/** A fetch that trusts the given CA (PEM); the platform fetch when none is given. */
export function tlsFetch(caPem: string | undefined): typeof fetch {
  if (!caPem) return globalThis.fetch;
  const dispatcher = new Agent({ connect: { ca: caPem } });
  return ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as string, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}
