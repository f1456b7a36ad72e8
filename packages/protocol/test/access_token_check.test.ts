// The one access-token claims check the SDK verifier and the IdP's own endpoints share (issue 12).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { accessTokenTypeOk, checkAccessTokenClaims, checkCertificateBinding } from '@latchkey/protocol';

const base = {
  iss: 'https://idp',
  sub: 's',
  aud: ['https://a', 'https://b'],
  exp: 1000,
  iat: 900,
  jti: 'j',
  client_id: 's',
};
const check = (p: Record<string, unknown>, o: Partial<{ audience: string; now: number }> = {}) =>
  checkAccessTokenClaims(p, {
    issuer: 'https://idp',
    now: o.now ?? 950,
    skew: 30,
    ...(o.audience !== undefined ? { audience: o.audience } : {}),
  });

test('typ: at+jwt or application/at+jwt in any case (RFC 9068 §4, RFC 7515 §4.1.9); nothing else', () => {
  for (const typ of ['at+jwt', 'AT+JWT', 'application/at+jwt', 'Application/AT+JWT'])
    assert.equal(accessTokenTypeOk({ typ }), true, typ);
  for (const typ of [undefined, 'JWT', 'jwt', 'at+jwt ', 'application/jwt', 42])
    assert.equal(accessTokenTypeOk({ typ }), false, String(typ));
});

test('issuer exact, audience contained, required claims typed, times with skew', () => {
  assert.equal(check(base, { audience: 'https://b' }).ok, true);
  assert.equal(check(base).ok, true, 'no audience asked (introspection)');
  const cases: [Record<string, unknown>, Partial<{ audience: string; now: number }>, string][] = [
    [{ ...base, iss: 'https://idp/' }, {}, 'wrong_issuer'],
    [base, { audience: 'https://c' }, 'wrong_audience'],
    [{ ...base, aud: [] }, {}, 'claims_invalid'],
    [{ ...base, exp: '1000' }, {}, 'claims_invalid'],
    [{ ...base, jti: '' }, {}, 'claims_invalid'],
    [{ ...base, client_id: undefined }, {}, 'claims_invalid'],
    [{ ...base, nbf: 'soon' }, {}, 'claims_invalid'],
    [base, { now: 1031 }, 'token_expired'],
    [{ ...base, nbf: 990 }, {}, 'token_not_yet_valid'],
    [{ ...base, iat: 990 }, {}, 'token_not_yet_valid'],
  ];
  for (const [p, o, problem] of cases) {
    const r = check(p, o);
    assert.equal(r.ok ? 'ok' : r.problem, problem, JSON.stringify(p));
  }
  assert.equal(check(base, { now: 1030 }).ok, true, 'within the skew');
});

test('certificate binding: unbound passes; bound needs the same thumbprint', () => {
  const claims = { ...base, aud: 'https://a' };
  assert.equal(checkCertificateBinding(claims, undefined), undefined);
  const bound = { ...claims, cnf: { 'x5t#S256': 'abc' } };
  assert.equal(checkCertificateBinding(bound, 'abc'), undefined);
  assert.equal(checkCertificateBinding(bound, 'xyz'), 'binding_mismatch');
  assert.equal(checkCertificateBinding(bound, undefined), 'binding_mismatch');
});
