import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import * as jose from 'jose';
import { createVerifier, VerifyError, type Verifier } from '@latchkey/sdk/verify';
import { startForgeIssuer } from './forge.ts';
import { FakeClock } from '@latchkey/testkit';

const AUD = 'https://orders.internal';
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

async function rejects(v: Verifier, token: string, code: string): Promise<void> {
  await assert.rejects(v.verify(token), (e: unknown) => {
    assert.ok(e instanceof VerifyError, `not a VerifyError: ${String(e)}`);
    assert.equal(e.code, code);
    assert.ok(!e.message.includes(token.slice(0, 20)) || token.length < 20, 'the message must not echo the token');
    return true;
  });
}

describe('SDK verifier: every rule of the security bar with forged and altered tokens', () => {
  let forge: Awaited<ReturnType<typeof startForgeIssuer>>;
  let v: Verifier;
  before(async () => {
    forge = await startForgeIssuer();
    v = await createVerifier({ issuer: forge.issuer, audience: AUD, jwksUri: forge.jwksUri, jwksCooldown: 30 });
  });
  after(async () => {
    v.close();
    await forge.close();
  });

  test('a well-formed token verifies and returns its claims', async () => {
    const claims = forge.claims({ scope: 'a b' });
    assert.deepEqual(await v.verify(await forge.sign(claims)), claims);
  });

  test('alg none in several spellings', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await rejects(v, `${b64({ alg, typ: 'at+jwt', kid: 'forge-1' })}.${b64(forge.claims())}.`, 'token_malformed');
      await rejects(
        v,
        `${b64({ alg, typ: 'at+jwt', kid: 'forge-1' })}.${b64(forge.claims())}.${b64('sig')}`,
        'algorithm_not_allowed',
      );
    }
  });

  test('HS256 signed with the public key as the HMAC secret', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(forge.jwk));
    await rejects(v, await forge.sign(forge.claims(), { alg: 'HS256' }, secret), 'algorithm_not_allowed');
    const pem = new TextEncoder().encode(await jose.exportSPKI(forge.publicKey));
    await rejects(v, await forge.sign(forge.claims(), { alg: 'HS256' }, pem), 'algorithm_not_allowed');
  });

  test("header alg different from the key's alg", async () => {
    const rsa = await jose.generateKeyPair('RS256');
    await rejects(v, await forge.sign(forge.claims(), { alg: 'RS256' }, rsa.privateKey), 'algorithm_not_allowed');
  });

  test('typ must be at+jwt', async () => {
    await rejects(v, await forge.sign(forge.claims(), { typ: 'JWT' }), 'wrong_type');
    await rejects(v, await forge.sign(forge.claims(), { typ: undefined }), 'wrong_type');
    assert.ok(await v.verify(await forge.sign(forge.claims(), { typ: 'application/at+jwt' })));
  });

  test('issuer compared exactly; audience must contain this service', async () => {
    await rejects(v, await forge.sign(forge.claims({ iss: `${forge.issuer}/` })), 'wrong_issuer');
    await rejects(v, await forge.sign(forge.claims({ iss: forge.issuer.toUpperCase() })), 'wrong_issuer');
    await rejects(v, await forge.sign(forge.claims({ aud: 'https://billing.internal' })), 'wrong_audience');
    await rejects(v, await forge.sign(forge.claims({ aud: [`${AUD}/`] })), 'wrong_audience');
    assert.ok(await v.verify(await forge.sign(forge.claims({ aud: ['https://x', AUD] }))));
  });

  test('expired and not yet valid, beyond and within the 30 s skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    await rejects(v, await forge.sign(forge.claims({ exp: now - 31 })), 'token_expired');
    assert.ok(await v.verify(await forge.sign(forge.claims({ exp: now - 20 }))));
    await rejects(v, await forge.sign(forge.claims({ nbf: now + 60 })), 'token_not_yet_valid');
    await rejects(v, await forge.sign(forge.claims({ iat: now + 60 })), 'token_not_yet_valid');
    assert.ok(await v.verify(await forge.sign(forge.claims({ nbf: now + 20 }))));
  });

  test('claims must be present and of the right type', async () => {
    for (const over of [
      { exp: '9999999999' },
      { exp: undefined },
      { iat: undefined },
      { jti: undefined },
      { sub: 5 },
      { client_id: '' },
      { nbf: 'soon' },
    ]) {
      await rejects(v, await forge.sign(forge.claims(over)), 'claims_invalid');
    }
  });

  test('unknown crit is refused', async () => {
    await rejects(
      v,
      await forge.sign(forge.claims(), { crit: ['exp-ext'], 'exp-ext': true }),
      'critical_header_unsupported',
    );
  });

  test('tampered payload or signature', async () => {
    const [h, , s] = (await forge.sign(forge.claims())).split('.');
    await rejects(v, `${h}.${b64(forge.claims({ scope: 'admin' }))}.${s}`, 'signature_invalid');
    const token = await forge.sign(forge.claims());
    await rejects(v, token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA'), 'signature_invalid');
    await rejects(v, `${token.split('.').slice(0, 2).join('.')}.${b64(Buffer.alloc(64))}`, 'signature_invalid');
  });

  test('malformed shapes are token_malformed, quickly', async () => {
    const header = b64({ alg: 'ES256', typ: 'at+jwt', kid: 'forge-1' });
    for (const bad of [
      '',
      'a',
      'a.b',
      'a.b.c.d',
      '..',
      `${header}..sig`,
      `${header}.${b64('[1,2]')}.c2ln`,
      `${header}.${b64('not json')}.c2ln`,
      `${b64('null')}.${b64({})}.c2ln`,
      `${header}.e30.c2ln!`,
      'x'.repeat(10_000),
      `${header}.${'A'.repeat(9000)}.c2ln`,
    ]) {
      await rejects(v, bad, 'token_malformed');
    }
    await assert.rejects(
      v.verify(undefined as unknown as string),
      (e: unknown) => e instanceof VerifyError && e.code === 'token_malformed',
    );
  });

  test('jku, x5u, jwk and x5c headers are ignored: no outbound request, the attacker key is not used', async () => {
    let outbound = 0;
    const evil = createServer((_req, res) => {
      outbound++;
      res.end('{}');
    });
    await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(evil.address() as { port: number }).port}/jwks`;
    const attacker = await jose.generateKeyPair('ES256', { extractable: true });
    const attackerJwk = await jose.exportJWK(attacker.publicKey);
    const before = forge.jwksRequests;
    await rejects(
      v,
      await forge.sign(forge.claims(), { jku: url, x5u: url, jwk: attackerJwk, x5c: ['MIIB'] }, attacker.privateKey),
      'signature_invalid',
    );
    await rejects(
      v,
      await forge.sign(forge.claims(), { kid: 'attacker', jku: url, jwk: attackerJwk }, attacker.privateKey),
      'key_unknown',
    );
    evil.close();
    assert.equal(outbound, 0);
    assert.ok(forge.jwksRequests - before <= 1, 'at most one refetch of the issuer JWKS for the unknown kid');
  });

  test('unknown kids: one shared JWKS refetch, then none within the cooldown', async () => {
    const fresh = await createVerifier({
      issuer: forge.issuer,
      audience: AUD,
      jwksUri: forge.jwksUri,
      jwksCooldown: 30,
    });
    try {
      const start = forge.jwksRequests;
      const tokens = await Promise.all(
        Array.from({ length: 10 }, (_, i) => forge.sign(forge.claims(), { kid: `unknown-${i}` })),
      );
      await new Promise((r) => setTimeout(r, 50));
      const results = await Promise.allSettled(tokens.map((t) => fresh.verify(t)));
      assert.ok(results.every((r) => r.status === 'rejected' && (r.reason as VerifyError).code === 'key_unknown'));
      const afterBurst = forge.jwksRequests - start;
      assert.equal(afterBurst, 0, 'the initial fetch was within the cooldown, so no refetch');
    } finally {
      fresh.close();
    }
    const cold = await createVerifier({
      issuer: forge.issuer,
      audience: AUD,
      jwksUri: forge.jwksUri,
      jwksCooldown: 0.2,
    });
    try {
      await new Promise((r) => setTimeout(r, 250));
      const start = forge.jwksRequests;
      const tokens = await Promise.all(
        Array.from({ length: 10 }, () => forge.sign(forge.claims(), { kid: 'still-unknown' })),
      );
      await Promise.allSettled(tokens.map((t) => cold.verify(t)));
      assert.equal(forge.jwksRequests - start, 1, 'ten concurrent callers share one refetch');
      await Promise.allSettled(tokens.map((t) => cold.verify(t)));
      assert.equal(forge.jwksRequests - start, 1, 'no second refetch inside the cooldown');
    } finally {
      cold.close();
    }
  });

  test('sender-constrained tokens without the bound certificate are refused', async () => {
    await rejects(v, await forge.sign(forge.claims({ cnf: { 'x5t#S256': 'abc' } })), 'binding_mismatch');
    await rejects(v, await forge.sign(forge.claims({ cnf: { jkt: 'abc' } })), 'binding_mismatch');
  });

  test('a token seen before costs a lookup: the cached result still honours expiry', async () => {
    const clock = new FakeClock();
    const timed = await createVerifier({ issuer: forge.issuer, audience: AUD, jwksUri: forge.jwksUri, clock });
    try {
      // Expired 29 s ago: valid only thanks to the 30 s skew, for one more second.
      const token = await forge.sign(forge.claims({ exp: Math.floor(clock.now() / 1000) - 29 }));
      assert.ok(await timed.verify(token));
      const cached = timed.health().cachedTokens;
      assert.ok(await timed.verify(token));
      assert.equal(timed.health().cachedTokens, cached);
      clock.advanceSeconds(2);
      await rejects(timed, token, 'token_expired');
    } finally {
      timed.close();
    }
  });
});
