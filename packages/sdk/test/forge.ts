import { createServer, type Server } from 'node:http';
import * as jose from 'jose';

/**
 * A stand-in issuer for claim-level tests: serves a JWKS with a key the test holds, so the test
 * can sign tokens with any claims and headers, and counts every request it receives.
 */
export async function startForgeIssuer() {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const kid = 'forge-1';
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  let jwksRequests = 0;
  const server: Server = createServer((req, res) => {
    if (req.url === '/jwks') {
      jwksRequests++;
      res
        .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' })
        .end(JSON.stringify({ keys: [jwk] }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const issuer = 'https://forge.issuer';
  const now = () => Math.floor(Date.now() / 1000);
  return {
    issuer,
    jwksUri: `${base}/jwks`,
    jwk,
    privateKey,
    publicKey,
    get jwksRequests() {
      return jwksRequests;
    },
    claims: (over: Record<string, unknown> = {}) => ({
      iss: issuer,
      sub: 'svc',
      aud: 'https://orders.internal',
      iat: now(),
      exp: now() + 300,
      jti: `j-${Math.random()}`,
      client_id: 'svc',
      ...over,
    }),
    /** Signs with the trusted key (or another key) and any header. */
    sign: (
      claims: Record<string, unknown>,
      header: Record<string, unknown> = {},
      key: jose.CryptoKey | Uint8Array = privateKey,
    ) =>
      new jose.CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid, ...header } as jose.CompactJWSHeaderParameters)
        .sign(
          key,
          Array.isArray(header.crit)
            ? { crit: Object.fromEntries((header.crit as string[]).map((c) => [c, true])) }
            : undefined,
        ),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
