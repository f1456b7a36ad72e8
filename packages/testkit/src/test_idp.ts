import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { Clock } from '@latchkey/protocol';
import { loadConfig, startIdp, type ConfigInput, type RunningIdp } from '@latchkey/server';
import { tlsFetch } from './tls_fetch.ts';

export interface TestIdpOptions {
  tls?: boolean;
  databaseUrl?: string | undefined;
  /** Extra configuration (port, host, issuer and data dir are chosen here unless given). */
  config?: ConfigInput;
  dataDir?: string;
  logger?: Logger;
  /** Bootstrap admin token; replicas of one deployment share it. */
  adminToken?: string;
  /** A fixed port, to restart an IdP where its clients expect it. */
  port?: number;
  /** Where the IdP reads "now" (a `FakeClock` to advance instead of sleeping); the system clock by default. */
  clock?: Clock;
  /** For the audit-on-vs-off benchmark only. */
  benchmarkWithoutAudit?: boolean;
}

export interface TestIdp {
  idp: RunningIdp;
  /** Issuer identifier, which is also the base URL. */
  issuer: string;
  adminToken: string;
  caPem: string | undefined;
  dataDir: string;
  /** fetch trusting the IdP's local CA. */
  fetch: typeof fetch;
  /** POST /register with the admin token; returns the RFC 7591 response body. */
  register(metadata: Record<string, unknown>): Promise<Record<string, any>>;
  /** A JSON request to the admin API with the admin token (POST unless `method` says otherwise). */
  admin(path: string, body?: unknown, method?: string): Promise<Response>;
  /** Form POST helper returning status, headers and parsed JSON body. */
  post(
    path: string,
    form: Record<string, string | string[]> | string,
    headers?: Record<string, string>,
  ): Promise<{ status: number; headers: Headers; body: any }>;
  close(): Promise<void>;
}

/** A free TCP port on loopback (tiny race window, acceptable in tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a real IdP on an ephemeral loopback port with a throwaway data folder. */
export async function startTestIdp(options: TestIdpOptions = {}): Promise<TestIdp> {
  const tls = options.tls ?? true;
  const port = options.port ?? (await freePort());
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'latchkey-test-'));
  const adminToken = options.adminToken ?? randomBytes(32).toString('base64url');
  const config = loadConfig({
    port,
    host: '127.0.0.1',
    issuer: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    dataDir,
    adminToken,
    tls: tls ? 'on' : 'off',
    databaseUrl: options.databaseUrl,
    logLevel: 'silent',
    ...options.config,
  });
  const idp = await startIdp(config, {
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.benchmarkWithoutAudit ? { benchmarkWithoutAudit: true } : {}),
  });
  const f = tlsFetch(idp.caPem);
  const issuer = config.issuer;
  const post: TestIdp['post'] = async (path, form, headers = {}) => {
    let body: string;
    if (typeof form === 'string') body = form;
    else {
      const p = new URLSearchParams();
      for (const [k, v] of Object.entries(form)) for (const one of Array.isArray(v) ? v : [v]) p.append(k, one);
      body = p.toString();
    }
    const res = await f(`${issuer}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body,
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* keep text */
    }
    return { status: res.status, headers: res.headers, body: parsed };
  };
  const admin = (path: string, body?: unknown, method = 'POST') =>
    f(`${issuer}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  return {
    idp,
    issuer,
    adminToken,
    caPem: idp.caPem,
    dataDir,
    fetch: f,
    post,
    admin,
    async register(metadata) {
      const res = await admin('/register', metadata);
      const body = (await res.json()) as Record<string, any>;
      if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(body)}`);
      return body;
    },
    async close() {
      await idp.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
