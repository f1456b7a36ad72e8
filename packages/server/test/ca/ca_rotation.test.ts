import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as jose from 'jose';
import { auditEvents, FakeClock, startTestIdp, type TestIdp, tlsFetch, workloadCsr } from '@latchkey/testkit';

const run = promisify(execFile);
const TD = 'rot.test';
const pemBlocks = (text: string) =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];

async function issueAsAdmin(t: TestIdp, clientId: string): Promise<{ key: string; cert: string }> {
  const { keyPem, csrPem } = await workloadCsr();
  const res = await t.fetch(`${t.issuer}/workload/certificate`, {
    method: 'POST',
    headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ csr: csrPem, client_id: clientId }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  return { key: keyPem, cert: ((await res.json()) as { certificate: string }).certificate };
}

/** openssl verify of `certPem` against `caPem` (plus untrusted intermediates): true when OK. */
async function opensslVerifies(dir: string, certPem: string, caPem: string, untrusted?: string): Promise<boolean> {
  writeFileSync(join(dir, 'v-leaf.pem'), certPem);
  writeFileSync(join(dir, 'v-ca.pem'), caPem);
  if (untrusted) writeFileSync(join(dir, 'v-int.pem'), untrusted);
  try {
    const r = await run('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'v-ca.pem'),
      ...(untrusted ? ['-untrusted', join(dir, 'v-int.pem')] : []),
      join(dir, 'v-leaf.pem'),
    ]);
    return /: OK/.test(r.stdout);
  } catch {
    return false;
  }
}

