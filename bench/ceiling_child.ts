// Child process for the benchmark: the ceilings. A token of the same shape signed with node:crypto
// and returned — over plain node:https (`plain`: the physical ceiling), or from a bare Fastify
// HTTPS route (with node:crypto, or with jose for reference): no client authentication, no
// storage, no audit.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:https';
import Fastify from 'fastify';
import { SignJWT } from 'jose';
import { MasterKey } from '@latchkey/server';
import { loadTlsMaterial } from '../packages/server/src/tls/local_tls.ts';
import { reportCpuOnRequest } from './cpu.ts';

const mode = process.argv[2] === 'jose' ? 'jose' : process.argv[2] === 'plain' ? 'plain' : 'node-crypto';
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
const signNodeCrypto = (): string => {
  const input = `${header}.${Buffer.from(JSON.stringify(claims())).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
};
// The physical ceiling: node:https reads the form, node:crypto signs, JSON.stringify answers.
const plain = createServer({ cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2' }, (req, res) => {
  req.resume();
  req.on('end', () => {
    const body = JSON.stringify({
      access_token: signNodeCrypto(),
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'stock:read',
    });
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(body);
  });
});
app.post('/token', async (_req, reply) => {
  let token: string;
  if (mode === 'jose') {
    token = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'UjQxxpLmCuBP_AbB' })
      .sign(privateKey);
  } else {
    token = signNodeCrypto();
  }
  return reply
    .header('cache-control', 'no-store')
    .send({ access_token: token, token_type: 'Bearer', expires_in: 300, scope: 'stock:read' });
});
let port: number;
if (mode === 'plain') {
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  port = (plain.address() as { port: number }).port;
} else {
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = (app.server.address() as { port: number }).port;
}
reportCpuOnRequest(
  {
    url: `https://127.0.0.1:${port}/token`,
    authorization: '',
    body: 'grant_type=client_credentials&scope=stock%3Aread',
    tokenBytes: 0,
  },
  async () => {
    if (mode === 'plain') await new Promise((r) => plain.close(r));
    else await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  },
);
