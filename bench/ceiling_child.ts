// Child process for the benchmark: the ceiling. A bare Fastify HTTPS route that signs a token of
// the same shape with node:crypto (or with jose, for reference) and returns it: no client
// authentication, no storage, no audit.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { SignJWT } from 'jose';
import { MasterKey } from '@latchkey/server';
import { loadTlsMaterial } from '../packages/server/src/tls/local_tls.ts';
import { reportCpuOnRequest } from './cpu.ts';

const mode = process.argv[2] === 'jose' ? 'jose' : 'node-crypto';
const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-ceiling-'));
const tls = await loadTlsMaterial({ dataDir, hosts: [], master: MasterKey.load({ dataDir }) });
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid: 'UjQxxpLmCuBP_AbB' })).toString(
  'base64url',
);
const app = Fastify({ https: { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' } });
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) =>
  done(null, body),
);

const claims = () => {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: 'https://127.0.0.1:40000',
    sub: 'bench-client',
    aud: 'https://inventory.internal',
    exp: now + 300,
    iat: now,
    jti: randomBytes(16).toString('base64url'),
    client_id: 'bench-client',
    scope: 'stock:read',
  };
};
app.post('/token', async (_req, reply) => {
  let token: string;
  if (mode === 'jose') {
    token = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'UjQxxpLmCuBP_AbB' })
      .sign(privateKey);
  } else {
    const input = `${header}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}`;
    token = `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
  }
  return reply
    .header('cache-control', 'no-store')
    .send({ access_token: token, token_type: 'Bearer', expires_in: 300, scope: 'stock:read' });
});
await app.listen({ port: 0, host: '127.0.0.1' });
const port = (app.server.address() as { port: number }).port;
reportCpuOnRequest(
  {
    url: `https://127.0.0.1:${port}/token`,
    authorization: '',
    body: 'grant_type=client_credentials&scope=stock%3Aread',
    tokenBytes: 0,
  },
  async () => {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  },
);
