import {
  createHash,
  generateKeyPairSync,
  randomBytes,
  sign,
  verify as cryptoVerify,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { createServer } from 'node:http';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { createVerifier as fastJwtVerifier } from 'fast-jwt';
import { createVerifier } from '@latchkey/sdk/verify';
import { RevocationSet } from '../packages/sdk/src/verify/revocation_set.ts';

const ISS = 'https://bench.issuer';
const AUD = 'https://orders.internal';

/** ops/s of `fn` over `ms`, each call on the next token (cycling). */
async function rate(tokens: string[], ms: number, fn: (t: string) => unknown): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) await fn(tokens[n++ % tokens.length]!);
  }
  return n / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchVerification(options: { ms: number; rounds: number; tokens: number }) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'bench-key';
  const jwk = { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, alg: 'ES256', use: 'sig' };
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid })).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  // A client certificate (any DER will do for the thumbprint) and tokens bound to it (RFC 8705 §3.1).
  // What the middleware passes: the connection's certificate, read once per connection.
  const certKeys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const connectionCert = new X509Certificate(
    Buffer.from(
      (
        await x509.X509CertificateGenerator.createSelfSigned(
          { serialNumber: '01', name: 'CN=svc', keys: certKeys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } },
          webcrypto as unknown as Crypto,
        )
      ).rawData,
    ),
  );
  const cnf = { 'x5t#S256': createHash('sha256').update(connectionCert.raw).digest('base64url') };
  const make = (bound = false): string => {
    const claims = {
      iss: ISS,
      sub: 'svc',
      aud: AUD,
      exp: now + 3600,
      iat: now,
      jti: randomBytes(16).toString('base64url'),
      client_id: 'svc',
      scope: 'orders:read',
      ...(bound ? { cnf } : {}),
    };
    const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  // Transaction Tokens (issue 16): typ txntoken+jwt, aud the trust domain.
  const TRUST_DOMAIN = 'bench.domain';
  const txnHeader = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'txntoken+jwt', kid })).toString('base64url');
  const makeTxn = (): string => {
    const claims = {
      iss: ISS,
      aud: TRUST_DOMAIN,
      iat: now,
      exp: now + 3600,
      jti: randomBytes(16).toString('base64url'),
      txn: randomBytes(16).toString('hex'),
      sub: 'user-1',
      scope: 'orders:buy',
      req_wl: 'spiffe://bench.domain/svc/gateway',
      tctx: { order: 42 },
    };
    const input = `${txnHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  };
  // Connection: close — the measuring loops keep the event loop busy for seconds, so an idle
  // keep-alive socket could be closed by the server just as the next verifier reuses it.
  const server = createServer((_req, res) =>
    res
      .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600', connection: 'close' })
      .end(JSON.stringify({ keys: [jwk] })),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const jwksUri = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;

  const joseSet = createLocalJWKSet({ keys: [jwk] });
  const pem = publicKey.export({ format: 'pem', type: 'spki' }) as string;
  const fast = fastJwtVerifier({
    key: pem,
    algorithms: ['ES256'],
    allowedIss: ISS,
    allowedAud: AUD,
    cache: options.tokens * 2,
    cacheTTL: 3600_000,
  });
  const subjects: [string, (tokens: string[]) => Promise<(t: string) => unknown>][] = [
    [
      '(a) node:crypto verify only (the limit)',
      async () => (t) => {
        const i = t.lastIndexOf('.');
        return cryptoVerify(
          'sha256',
          Buffer.from(t.slice(0, i)),
          { key: publicKey, dsaEncoding: 'ieee-p1363' },
          Buffer.from(t.slice(i + 1), 'base64url'),
        );
      },
    ],
    [
      '(b) jose jwtVerify + createLocalJWKSet',
      async () => (t) => jwtVerify(t, joseSet, { issuer: ISS, audience: AUD, typ: 'at+jwt' }),
    ],
    [
      '(c) fast-jwt verifier with its cache (tokens seen before)',
      async (tokens) => {
        for (const t of tokens) fast(t);
        return (t) => fast(t);
      },
    ],
    [
      '(d) Latchkey SDK, tokens not seen before',
      async () => {
        const v = await createVerifier({ issuer: ISS, audience: AUD, jwksUri, cacheSize: 1 });
        return (t) => v.verify(t);
      },
    ],
    [
      '(e) Latchkey SDK, tokens seen before',
      async (tokens) => {
        const v = await createVerifier({ issuer: ISS, audience: AUD, jwksUri, cacheSize: tokens.length * 2 });
        for (const t of tokens) await v.verify(t);
        return (t) => v.verify(t);
      },
    ],
    [
      "(f) Latchkey SDK, certificate-bound tokens seen before, with the connection's certificate",
      async (tokens) => {
        const v = await createVerifier({ issuer: ISS, audience: AUD, jwksUri, cacheSize: tokens.length * 2 });
        for (const t of tokens) await v.verify(t, { mtlsCertificate: connectionCert });
        return (t) => v.verify(t, { mtlsCertificate: connectionCert });
      },
    ],
    [
      '(g) Latchkey SDK verifyTransactionToken (a Txn-Token header, each new)',
      async () => {
        const v = await createVerifier({ issuer: ISS, audience: AUD, jwksUri, trustDomain: TRUST_DOMAIN });
        return (t) => v.verifyTransactionToken(t);
      },
    ],
    [
      '(h) jose jwtVerify of the same Transaction Tokens',
      async () => (t) => jwtVerify(t, joseSet, { issuer: ISS, audience: TRUST_DOMAIN, typ: 'txntoken+jwt' }),
    ],
  ];
  const results = new Map<string, number[]>();
  try {
    for (let round = 0; round < options.rounds; round++) {
      for (const [name, setup] of subjects) {
        // Fresh tokens per subject and round, so "not seen before" really is.
        const txn = name.startsWith('(g)') || name.startsWith('(h)');
        const tokens = Array.from({ length: name.startsWith('(d)') || txn ? 40_000 : options.tokens }, () =>
          txn ? makeTxn() : make(name.startsWith('(f)')),
        );
        const fn = await setup(tokens);
        const r = await rate(tokens, options.ms, fn);
        results.set(name, [...(results.get(name) ?? []), r]);
      }
    }
  } finally {
    server.close();
  }

  // Memory of a revocation set with 100,000 token entries.
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = process.memoryUsage().heapUsed;
  const set = new RevocationSet(ISS);
  for (let i = 0; i < 100_000; i++)
    set.apply({
      cursor: String(i),
      kind: 'token',
      iss: ISS,
      ref: randomBytes(16).toString('base64url'),
      expires_at: now + 300,
      revoked_at: now,
    });
  gc?.();
  const bytes = process.memoryUsage().heapUsed - before;
  return {
    rates: new Map([...results].map(([k, v]) => [k, median(v)])),
    revocationSetBytes: bytes,
    entries: set.size,
    measuredWithGc: gc !== undefined,
  };
}
