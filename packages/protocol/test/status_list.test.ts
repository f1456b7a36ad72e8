import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import { StatusList } from '@sd-jwt/jwt-status-list';
import {
  checkStatusListTokenClaims,
  compressStatusList,
  decompressStatusList,
  setInvalid,
  statusAt,
  statusListReferenceOf,
} from '@latchkey/protocol';

/** The 1-bit test vector of draft-ietf-oauth-status-list (Appendix "Test vectors", 2^20 entries). */
const VECTOR_INDICES = [0, 1993, 25460, 159495, 495669, 554353, 645645, 723232, 854545, 934534, 1000345];
const VECTOR_LST =
  'eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogEAAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAAA7KpLAAAAAAAAAAAAAAAAAAAAAJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAAACAZC8L2AEb';

describe('Token Status List encoding', () => {
  test('the draft 1-bit example: 16 statuses → 0xB9 0xA3, and its lst decodes to them', () => {
    const bytes = new Uint8Array(2);
    for (const i of [0, 3, 4, 5, 7, 8, 9, 13, 15]) setInvalid(bytes, i);
    assert.deepEqual([...bytes], [0xb9, 0xa3]);
    assert.deepEqual([...decompressStatusList('eNrbuRgAAhcBXQ', 16)], [0xb9, 0xa3]);
  });

  test('the draft 2^20 test vector: our bits match it, and both decode to the same statuses', () => {
    const ours = new Uint8Array(2 ** 17);
    for (const i of VECTOR_INDICES) setInvalid(ours, i);
    const theirs = decompressStatusList(VECTOR_LST, 2 ** 17);
    assert.deepEqual(Buffer.from(ours), Buffer.from(theirs));
    for (const i of VECTOR_INDICES) assert.equal(statusAt(theirs, i), 1);
    assert.equal(statusAt(theirs, 1), 0);
    assert.equal(statusAt(theirs, 2 ** 20), undefined, 'out of bounds: no statement');
    assert.equal(statusAt(theirs, -1), undefined);
  });

  test('@sd-jwt/jwt-status-list reads what we compress, index by index', () => {
    const bytes = new Uint8Array(1024);
    const revoked = new Set<number>();
    while (revoked.size < 300) revoked.add(randomInt(8192));
    for (const i of revoked) setInvalid(bytes, i);
    const list = StatusList.decompressStatusList(compressStatusList(bytes), 1);
    for (let i = 0; i < 8192; i++) assert.equal(list.getStatus(i), revoked.has(i) ? 1 : 0, `index ${i}`);
  });

  test('a decompression bomb stops at the bound', () => {
    const big = compressStatusList(new Uint8Array(1 << 20));
    assert.ok(big.length < 2000);
    assert.throws(() => decompressStatusList(big, 1 << 16));
  });

  test('sizes at 100k and 1M indices, 0%, 0.1% and 1% revoked (draft §12.4 / Appendix "Size comparison")', (t) => {
    const sizes: Record<string, number> = {};
    for (const n of [100_000, 1_000_000])
      for (const rate of [0, 0.001, 0.01]) {
        const bytes = new Uint8Array(Math.ceil(n / 8));
        const revoked = new Set<number>();
        while (revoked.size < n * rate) revoked.add(randomInt(n));
        for (const i of revoked) setInvalid(bytes, i);
        const lst = compressStatusList(bytes);
        sizes[`${n}@${rate * 100}%`] = lst.length;
        // The independent reader agrees on a sample of indices.
        const list = StatusList.decompressStatusList(lst, 1);
        for (const i of [...revoked].slice(0, 50)) assert.equal(list.getStatus(i), 1);
      }
    t.diagnostic(`lst bytes (base64url): ${JSON.stringify(sizes)}`);
    // The draft's table: 1M at 1% is 13.7 KB compressed (base64url adds a third); 100k at 1% 1.4 KB.
    assert.ok((sizes['1000000@1%'] as number) < 20_000, `1M at 1%: ${sizes['1000000@1%']}`);
    assert.ok((sizes['100000@1%'] as number) < 2_200, `100k at 1%: ${sizes['100000@1%']}`);
    assert.ok((sizes['1000000@0%'] as number) < 300);
  });

  test('a reference is read only when well formed', () => {
    assert.deepEqual(statusListReferenceOf({ status: { status_list: { idx: 3, uri: 'https://a/sl/1' } } }), {
      idx: 3,
      uri: 'https://a/sl/1',
    });
    for (const status of [
      undefined,
      null,
      1,
      {},
      { status_list: { idx: -1, uri: 'x' } },
      { status_list: { idx: 1.5, uri: 'x' } },
      { status_list: { idx: 1 } },
    ])
      assert.equal(statusListReferenceOf({ status }), undefined);
  });

  test('Status List Token claims: sub must be the uri, exp honoured, bits and lst present', () => {
    const good = {
      iss: 'https://i',
      sub: 'https://i/sl/1',
      iat: 100,
      exp: 200,
      ttl: 60,
      status_list: { bits: 1, lst: 'x' },
    };
    const want = { uri: 'https://i/sl/1', issuer: 'https://i', now: 150, skew: 0 };
    assert.equal(checkStatusListTokenClaims(good, want).ok, true);
    assert.deepEqual(checkStatusListTokenClaims({ ...good, sub: 'https://i/sl/2' }, want), {
      ok: false,
      problem: 'wrong_subject',
    });
    assert.deepEqual(checkStatusListTokenClaims(good, { ...want, now: 200 }), { ok: false, problem: 'expired' });
    assert.deepEqual(checkStatusListTokenClaims({ ...good, status_list: { bits: 3, lst: 'x' } }, want), {
      ok: false,
      problem: 'claims_invalid',
    });
    assert.deepEqual(checkStatusListTokenClaims({ ...good, ttl: 0 }, want), { ok: false, problem: 'claims_invalid' });
    assert.deepEqual(checkStatusListTokenClaims({ ...good, iss: 'https://other' }, want), {
      ok: false,
      problem: 'claims_invalid',
    });
  });
});
