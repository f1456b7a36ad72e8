import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import {
  auditEvents,
  basicAuth,
  opensslSelfSigned,
  startTestIdp,
  type TestIdp,
  tlsFetch,
  workloadCsr,
} from '@latchkey/testkit';
import { createVerifier } from '@latchkey/sdk/verify';
import { authenticate } from '@latchkey/sdk/node';

const run = promisify(execFile);
const TD = 'td.test';
const AUD = 'https://ledger.internal';

interface Held {
  key: string;
  cert: string;
  thumbprint: string;
}

const thumbprint = (certPem: string) =>
  createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');

describe('RFC 8705: mutual-TLS client authentication and certificate-bound tokens', () => {
  let t: TestIdp;
  let dir: string;
  const admin = () => ({ authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' });

  /** A workload certificate for `clientId`: by the administrator, by Basic credentials, or by an mTLS fetch. */
  async function certify(
    clientId: string,
    via: { admin?: true; secret?: string; fetch?: typeof fetch },
  ): Promise<Held> {
    const { keyPem, csrPem } = await workloadCsr();
    const f = via.fetch ?? t.fetch;
    const headers: Record<string, string> = via.admin
      ? admin()
      : {
          'content-type': 'application/json',
          ...(via.secret ? { authorization: basicAuth(clientId, via.secret) } : {}),
        };
    const res = await f(`${t.issuer}/workload/certificate`, {
      method: 'POST',
      headers,
      body: JSON.stringify(via.admin ? { csr: csrPem, client_id: clientId } : { csr: csrPem }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    const cert = ((await res.json()) as { certificate: string }).certificate;
    return { key: keyPem, cert, thumbprint: thumbprint(cert) };
  }
  const over = (h: Held | undefined) => tlsFetch(t.caPem, h ? { key: h.key, cert: h.cert } : undefined);
  const tokenRequest = (f: typeof fetch, form: Record<string, string>, headers: Record<string, string> = {}) =>
    f(`${t.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });

  before(async () => {
    t = await startTestIdp({ config: { trustDomain: TD, workloadCertTtl: 120 } });
    dir = mkdtempSync(join(tmpdir(), 'latchkey-mtls-'));
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('tls_client_auth by SPIFFE ID with openid-client: a bound token that jose verifies, no longer-lived than the certificate; renewal by certificate alone', async () => {
    const reg = await t.register({
      client_id: 'ledger',
      token_endpoint_auth_method: 'tls_client_auth',
      audiences: [AUD],
    });
    assert.equal(reg.tls_client_auth_san_uri, `spiffe://${TD}/svc/ledger`);
    assert.equal(reg.client_secret, undefined);
    // Its first certificate comes from the administrator; it renews with its certificate afterwards.
    const first = await certify('ledger', { admin: true });
    const mtls = over(first);
    const config = await oidc.discovery(new URL(t.issuer), 'ledger', undefined, oidc.TlsClientAuth(), {
      [oidc.customFetch]: mtls as oidc.CustomFetch,
    });
    config[oidc.customFetch] = mtls as oidc.CustomFetch;
    const tokens = await oidc.clientCredentialsGrant(config, { resource: AUD });
    const jwks = jose.createRemoteJWKSet(new URL(`${t.issuer}/jwks`), {
      [jose.customFetch]: t.fetch as jose.FetchImplementation,
    });
    const { payload } = await jose.jwtVerify(tokens.access_token, jwks, {
      issuer: t.issuer,
      audience: AUD,
      typ: 'at+jwt',
    });
    assert.deepEqual(payload.cnf, { 'x5t#S256': first.thumbprint });
    assert.equal(payload.client_id, 'ledger');
    // The default lifetime is 300 s; the certificate has about 120 s left.
    const left = Date.parse(new X509Certificate(first.cert).validTo) / 1000 - payload.iat!;
    assert.ok(
      payload.exp! - payload.iat! <= left && payload.exp! - payload.iat! >= left - 5,
      `${payload.exp! - payload.iat!} vs ${left}`,
    );
    // Introspection shows the confirmation (RFC 8705 §3.2).
    const intro = (await (
      await over(first)(`${t.issuer}/introspect`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token: tokens.access_token, client_id: 'ledger' }).toString(),
      })
    ).json()) as Record<string, unknown>;
    assert.equal(intro.active, true);
    assert.deepEqual(intro.cnf, { 'x5t#S256': first.thumbprint });
    const renewed = await certify('ledger', { fetch: mtls });
    assert.notEqual(renewed.thumbprint, first.thumbprint);
    const events = await auditEvents(t.idp.storage, { type: 'certificate.issued', limit: 10 });
    assert.deepEqual(
      events.slice(-2).map((e) => e.actor),
      ['admin', 'ledger'],
    );
  });

  test("tls_client_auth refuses another workload's certificate, a certificate from another CA, and no certificate", async () => {
    const other = await t.register({ client_id: 'payroll', audiences: [AUD] });
    const payrollCert = await certify('payroll', { secret: other.client_secret });
    const asLedger = { grant_type: 'client_credentials', client_id: 'ledger' };
    const wrong = await tokenRequest(over(payrollCert), asLedger);
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { error: string }).error, 'invalid_client');
    // A self-signed certificate claiming ledger's SPIFFE ID (openssl, not the IdP's CA).
    const self = await opensslSelfSigned(dir, 'forged', '/CN=ledger', [
      `subjectAltName=URI:spiffe://${TD}/svc/ledger`,
      'extendedKeyUsage=clientAuth',
    ]);
    const forged = { key: self.key, cert: self.cert, thumbprint: '' };
    assert.equal((await tokenRequest(over(forged), asLedger)).status, 401);
    assert.equal((await tokenRequest(over(undefined), asLedger)).status, 401);
    const failures = await auditEvents(t.idp.storage, { type: 'client.auth_failed', limit: 10 });
    const reasons = failures.slice(-3).map((e) => e.reason);
    // Without a certificate, a client_id alone reads as a public client's (none) at /token: refused
    // because ledger is registered for tls_client_auth.
    assert.deepEqual(reasons, ['certificate_mismatch', 'certificate_untrusted', 'wrong_method']);
    assert.equal(failures.at(-3)!.detail!.presented_spiffe_id, `spiffe://${TD}/svc/payroll`);
    // Presenting another workload's certificate is an identity mismatch, charged to the presenter.
    await t.idp.detection.pass();
    const alerts = (
      (await (
        await t.fetch(`${t.issuer}/admin/alerts?detector=identity_mismatch`, {
          headers: { authorization: `Bearer ${t.adminToken}` },
        })
      ).json()) as { alerts: { key: string; summary: string }[] }
    ).alerts;
    assert.deepEqual(
      alerts.map((a) => a.key),
      ['client:payroll'],
    );
  });

  test('self_signed_tls_client_auth: the registered certificate (openssl, curl) authenticates and binds; another does not', async () => {
    await opensslSelfSigned(dir, 'ss', '/CN=legacy-batch');
    const pem = readFileSync(join(dir, 'ss.pem'), 'utf8');
    const x = new X509Certificate(pem);
    const jwk = { ...(await jose.exportJWK(x.publicKey)), x5c: [x.raw.toString('base64')] };
    await t.register({
      client_id: 'legacy-batch',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      jwks: { keys: [jwk] },
      audiences: [AUD],
    });
    writeFileSync(join(dir, 'idp-ca.pem'), t.caPem!);
    const curl = await run('curl', [
      '-sS',
      '--cacert',
      join(dir, 'idp-ca.pem'),
      '--cert',
      join(dir, 'ss.pem'),
      '--key',
      join(dir, 'ss.key'),
      '-d',
      'grant_type=client_credentials',
      '-d',
      'client_id=legacy-batch',
      `${t.issuer}/token`,
    ]);
    const body = JSON.parse(curl.stdout) as { access_token: string; expires_in: number };
    assert.deepEqual(jose.decodeJwt(body.access_token).cnf, { 'x5t#S256': thumbprint(pem) });
    // The forged certificate of the previous test is not the registered one.
    const other = await run('curl', [
      '-sS',
      '--cacert',
      join(dir, 'idp-ca.pem'),
      '--cert',
      join(dir, 'forged.pem'),
      '--key',
      join(dir, 'forged.key'),
      '-d',
      'grant_type=client_credentials',
      '-d',
      'client_id=legacy-batch',
      `${t.issuer}/token`,
    ]);
    assert.equal((JSON.parse(other.stdout) as { error: string }).error, 'invalid_client');
  });

  test('a secret client is bound when it presents its certificate, and must be when its registration says so', async () => {
    const reg = await t.register({ client_id: 'billing', audiences: [AUD], scope: 'workload' });
    const held = await certify('billing', { secret: reg.client_secret });
    const basic = { authorization: basicAuth('billing', reg.client_secret) };
    const plain = (await (await tokenRequest(over(undefined), { grant_type: 'client_credentials' }, basic)).json()) as {
      access_token: string;
      expires_in: number;
    };
    assert.equal(jose.decodeJwt(plain.access_token).cnf, undefined);
    assert.equal(plain.expires_in, 300);
    const bound = (await (await tokenRequest(over(held), { grant_type: 'client_credentials' }, basic)).json()) as {
      access_token: string;
      expires_in: number;
    };
    assert.deepEqual(jose.decodeJwt(bound.access_token).cnf, { 'x5t#S256': held.thumbprint });
    assert.ok(bound.expires_in <= 120);
    const strict = await t.register({
      client_id: 'strict',
      audiences: [AUD],
      tls_client_certificate_bound_access_tokens: true,
    });
    const refused = await tokenRequest(
      over(undefined),
      { grant_type: 'client_credentials' },
      { authorization: basicAuth('strict', strict.client_secret) },
    );
    assert.equal(refused.status, 400);
    assert.match(
      ((await refused.json()) as { error_description: string }).error_description,
      /bound to its certificate/,
    );
    // Through RFC 7592 the client cannot turn the requirement off.
    const put = (body: Record<string, unknown>) =>
      t.fetch(strict.registration_client_uri, {
        method: 'PUT',
        headers: { authorization: `Bearer ${strict.registration_access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ client_id: 'strict', audiences: [AUD], ...body }),
      });
    assert.equal((await put({ tls_client_certificate_bound_access_tokens: false })).status, 400);
    const omitted = await put({});
    assert.equal(omitted.status, 200, 'an update that leaves the member out keeps it');
    assert.equal(((await omitted.json()) as Record<string, unknown>).tls_client_certificate_bound_access_tokens, true);
  });

  test("a stolen bound token is refused by a service (SDK verifier) over another certificate or none, and by the IdP's own endpoints", async () => {
    const reg = await t.register({ client_id: 'reports', audiences: [AUD], scope: 'workload' });
    const victim = await certify('reports', { secret: reg.client_secret });
    const thiefReg = await t.register({ client_id: 'thief', audiences: [AUD] });
    const thief = await certify('thief', { secret: thiefReg.client_secret });
    const token = (
      (await (
        await tokenRequest(
          over(victim),
          { grant_type: 'client_credentials' },
          { authorization: basicAuth('reports', reg.client_secret) },
        )
      ).json()) as { access_token: string }
    ).access_token;
    // The ledger service: mTLS (client certificates from the workload CA), tokens checked by the SDK.
    const bundle = await (await t.fetch(`${t.issuer}/ca/bundle`)).text();
    const svc = await certify('ledger', { admin: true });
    const verifier = await createVerifier({ issuer: t.issuer, audience: AUD, fetch: t.fetch });
    const server: Server = createServer(
      { key: svc.key, cert: svc.cert, ca: bundle, requestCert: true, rejectUnauthorized: false },
      async (req, res) => {
        const claims = await authenticate(req, res, { verifier });
        if (claims) res.end(`ok ${claims.client_id}`);
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/entries`;
      const call = async (h: Held | undefined) => {
        const { Agent, fetch } = await import('undici');
        const dispatcher = new Agent({
          connect: { ca: bundle, ...(h ? { key: h.key, cert: h.cert } : {}), checkServerIdentity: () => undefined },
        });
        const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, dispatcher });
        return { status: res.status, www: res.headers.get('www-authenticate'), body: await res.text() };
      };
      assert.deepEqual((await call(victim)).body, 'ok reports');
      const stolen = await call(thief);
      assert.equal(stolen.status, 401);
      assert.match(stolen.www!, /error="invalid_token", error_description="binding_mismatch"/);
      assert.equal((await call(undefined)).status, 401);
    } finally {
      server.close();
      verifier.close();
    }
    // The IdP's service endpoints check the binding too, on a token audienced to the IdP itself.
    const idpToken = (
      (await (
        await tokenRequest(
          over(victim),
          { grant_type: 'client_credentials', scope: 'workload', resource: t.issuer },
          { authorization: basicAuth('reports', reg.client_secret) },
        )
      ).json()) as { access_token: string }
    ).access_token;
    const { csrPem } = await workloadCsr();
    const asBearer = (h: Held, bearer = idpToken) =>
      over(h)(`${t.issuer}/workload/certificate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ csr: csrPem }),
      });
    assert.equal((await asBearer(thief)).status, 401);
    assert.equal((await asBearer(victim)).status, 200);
    // The ledger service's token, replayed by the ledger at the IdP, is not the IdP's (issue 11, finding 2).
    assert.equal((await asBearer(victim, token)).status, 401);
  });

  test('Bearer callers need the workload scope for a certificate', async () => {
    const reg = await t.register({ client_id: 'search', audiences: [AUD], scope: 'workload search:read' });
    const get = async (scope?: string) =>
      (
        (await (
          await tokenRequest(
            over(undefined),
            { grant_type: 'client_credentials', resource: t.issuer, ...(scope ? { scope } : {}) },
            { authorization: basicAuth('search', reg.client_secret) },
          )
        ).json()) as { access_token: string }
      ).access_token;
    const { csrPem } = await workloadCsr();
    const ask = (token: string) =>
      t.fetch(`${t.issuer}/workload/certificate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ csr: csrPem }),
      });
    const without = await ask(await get('search:read'));
    assert.equal(without.status, 403);
    assert.match(without.headers.get('www-authenticate')!, /insufficient_scope/);
    assert.equal((await ask(await get('workload'))).status, 200);
    // A privileged scope is granted only by name, and only for the IdP itself (issue 11, finding 2).
    const byDefault = await get();
    assert.equal(jose.decodeJwt(byDefault).scope, 'search:read');
    assert.equal((await ask(byDefault)).status, 403);
    const elsewhere = await tokenRequest(
      over(undefined),
      { grant_type: 'client_credentials', scope: 'workload', resource: AUD },
      { authorization: basicAuth('search', reg.client_secret) },
    );
    assert.equal(elsewhere.status, 400);
    assert.equal(((await elsewhere.json()) as { error: string }).error, 'invalid_scope');
    // An administrator may not be impersonated: client_id in the body without the admin token.
    const sneaky = await t.fetch(`${t.issuer}/workload/certificate`, {
      method: 'POST',
      headers: { authorization: basicAuth('search', reg.client_secret), 'content-type': 'application/json' },
      body: JSON.stringify({ csr: csrPem, client_id: 'ledger' }),
    });
    assert.equal(sneaky.status, 401);
  });

  test('a Client-Cert header is ignored unless it comes from the trusted proxy the operator named', async () => {
    const held = await certify('ledger', { admin: true });
    const header = `:${new X509Certificate(held.cert).raw.toString('base64')}:`;
    // From a client directly: ignored (no certificate on the connection → no credentials).
    const direct = await tokenRequest(
      over(undefined),
      { grant_type: 'client_credentials', client_id: 'ledger' },
      { 'client-cert': header },
    );
    assert.equal(direct.status, 401);
    // An IdP behind a TLS-terminating proxy at 127.0.0.1 (this test plays the proxy).
    const proxied = await startTestIdp({
      tls: false,
      config: { trustDomain: TD, trustedProxies: ['127.0.0.1', '::1'] },
    });
    try {
      await proxied.register({ client_id: 'ledger', token_endpoint_auth_method: 'tls_client_auth', audiences: [AUD] });
      const { csrPem } = await workloadCsr();
      const issued = (await (
        await proxied.fetch(`${proxied.issuer}/workload/certificate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${proxied.adminToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ csr: csrPem, client_id: 'ledger' }),
        })
      ).json()) as { certificate: string };
      const raw = new X509Certificate(issued.certificate).raw;
      const res = await fetch(`${proxied.issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'client-cert': `:${raw.toString('base64')}:`,
          'x-forwarded-for': '203.0.113.7',
        },
        body: 'grant_type=client_credentials&client_id=ledger',
      });
      assert.equal(res.status, 200, await res.clone().text());
      const tok = ((await res.json()) as { access_token: string }).access_token;
      assert.deepEqual(jose.decodeJwt(tok).cnf, { 'x5t#S256': createHash('sha256').update(raw).digest('base64url') });
      // nginx's URL-encoded PEM works too, and the client address is the forwarded one.
      const nginx = await fetch(`${proxied.issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'client-cert': encodeURIComponent(issued.certificate),
        },
        body: 'grant_type=client_credentials&client_id=ledger',
      });
      assert.equal(nginx.status, 200);
      const issuedEvents = await auditEvents(proxied.idp.storage, { type: 'token.issued', limit: 5 });
      assert.equal(issuedEvents[0]!.source_ip, '203.0.113.7');
    } finally {
      await proxied.close();
    }
  });
});
