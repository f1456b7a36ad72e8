import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { assertTlsProfile, opensslSelfSigned, startTestIdp, tlsFetch } from '@latchkey/testkit';

const run = promisify(execFile);

test('an operator certificate made by openssl (LATCHKEY_TLS_CERT/KEY) is served instead of the local CA', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-tls-'));
  try {
    const own = await opensslSelfSigned(dir, 'operator', '/CN=localhost', [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    const t = await startTestIdp({ config: { tlsCert: own.certFile, tlsKey: own.keyFile } });
    try {
      assert.equal(t.caPem, undefined, 'no local CA when the operator gives a certificate');
      const f = tlsFetch(own.cert);
      const res = await f(`${t.issuer}/healthz`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('strict-transport-security') ?? '', /max-age=/);
      const { stdout } = await run('curl', ['-sS', '--fail', '--cacert', own.certFile, `${t.issuer}/jwks`]);
      assert.equal(JSON.parse(stdout).keys.length, 2);
      await assert.rejects(
        run('curl', ['-sS', '--fail', `${t.issuer.replace('https:', 'http:')}/healthz`]),
        'plain HTTP to the HTTPS port fails',
      );
    } finally {
      await t.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreadable LATCHKEY_TLS_CERT stops the start with tls_material_invalid', async () => {
  await assert.rejects(
    startTestIdp({ config: { tlsCert: '/nonexistent/cert.pem', tlsKey: '/nonexistent/key.pem' } }),
    (e: { code?: string }) => e.code === 'tls_material_invalid',
  );
});

test('the IdP refuses TLS 1.1 and CBC-only TLS 1.2 clients (openssl), and negotiates ECDHE with an AEAD cipher', async () => {
  const t = await startTestIdp();
  try {
    const port = new URL(t.issuer).port;
    await assertTlsProfile(Number(port));
    const sClient = async (args: string) =>
      (await run('sh', ['-c', `echo | openssl s_client -connect 127.0.0.1:${port} ${args} 2>&1; true`])).stdout;
    assert.match(await sClient('-tls1_3'), /TLSv1\.3, Cipher is TLS_/);
  } finally {
    await t.close();
  }
});
