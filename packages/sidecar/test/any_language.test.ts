// docs/any-language.md: every recipe run as written, against a real IdP, with Debian's Python
// (PyJWT where a JWT library is needed), openssl, curl and a POSIX shell.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startTestIdp, type TestIdp } from '@latchkey/testkit';

const exec = promisify(execFile);
const DOC = readFileSync(new URL('../../../docs/any-language.md', import.meta.url), 'utf8');
const AUD = 'https://orders.internal';
/** Debian's Python carries Debian's python3-jwt; another python3 first on PATH may not. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function recipe(name: string): string {
  const m = new RegExp(`<!-- test: ${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  assert.ok(m, `docs/any-language.md has the recipe ${name}`);
  return m[1] as string;
}

describe('docs/any-language.md, run as written', () => {
  let t: TestIdp;
  let dir: string;
  let client: Record<string, string>;
  let env: NodeJS.ProcessEnv;
  const token = async () =>
    (
      await t.post(
        '/token',
        { grant_type: 'client_credentials', resource: AUD },
        {
          authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
        },
      )
    ).body.access_token as string;
  // Asynchronously: the IdP answering the recipes runs in this process.
  const python = (code: string, extra: Record<string, string>) =>
    exec(PYTHON, ['-c', code], { cwd: dir, env: { ...env, ...extra }, timeout: 30_000 });

  before(async () => {
    t = await startTestIdp();
    client = await t.register({ client_id: 'py-orders', audiences: [AUD] });
    dir = mkdtempSync(join(tmpdir(), 'latchkey-any-language-'));
    writeFileSync(join(dir, 'idp-ca.pem'), t.caPem ?? '');
    env = {
      ...process.env,
      ISSUER: t.issuer,
      AUDIENCE: AUD,
      CLIENT_ID: client.client_id,
      CLIENT_SECRET: client.client_secret,
      IDP_CA: join(dir, 'idp-ca.pem'),
      SSL_CERT_FILE: join(dir, 'idp-ca.pem'),
    };
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('verify-pyjwt: PyJWT verifies a Latchkey access token and refuses a tampered or foreign one', async () => {
    const good = await token();
    const r = await python(recipe('verify-pyjwt'), { TOKEN: good });
    assert.equal(r.stdout, `py-orders ${AUD}\n`);
    const [h, p, s] = good.split('.');
    const claims = JSON.parse(Buffer.from(p as string, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, client_id: 'admin' })).toString('base64url')}.${s}`;
    await assert.rejects(
      python(recipe('verify-pyjwt'), { TOKEN: forged }),
      /InvalidSignatureError|Signature verification failed/,
    );
    await assert.rejects(
      python(recipe('verify-pyjwt'), { TOKEN: good, AUDIENCE: 'https://other.internal' }),
      /InvalidAudienceError/,
    );
  });

  test('feed-python: the revocation feed and the matching rules, with the standard library', async () => {
    const fresh = await token();
    assert.equal((await python(recipe('feed-python'), { TOKEN: fresh })).stdout, 'valid\n');
    const revoked = await token();
    const r = await t.post(
      '/revoke',
      { token: revoked },
      {
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      },
    );
    assert.equal(r.status, 200);
    assert.equal((await python(recipe('feed-python'), { TOKEN: revoked })).stdout, 'revoked\n');
    assert.equal((await python(recipe('feed-python'), { TOKEN: fresh })).stdout, 'valid\n', 'only the revoked one');
  });

  test("status-list-python: PyJWT and zlib read the token's status list, before and after revocation", async () => {
    const fresh = await token();
    assert.equal((await python(recipe('status-list-python'), { TOKEN: fresh })).stdout, 'valid\n');
    const revoked = await token();
    const r = await t.post(
      '/revoke',
      { token: revoked },
      {
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
      },
    );
    assert.equal(r.status, 200);
    assert.equal((await python(recipe('status-list-python'), { TOKEN: revoked })).stdout, 'revoked\n');
    assert.equal(
      (await python(recipe('status-list-python'), { TOKEN: fresh })).stdout,
      'valid\n',
      'only the revoked one',
    );
  });

  test('certificate-shell: an X.509-SVID with openssl, curl and sh; renewed by running it again', async () => {
    const run = () => exec('sh', ['-c', recipe('certificate-shell')], { cwd: dir, env, timeout: 30_000 });
    const first = await run();
    assert.match(first.stdout, /cert\.new\.pem: OK/);
    assert.match(first.stdout, new RegExp(`URI:spiffe://[^/]+/svc/${client.client_id}`));
    const cert1 = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    await run();
    const cert2 = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    assert.notEqual(cert2.serialNumber, cert1.serialNumber, 'renewal issues a new certificate');
    assert.ok(
      cert2.checkPrivateKey((await import('node:crypto')).createPrivateKey(readFileSync(join(dir, 'key.pem')))),
      'for the new key',
    );
  });

  test('cnf-python: the RFC 8705 thumbprint, as the IdP computes it', async () => {
    const r = await python(recipe('cnf-python'), {});
    const der = new X509Certificate(readFileSync(join(dir, 'cert.pem'))).raw;
    assert.equal(r.stdout.trim(), createHash('sha256').update(der).digest('base64url'));
  });
});
