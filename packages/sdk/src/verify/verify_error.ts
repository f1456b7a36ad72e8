/**
 * Every reason a token can be refused; stable across releases.
 *
 * @example
 * ```ts
 * import { VERIFY_ERROR_CODES } from '@latchkey/sdk/verify';
 * const metrics = Object.fromEntries(VERIFY_ERROR_CODES.map((code) => [code, 0]));
 * ```
 */
export const VERIFY_ERROR_CODES = [
  'token_malformed',
  'token_expired',
  'token_not_yet_valid',
  'token_revoked',
  'signature_invalid',
  'wrong_issuer',
  'wrong_audience',
  'wrong_type',
  'key_unknown',
  'algorithm_not_allowed',
  'critical_header_unsupported',
  'claims_invalid',
  'binding_mismatch',
  'issuer_unreachable',
  'delegation_refused',
] as const;

export type VerifyErrorCode = (typeof VERIFY_ERROR_CODES)[number];

/**
 * Why a token was refused. `code` is stable; `message` is for humans and never contains the token.
 *
 * @example
 * ```ts
 * try {
 *   await verifier.verify(token);
 * } catch (err) {
 *   if (err instanceof VerifyError && err.code === 'token_expired') reply.code(401);
 * }
 * ```
 */
export class VerifyError extends Error {
  readonly code: VerifyErrorCode;
  constructor(code: VerifyErrorCode, message: string) {
    super(message);
    this.name = 'VerifyError';
    this.code = code;
  }
}
