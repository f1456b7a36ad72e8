import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { auditEvents, CLI_MAIN, opensslSelfSigned, startTestIdp, TSX, type TestIdp } from '@latchkey/testkit';

const run = promisify(execFile);
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ASSERTION_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ASSERTION_SPIFFE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';
const ORDERS = 'https://orders.internal';

/**
 * A stand-in OpenID issuer on loopback HTTPS — discovery and JWKS as Kubernetes' API server (or a
 * CI system) serves them — that mints tokens with its own keys (jose), and can rotate them.
 */
class StandInIssuer {
  private server!: Server;
  private keys: { kid: string; privateKey: CryptoKey; jwk: jose.JWK }[] = [];
  issuer = '';
  readonly alg: 'RS256' | 'ES256';
  private readonly path: string;
  jwksFetches = 0;
  constructor(alg: 'RS256' | 'ES256', path = '') {
    this.alg = alg;
    this.path = path;
  }
  async start(key: string, cert: string): Promise<void> {
    await this.rotate();
    this.server = createServer({ key, cert }, (req, res) => {
      const url = req.url ?? '';
      if (url === `${this.path}/.well-known/openid-configuration`)
        return res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            issuer: this.issuer,
            jwks_uri: `${this.issuer}/openid/v1/jwks`,
            response_types_supported: ['id_token'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: [this.alg],
          }),
        );
      if (url === `${this.path}/openid/v1/jwks`) {
        this.jwksFetches++;
        return res
          .writeHead(200, { 'content-type': 'application/jwk-set+json' })
          .end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.issuer = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}${this.path}`;
  }
  /** A new signing key; the old one leaves the JWKS (as after a rotation). */
  async rotate(): Promise<void> {
    const { privateKey, publicKey } = await jose.generateKeyPair(this.alg, { extractable: true });
    const kid = randomUUID();
    this.keys = [
      {
        kid,
        privateKey: privateKey as CryptoKey,
        jwk: { ...(await jose.exportJWK(publicKey)), kid, alg: this.alg, use: 'sig' },
      },
    ];
  }
  mint(claims: jose.JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
    const k = this.keys[0]!;
    return new jose.SignJWT(claims).setProtectedHeader({ alg: this.alg, kid: k.kid, ...header }).sign(k.privateKey);
  }
  close(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }
}

/** A projected service-account token exactly as Kubernetes makes them (kubelet, TokenRequest API). */
const kubernetesToken = (
  k8s: StandInIssuer,
  aud: string,
  ns = 'orders',
  sa = 'orders-api',
  over: jose.JWTPayload = {},
) => {
  const now = Math.floor(Date.now() / 1000);
  return k8s.mint({
    aud: [aud],
    exp: now + 3600,
    iat: now,
    nbf: now,
    iss: k8s.issuer,
    jti: randomUUID(),
    'kubernetes.io': {
      namespace: ns,
      node: { name: 'node-a', uid: randomUUID() },
      pod: { name: `${sa}-6d9f7c-x2x8p`, uid: randomUUID() },
      serviceaccount: { name: sa, uid: randomUUID() },
    },
    sub: `system:serviceaccount:${ns}:${sa}`,
    ...over,
  });
};

describe('federated workload identity', () => {
  let t: TestIdp;
  let dir: string;
  let k8s: StandInIssuer;
  let ci: StandInIssuer;
  const admin = async (method: string, path: string, body?: unknown) => {
    const res = await t.admin(path, body, method);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const token = (form: Record<string, string>) => t.post('/token', form);
  /** The last refused client authentication's reason and detail. */
  const lastRefusal = async () => (await auditEvents(t.idp.storage, { type: 'client.auth_failed' })).at(-1);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-fed-'));
    const { key, cert, certFile } = await opensslSelfSigned(dir, 'issuers', '/CN=issuers', [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    k8s = new StandInIssuer('RS256');
    await k8s.start(key, cert);
    ci = new StandInIssuer('ES256', '/ci');
    await ci.start(key, cert);
    t = await startTestIdp({ config: { outboundCaFile: certFile, federationJwksCooldown: 0 } });
    await t.register({ client_id: 'orders-api', audiences: [ORDERS], scope: 'orders:read' });
    await t.register({ client_id: 'orders-deployer', audiences: [ORDERS] });
    await t.register({ client_id: 'payments', audiences: [ORDERS] });
    // A cluster's API server is on a private address: the administrator allows that for this issuer.
    assert.equal(
      (
        await admin('PUT', '/admin/federation/issuers/cluster-a', {
          issuer: k8s.issuer,
          discovery: true,
          algorithms: ['RS256'],
          allow_private_addresses: true,
        })
      ).status,
      200,
    );
    const rule = await admin('PUT', '/admin/federation/rules/orders-api', {
      issuer: 'cluster-a',
      client_id: 'orders-api',
      subject: 'system:serviceaccount:orders:orders-api',
      claims: { '/kubernetes.io/namespace': 'orders', '/kubernetes.io/serviceaccount/name': 'orders-api' },
    });
    assert.equal(rule.status, 200, JSON.stringify(rule.body));
  });
  after(async () => {
    await t?.close();
    await k8s?.close();
    await ci?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a Kubernetes workload gets a token with its projected service-account token and no secret (RFC 7523 §2.1 grant)', async () => {
    const projected = await kubernetesToken(k8s, t.issuer);
    const res = await token({ grant_type: JWT_BEARER, assertion: projected, resource: ORDERS, scope: 'orders:read' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const jwks = jose.createLocalJWKSet(await (await t.fetch(`${t.issuer}/jwks`)).json());
    const { payload } = await jose.jwtVerify(res.body.access_token, jwks, {
      issuer: t.issuer,
      audience: ORDERS,
      typ: 'at+jwt',
    });
    assert.equal(payload.sub, 'orders-api');
    assert.equal(payload.client_id, 'orders-api');
    assert.equal(payload.scope, 'orders:read');
    const issued = (await auditEvents(t.idp.storage, { type: 'token.issued' })).at(-1);
    assert.equal(issued?.detail?.grant_type, JWT_BEARER);
    assert.equal(issued?.detail?.auth_method, 'federation:orders-api');
  });

  test('…and as client authentication (RFC 7523 §2.2) with openid-client, for client_credentials', async () => {
    const projected = await kubernetesToken(k8s, `${t.issuer}/token`);
    const config = await oidc.discovery(
      new URL(t.issuer),
      'orders-api',
      undefined,
      (_as, _client, body) => {
        body.set('client_assertion_type', ASSERTION_BEARER);
        body.set('client_assertion', projected);
      },
      { [oidc.customFetch]: t.fetch as oidc.CustomFetch },
    );
    const res = await oidc.clientCredentialsGrant(config, { resource: ORDERS });
    assert.equal(jose.decodeJwt(res.access_token).client_id, 'orders-api');
  });

  test('refused, with the right error and audit reason: wrong namespace, wrong audience, expired, replayed, unknown issuer', async () => {
    const cases: [string, () => Promise<string>, string][] = [
      [
        'wrong namespace',
        () =>
          kubernetesToken(k8s, t.issuer, 'payments', 'orders-api', { sub: 'system:serviceaccount:orders:orders-api' }),
        'federation_no_rule',
      ],
      ['wrong service account', () => kubernetesToken(k8s, t.issuer, 'orders', 'batch'), 'federation_no_rule'],
      ['wrong audience', () => kubernetesToken(k8s, 'https://vault.internal'), 'federation_wrong_audience'],
      [
        'expired',
        () =>
          kubernetesToken(k8s, t.issuer, 'orders', 'orders-api', {
            exp: Math.floor(Date.now() / 1000) - 120,
            iat: Math.floor(Date.now() / 1000) - 3720,
          }),
        'assertion_expired',
      ],
      [
        'valid too long',
        () =>
          kubernetesToken(k8s, t.issuer, 'orders', 'orders-api', { exp: Math.floor(Date.now() / 1000) + 3 * 86400 }),
        'assertion_expired',
      ],
      ['forged', async () => `${(await kubernetesToken(k8s, t.issuer)).slice(0, -8)}AAAAAAAA`, 'assertion_invalid'],
    ];
    for (const [what, make, reason] of cases) {
      const res = await token({ grant_type: JWT_BEARER, assertion: await make() });
      assert.equal(res.status, 401, what);
      assert.equal(res.body.error, 'invalid_client', what);
      assert.equal((await lastRefusal())?.reason, reason, what);
    }
    // The audit says why no rule matched (never the token).
    const why = (await auditEvents(t.idp.storage, { type: 'client.auth_failed' })).find(
      (e) => e.reason === 'federation_no_rule',
    );
    assert.match(String(why?.detail?.why), /\/kubernetes\.io\/namespace "payments" is not "orders"/);
    // Replayed: the same projected token a second time, within its lifetime.
    const once = await kubernetesToken(k8s, t.issuer);
    assert.equal((await token({ grant_type: JWT_BEARER, assertion: once })).status, 200);
    const again = await token({ grant_type: JWT_BEARER, assertion: once });
    assert.equal(again.status, 401);
    assert.equal((await lastRefusal())?.reason, 'assertion_replayed');
    // An issuer nobody trusts.
    const stranger = new StandInIssuer('RS256');
    const { key, cert } = await opensslSelfSigned(dir, 'stranger', '/CN=stranger', ['subjectAltName=IP:127.0.0.1']);
    await stranger.start(key, cert);
    try {
      const res = await token({ grant_type: JWT_BEARER, assertion: await kubernetesToken(stranger, t.issuer) });
      assert.equal(res.status, 401);
      assert.equal((await lastRefusal())?.reason, 'federation_unknown_issuer');
    } finally {
      await stranger.close();
    }
  });

  test('an issuer whose keys are on a private address is refused before any connection (SSRF)', async () => {
    // Given as an address: refused when the administrator saves it.
    const literal = await admin('PUT', '/admin/federation/issuers/rogue', {
      issuer: 'https://rogue.example',
      jwks_uri: 'https://10.1.2.3/keys',
    });
    assert.equal(literal.status, 400);
    assert.match(literal.body.error_description ?? literal.body.message ?? JSON.stringify(literal.body), /not allowed/);
    // A name that resolves to loopback (DNS): refused at the connection, after the lookup.
    assert.equal(
      (
        await admin('PUT', '/admin/federation/issuers/rogue', {
          issuer: 'https://rogue.example',
          jwks_uri: `https://localhost:${new URL(k8s.issuer).port}/openid/v1/jwks`,
        })
      ).status,
      200,
    );
    await admin('PUT', '/admin/federation/rules/rogue', { issuer: 'rogue', client_id: 'payments', subject: '*' });
    const before = k8s.jwksFetches;
    const now = Math.floor(Date.now() / 1000);
    const res = await token({
      grant_type: JWT_BEARER,
      assertion: await k8s.mint({
        iss: 'https://rogue.example',
        sub: 'x',
        aud: t.issuer,
        exp: now + 60,
        iat: now,
        jti: randomUUID(),
      }),
    });
    assert.equal(res.status, 401);
    const refusal = await lastRefusal();
    assert.equal(refusal?.reason, 'issuer_keys_unavailable');
    assert.match(String(refusal?.detail?.why), /destination address not allowed/);
    assert.equal(k8s.jwksFetches, before, 'no request reached the address');
    assert.equal((await admin('DELETE', '/admin/federation/issuers/rogue')).status, 204);
  });

  test('the issuer rotating its key is followed (its JWKS fetched again for the unknown kid)', async () => {
    assert.equal(
      (await token({ grant_type: JWT_BEARER, assertion: await kubernetesToken(k8s, t.issuer) })).status,
      200,
    );
    const fetches = k8s.jwksFetches;
    await k8s.rotate();
    const res = await token({ grant_type: JWT_BEARER, assertion: await kubernetesToken(k8s, t.issuer) });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(k8s.jwksFetches, fetches + 1);
  });

  test('a CI job (repository, branch, environment conditions) and a SPIFFE JWT-SVID (jwt-spiffe)', async () => {
    assert.equal(
      (
        await admin('PUT', '/admin/federation/issuers/ci', {
          issuer: ci.issuer,
          jwks_uri: `${ci.issuer}/openid/v1/jwks`,
          algorithms: ['ES256'],
          allow_private_addresses: true,
        })
      ).status,
      200,
    );
    await admin('PUT', '/admin/federation/rules/deploy-orders', {
      issuer: 'ci',
      client_id: 'orders-deployer',
      subject: 'repo:acme/orders:*',
      audience: 'latchkey',
      claims: { '/repository': 'acme/orders', '/ref': 'refs/heads/main', '/environment': 'production' },
    });
    const job = (ref: string) => {
      const now = Math.floor(Date.now() / 1000);
      return ci.mint({
        iss: ci.issuer,
        aud: 'latchkey',
        sub: `repo:acme/orders:environment:production`,
        repository: 'acme/orders',
        repository_owner: 'acme',
        ref,
        environment: 'production',
        run_id: '4242',
        jti: randomUUID(),
        iat: now,
        nbf: now,
        exp: now + 300,
      });
    };
    const ok = await token({ grant_type: JWT_BEARER, assertion: await job('refs/heads/main') });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(jose.decodeJwt(ok.body.access_token).sub, 'orders-deployer');
    const branch = await token({ grant_type: JWT_BEARER, assertion: await job('refs/heads/feature') });
    assert.equal(branch.status, 401);
    assert.equal((await lastRefusal())?.reason, 'federation_no_rule');

    // SPIFFE: a trust domain with its bundle given inline; JWT-SVIDs reused within their lifetime (as SPIRE does).
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'svid-1', use: 'jwt-svid' };
    assert.equal(
      (
        await admin('PUT', '/admin/federation/issuers/prod-td', {
          kind: 'spiffe',
          issuer: 'prod.example.org',
          jwks: { keys: [jwk] },
          algorithms: ['ES256'],
          single_use: false,
        })
      ).status,
      200,
    );
    await admin('PUT', '/admin/federation/rules/payments-svid', {
      issuer: 'prod-td',
      client_id: 'payments',
      subject: 'spiffe://prod.example.org/ns/payments/sa/api',
    });
    const now = Math.floor(Date.now() / 1000);
    const svid = await new jose.SignJWT({
      sub: 'spiffe://prod.example.org/ns/payments/sa/api',
      aud: [`${t.issuer}/token`],
      exp: now + 300,
      iat: now,
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'svid-1', typ: 'JWT' })
      .sign(privateKey);
    for (let i = 0; i < 2; i++) {
      const res = await token({
        grant_type: 'client_credentials',
        client_assertion_type: ASSERTION_SPIFFE,
        client_assertion: svid,
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(jose.decodeJwt(res.body.access_token).client_id, 'payments');
    }
    // Another trust domain's SVID.
    const foreign = await new jose.SignJWT({ sub: 'spiffe://evil.example/x', aud: [t.issuer], exp: now + 300 })
      .setProtectedHeader({ alg: 'ES256', kid: 'svid-1' })
      .sign(privateKey);
    assert.equal(
      (
        await token({
          grant_type: 'client_credentials',
          client_assertion_type: ASSERTION_SPIFFE,
          client_assertion: foreign,
        })
      ).status,
      401,
    );
    assert.equal((await lastRefusal())?.reason, 'federation_unknown_issuer');
  });

  test('latchkey federation add | list | test: which rule a token matches and why', async () => {
    const env = {
      ...process.env,
      LATCHKEY_URL: t.issuer,
      LATCHKEY_DATA_DIR: t.dataDir,
      LATCHKEY_ADMIN_TOKEN: t.adminToken,
    };
    const cli = (args: string[]): Promise<{ stdout: string; stderr: string; code?: number }> =>
      run(TSX, [CLI_MAIN, ...args], { env }).catch((e: { stdout: string; stderr: string; code: number }) => e);
    const added = await cli([
      'federation',
      'add',
      'batch-jobs',
      '--issuer-name',
      'cluster-a',
      '--client',
      'payments',
      '--subject',
      'system:serviceaccount:batch:*',
      '--claim',
      '/kubernetes.io/namespace=batch',
    ]);
    assert.match(added.stdout, /rule batch-jobs: tokens of cluster-a/);
    const listed = await cli(['federation', 'list']);
    assert.match(listed.stdout, /issuer cluster-a\toidc\t/);
    assert.match(
      listed.stdout,
      /rule batch-jobs\tcluster-a\tsub=system:serviceaccount:batch:\*\t\/kubernetes\.io\/namespace=batch\t→ payments/,
    );
    const batch = await kubernetesToken(k8s, t.issuer, 'batch', 'nightly');
    const tested = await cli(['federation', 'test', batch]);
    assert.match(tested.stdout, /✗ rule orders-api → orders-api: sub "system:serviceaccount:batch:nightly" is not/);
    assert.match(tested.stdout, /✓ rule batch-jobs → payments/);
    assert.match(
      tested.stdout,
      /matches rule batch-jobs: authenticates as payments; signature, time and audience verify/,
    );
    // Testing does not use the token up.
    assert.equal((await token({ grant_type: JWT_BEARER, assertion: batch })).status, 200);
    const nomatch = await cli(['federation', 'test', await kubernetesToken(k8s, t.issuer, 'kube-system', 'default')]);
    assert.equal(nomatch.code, 1);
    assert.match(nomatch.stdout, /no rule matches: federation_no_rule/);
  });
});
