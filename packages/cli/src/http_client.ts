import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import { Agent, fetch, type Response } from 'undici';

export interface Endpoint {
  url: string;
  fetch: (
    path: string,
    init?: { method?: string; headers?: Record<string, string>; body?: string },
  ) => Promise<Response>;
}

/** The local CA's certificate (`--ca`, LATCHKEY_CA_FILE, or `<data dir>/ca.pem`), when there is one. */
export function localCa(options: { ca?: string | undefined; dataDir?: string | undefined } = {}): string | undefined {
  const caFile =
    options.ca ??
    process.env.LATCHKEY_CA_FILE ??
    join(resolve(options.dataDir ?? process.env.LATCHKEY_DATA_DIR ?? './.latchkey'), 'ca.pem');
  return existsSync(caFile) ? readFileSync(caFile, 'utf8') : undefined;
}

/**
 * An HTTP client for the IdP that trusts the local CA (`--ca`, LATCHKEY_CA_FILE, or
 * `<data dir>/ca.pem`) besides the system's roots, presenting a client certificate when given.
 */
export function endpoint(
  options: { url?: string | undefined; ca?: string | undefined; dataDir?: string | undefined },
  clientCert?: { key: string; cert: string },
): Endpoint {
  // Without a URL: the IdP `latchkey serve` starts from the same environment (LATCHKEY_PORT, default 8443).
  const url = (
    options.url ??
    process.env.LATCHKEY_URL ??
    process.env.LATCHKEY_ISSUER ??
    `https://localhost:${process.env.LATCHKEY_PORT ?? 8443}`
  ).replace(/\/$/, '');
  const ca = localCa(options);
  const dispatcher = new Agent({
    connect: { ...(ca ? { ca: [ca, ...rootCertificates] } : {}), ...(clientCert ?? {}) },
  });
  return { url, fetch: (path, init = {}) => fetch(`${url}${path}`, { ...init, dispatcher }) };
}