describe('workload CA rotation: announce, sign, retire', () => {
  // The IdP's time moves when the test advances it (a few seconds: certificates stay valid for
  // openssl and TLS peers, which use the real time).
  const clock = new FakeClock();
  let t: TestIdp;
  let dir: string;
  before(async () => {
    // Five-second certificates and one second of clock skew: a replaced root leaves the bundle six seconds after its successor starts signing.
    t = await startTestIdp({ config: { trustDomain: TD, workloadCertTtl: 5, clockSkew: 1 }, clock });
    await t.register({ client_id: 'orders', audiences: ['https://x.internal'] });
    dir = mkdtempSync(join(tmpdir(), 'latchkey-carot-'));
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const bundle = async () => (await t.fetch(`${t.issuer}/ca/bundle`)).text();

  test('the new root is in the bundle before it signs; the old one stays until its last certificate expired', {
    timeout: 30_000,
  }, async () => {
    const oldRoot = await bundle();
    assert.equal(pemBlocks(oldRoot).length, 1);
    const before = await issueAsAdmin(t, 'orders');
    const rotate = (body: unknown) =>
      t.fetch(`${t.issuer}/admin/ca/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const res = await rotate({ announce_seconds: 2 });
    assert.equal(res.status, 200);
    const state = (await res.json()) as { roots: { state: string }[] };
    assert.deepEqual(
      state.roots.map((r) => r.state),
      ['active', 'announced'],
    );
    const both = await bundle();
    assert.equal(pemBlocks(both).length, 2);
    const newRoot = pemBlocks(both).find((b) => b.trim() !== oldRoot.trim())!;
    // Announced, not signing: a certificate issued now still comes from the old root.
    const during = await issueAsAdmin(t, 'orders');
    assert.equal(await opensslVerifies(dir, during.cert, oldRoot), true);
    assert.equal((await rotate({ announce_seconds: 0 })).status, 409);
    clock.advance(2200);
    const afterActivation = await issueAsAdmin(t, 'orders');
    assert.equal(await opensslVerifies(dir, afterActivation.cert, newRoot), true);
    assert.equal(await opensslVerifies(dir, afterActivation.cert, oldRoot), false);
    // Both generations verify against the bundle served during the overlap.
    assert.equal(await opensslVerifies(dir, before.cert, await bundle()), true);
    assert.equal(await opensslVerifies(dir, afterActivation.cert, await bundle()), true);
    const status = (await (
      await t.fetch(`${t.issuer}/admin/ca`, { headers: { authorization: `Bearer ${t.adminToken}` } })
    ).json()) as { roots: { state: string; retire_at: number | null }[] };
    assert.deepEqual(
      status.roots.map((r) => r.state),
      ['retiring', 'active'],
    );
    // Every certificate of the old root has expired 5 s (+1 s skew) after the switch: it leaves.
    clock.advance(status.roots[0]!.retire_at! * 1000 - clock.now() - 500);
    assert.equal(pemBlocks(await bundle()).length, 2, 'kept until the last certificate of the old root expired');
    clock.advance(800);
    const last = await bundle();
    assert.equal(pemBlocks(last).length, 1);
    assert.equal(last.trim(), newRoot.trim());
    const events = await auditEvents(t.idp.storage, { type: 'ca.rotated', limit: 5 });
    assert.equal(events.length, 1);
    assert.equal(events[0]!.actor, 'admin');
    // A tls_client_auth client whose certificate came from the new root authenticates with it (renewing).
    await t.register({
      client_id: 'fresh',
      token_endpoint_auth_method: 'tls_client_auth',
      audiences: ['https://x.internal'],
    });
    const fresh = await issueAsAdmin(t, 'fresh');
    const renew = await tlsFetch(t.caPem, fresh)(`${t.issuer}/workload/certificate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csr: (await workloadCsr()).csrPem }),
    });
    assert.equal(renew.status, 200, await renew.clone().text());
    // A token is not bound to a certificate with less than five seconds left (these live five).
    const tok = await tlsFetch(t.caPem, fresh)(`${t.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&client_id=fresh',
    });
    assert.equal(tok.status, 400);
    assert.match(((await tok.json()) as { error_description: string }).error_description, /not valid long enough/);
  });
});

describe('an operator-provided intermediate CA (made with openssl)', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-opca-'));
    const sh = (cmd: string) => run('sh', ['-c', cmd], { cwd: dir });
    await sh(
      'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout root.key -out root.pem -days 30 -subj "/CN=Corp Root" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null',
    );
    await sh(
      'openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout int.key -out int.csr -subj "/CN=Corp Mesh Intermediate" 2>/dev/null',
    );
    writeFileSync(
      join(dir, 'int.ext'),
      'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n',
    );
    await sh(
      'openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -out int.pem -days 10 -extfile int.ext 2>/dev/null',
    );
    await sh(
      'openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.csr -subj "/CN=x" 2>/dev/null',
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("certificates chain leaf → intermediate → the operator's root (openssl verify); the bundle is that root; tls_client_auth works; rotate is refused", async () => {
    const t = await startTestIdp({
      config: {
        trustDomain: TD,
        caCert: join(dir, 'int.pem'),
        caKey: join(dir, 'int.key'),
        caBundle: join(dir, 'root.pem'),
      },
    });
    try {
      const root = readFileSync(join(dir, 'root.pem'), 'utf8');
      assert.equal((await (await t.fetch(`${t.issuer}/ca/bundle`)).text()).trim(), root.trim());
      await t.register({
        client_id: 'orders',
        token_endpoint_auth_method: 'tls_client_auth',
        audiences: ['https://x.internal'],
      });
      const held = await issueAsAdmin(t, 'orders');
      const blocks = pemBlocks(held.cert);
      assert.equal(blocks.length, 2, 'the leaf and the intermediate');
      assert.equal(new X509Certificate(blocks[1]!).subject, 'CN=Corp Mesh Intermediate');
      assert.equal(await opensslVerifies(dir, blocks[0]!, root, blocks[1]!), true);
      assert.equal(await opensslVerifies(dir, blocks[0]!, root), false);
      // The client sends its chain; the IdP follows it to the operator's root.
      const res = await tlsFetch(t.caPem, held)(`${t.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials&client_id=orders',
      });
      assert.equal(res.status, 200, await res.clone().text());
      assert.ok(jose.decodeJwt(((await res.json()) as { access_token: string }).access_token).cnf);
      const rot = await t.fetch(`${t.issuer}/admin/ca/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(rot.status, 409);
    } finally {
      await t.close();
    }
  });

  test("a key that is not the certificate's, or a certificate that does not chain to the bundle, stops the start with ca_material_invalid", async () => {
    await assert.rejects(
      startTestIdp({
        config: { caCert: join(dir, 'int.pem'), caKey: join(dir, 'other.key'), caBundle: join(dir, 'root.pem') },
      }),
      (err: Error & { code?: string }) => err.code === 'ca_material_invalid',
    );
    writeFileSync(join(dir, 'unrelated.pem'), readFileSync(join(dir, 'int.pem')));
    await assert.rejects(
      startTestIdp({
        config: { caCert: join(dir, 'int.pem'), caKey: join(dir, 'int.key'), caBundle: join(dir, 'unrelated.pem') },
      }),
      (err: Error & { code?: string }) => err.code === 'ca_material_invalid' && /chain/.test(err.message),
    );
  });

  test('issue 11, finding 20: a chain longer than five intermediates that never reaches the bundle is refused; malformed files are ca_material_invalid', async () => {
    const sh = (cmd: string) => run('sh', ['-c', cmd], { cwd: dir });
    writeFileSync(join(dir, 'ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    await sh(
      'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout stray.key -out stray.pem -days 30 -subj "/CN=Stray Root" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null',
    );
    let parent = 'stray';
    for (let i = 1; i <= 7; i++) {
      await sh(
        `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout h${i}.key -out h${i}.csr -subj "/CN=Hop ${i}" 2>/dev/null && openssl x509 -req -in h${i}.csr -CA ${parent}.pem -CAkey ${parent}.key -CAcreateserial -out h${i}.pem -days 10 -extfile ca.ext 2>/dev/null`,
      );
      parent = `h${i}`;
    }
    // The issuing CA first, then its six issuers; the bundle is the unrelated Corp Root.
    writeFileSync(
      join(dir, 'long.pem'),
      [7, 6, 5, 4, 3, 2, 1].map((i) => readFileSync(join(dir, `h${i}.pem`), 'utf8')).join(''),
    );
    await assert.rejects(
      startTestIdp({
        config: { caCert: join(dir, 'long.pem'), caKey: join(dir, 'h7.key'), caBundle: join(dir, 'root.pem') },
      }),
      (err: Error & { code?: string }) => err.code === 'ca_material_invalid' && /chain/.test(err.message),
    );
    writeFileSync(
      join(dir, 'garbage.pem'),
      '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n',
    );
    writeFileSync(join(dir, 'garbage.key'), '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n');
    await assert.rejects(
      startTestIdp({
        config: { caCert: join(dir, 'garbage.pem'), caKey: join(dir, 'int.key'), caBundle: join(dir, 'root.pem') },
      }),
      (err: Error & { code?: string }) => err.code === 'ca_material_invalid' && /LATCHKEY_CA_CERT/.test(err.message),
    );
    await assert.rejects(
      startTestIdp({
        config: { caCert: join(dir, 'int.pem'), caKey: join(dir, 'garbage.key'), caBundle: join(dir, 'root.pem') },
      }),
      (err: Error & { code?: string }) => err.code === 'ca_material_invalid' && /LATCHKEY_CA_KEY/.test(err.message),
    );
    await assert.rejects(
      startTestIdp({
        config: { caCert: join(dir, 'int.pem'), caKey: join(dir, 'int.key'), caBundle: join(dir, 'garbage.pem') },
      }),
      (err: Error & { code?: string }) => err.code === 'ca_material_invalid' && /LATCHKEY_CA_BUNDLE/.test(err.message),
    );
  });
});
