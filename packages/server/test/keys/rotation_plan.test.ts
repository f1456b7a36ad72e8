import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planRotation, nextRotationAt, type RotationPolicy } from '../../src/keys/rotation_plan.ts';
import type { SigningKeyRecord } from '@latchkey/server';

const policy: RotationPolicy = { rotateEvery: 1000, announce: 100, alg: 'ES256' };
const key = (
  kid: string,
  state: SigningKeyRecord['state'],
  createdAt: number,
  activatedAt: number | null = null,
  alg: SigningKeyRecord['alg'] = 'ES256',
): SigningKeyRecord => ({
  kid,
  alg,
  state,
  publicJwk: {},
  privateKeyEnc: '',
  createdAt,
  activatedAt,
  retiredAt: null,
  removeAfter: null,
});

test('first start: create a current key', () => {
  assert.deepEqual(planRotation([], 0, policy, false), [{ kind: 'create_current', alg: 'ES256' }]);
});

test('a next key is always kept, published a whole rotation ahead', () => {
  assert.deepEqual(planRotation([key('a', 'current', 0, 0)], 1, policy, false), [
    { kind: 'create_next', alg: 'ES256' },
  ]);
});

test('the next key takes over only when the current one is due AND the next has been announced long enough', () => {
  const keys = [key('a', 'current', 0, 0), key('b', 'next', 950)];
  assert.deepEqual(planRotation(keys, 999, policy, false), [], 'not due yet');
  assert.deepEqual(planRotation(keys, 1000, policy, false), [], 'due, but b announced only 50 s ago');
  assert.deepEqual(planRotation(keys, 1050, policy, false), [{ kind: 'promote', next: 'b', current: 'a' }]);
  assert.equal(nextRotationAt(keys, policy), 1050);
});

test('a requested rotation still waits for the announce window', () => {
  const keys = [key('a', 'current', 0, 0), key('b', 'next', 10)];
  assert.deepEqual(planRotation(keys, 50, policy, true), []);
  assert.deepEqual(planRotation(keys, 110, policy, true), [{ kind: 'promote', next: 'b', current: 'a' }]);
});

test('an algorithm change goes through the same lifecycle', () => {
  const keys = [key('a', 'current', 0, 0, 'ES256'), key('b', 'next', 10, null, 'EdDSA')];
  const eddsa = { ...policy, alg: 'EdDSA' as const };
  assert.deepEqual(planRotation(keys, 50, eddsa, false), [], 'announce first');
  assert.deepEqual(planRotation(keys, 110, eddsa, false), [{ kind: 'promote', next: 'b', current: 'a' }]);
});

test('no current key (revoked): the next key signs at once, or a new one is made', () => {
  assert.deepEqual(planRotation([key('a', 'revoked', 0, 0), key('b', 'next', 5)], 6, policy, false), [
    { kind: 'promote', next: 'b' },
  ]);
  assert.deepEqual(planRotation([key('a', 'revoked', 0, 0)], 6, policy, false), [
    { kind: 'create_current', alg: 'ES256' },
  ]);
});

test('retired keys do not block anything', () => {
  const keys = [key('r', 'retired', 0, 0), key('a', 'current', 1000, 1000), key('b', 'next', 1000)];
  assert.deepEqual(planRotation(keys, 1500, policy, false), []);
  assert.deepEqual(planRotation(keys, 2000, policy, false), [{ kind: 'promote', next: 'b', current: 'a' }]);
});
