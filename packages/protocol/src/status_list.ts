import { promisify } from 'node:util';
import { deflate, deflateSync, inflateSync } from 'node:zlib';

const deflateAsync = promisify(deflate);

/**
 * Token Status List (draft-ietf-oauth-status-list; section numbers of draft 17): the `status`
 * claim of a token and the signed, compressed bit list a verifier reads it from.
 */

/** §6.1 / §6.2: the `status.status_list` member of a referenced token. */
export interface StatusListReference {
  /** The token's index in the list (a non-negative integer). */
  idx: number;
  /** The URI of the Status List Token (its `sub`). */
  uri: string;
}

/** §6.2: the `status` claim. */
export interface StatusClaim {
  status_list: StatusListReference;
}

/** §5.1: JOSE header `typ` of a Status List Token. */
export const STATUS_LIST_TYP = 'statuslist+jwt';
/** §8.1 / §8.2: the media type a Status List Token in JWT form is asked for and answered with. */
export const STATUS_LIST_MEDIA_TYPE = 'application/statuslist+jwt';

/** §7.1: status values Latchkey uses (bits = 1: valid or not). */
export const TOKEN_STATUS = { valid: 0, invalid: 1, suspended: 2 } as const;

/** §4.2: the `status_list` claim of a Status List Token. */
export interface StatusListClaim {
  bits: 1 | 2 | 4 | 8;
  lst: string;
  aggregation_uri?: string;
}

/** §5.1: the claims of a Status List Token. */
export interface StatusListTokenClaims {
  iss?: string;
  sub: string;
  iat: number;
  exp?: number;
  ttl?: number;
  status_list: StatusListClaim;
}

/**
 * §4.1 step 3: sets index `idx` of a 1-bit list to 1 (INVALID). Bits are packed from the least
 * significant bit of each byte: index 0 is bit 0 of byte 0, index 8 bit 0 of byte 1.
 */
export function setInvalid(bytes: Uint8Array, idx: number): void {
  const i = idx >>> 3;
  bytes[i] = (bytes[i] ?? 0) | (1 << (idx & 7));
}

/** §4.1: the status at `idx` of a list of `bits` bits per token; undefined when out of bounds (§8.3 step 6). */
export function statusAt(bytes: Uint8Array, idx: number, bits: 1 | 2 | 4 | 8 = 1): number | undefined {
  if (!Number.isSafeInteger(idx) || idx < 0) return undefined;
  const perByte = 8 / bits;
  const byte = bytes[Math.floor(idx / perByte)];
  if (byte === undefined) return undefined;
  return (byte >> ((idx % perByte) * bits)) & ((1 << bits) - 1);
}

/** §4.1 step 4: ZLIB (RFC 1950) over DEFLATE (RFC 1951) at the highest level, then base64url (§4.2 `lst`). */
export function compressStatusList(bytes: Uint8Array): string {
  return deflateSync(bytes, { level: 9 }).toString('base64url');
}

/** {@link compressStatusList} on libuv's thread pool: a 1M-entry list takes ~50 ms at level 9, off the event loop. */
export async function compressStatusListAsync(bytes: Uint8Array): Promise<string> {
  return (await deflateAsync(bytes, { level: 9 })).toString('base64url');
}

/**
 * Inverse of {@link compressStatusList}: the byte array, inflated to at most `maxBytes` (a
 * decompression bomb stops there and throws). Throws on anything that is not ZLIB data.
 */
export function decompressStatusList(lst: string, maxBytes: number): Uint8Array {
  return new Uint8Array(inflateSync(Buffer.from(lst, 'base64url'), { maxOutputLength: maxBytes }));
}

/** Whether a claims value is a well-formed `status.status_list` reference (§6.2). */
export function statusListReferenceOf(claims: { status?: unknown }): StatusListReference | undefined {
  const s = claims.status;
  if (typeof s !== 'object' || s === null) return undefined;
  const r = (s as { status_list?: unknown }).status_list;
  if (typeof r !== 'object' || r === null) return undefined;
  const { idx, uri } = r as { idx?: unknown; uri?: unknown };
  return Number.isSafeInteger(idx) && (idx as number) >= 0 && typeof uri === 'string' && uri.length > 0
    ? { idx: idx as number, uri }
    : undefined;
}

export type StatusListTokenProblem = 'wrong_subject' | 'claims_invalid' | 'expired';

/**
 * §8.3 step 4: the claims a Status List Token must have, its `sub` equal to the `uri` the token
 * named, and not expired. The signature and `typ` are the caller's to check (§8.3 step 3).
 */
export function checkStatusListTokenClaims(
  payload: Record<string, unknown>,
  expected: { uri: string; issuer?: string; now: number; skew: number },
): { ok: true; claims: StatusListTokenClaims } | { ok: false; problem: StatusListTokenProblem } {
  const sl = payload.status_list as Partial<StatusListClaim> | undefined;
  if (
    typeof payload.sub !== 'string' ||
    typeof payload.iat !== 'number' ||
    (payload.exp !== undefined && typeof payload.exp !== 'number') ||
    (payload.ttl !== undefined && (typeof payload.ttl !== 'number' || payload.ttl <= 0)) ||
    typeof sl !== 'object' ||
    sl === null ||
    ![1, 2, 4, 8].includes(sl.bits as number) ||
    typeof sl.lst !== 'string'
  )
    return { ok: false, problem: 'claims_invalid' };
  if (expected.issuer !== undefined && payload.iss !== expected.issuer) return { ok: false, problem: 'claims_invalid' };
  if (payload.sub !== expected.uri) return { ok: false, problem: 'wrong_subject' };
  if (typeof payload.exp === 'number' && payload.exp + expected.skew <= expected.now)
    return { ok: false, problem: 'expired' };
  return { ok: true, claims: payload as unknown as StatusListTokenClaims };
}
