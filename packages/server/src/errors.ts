import type { AuthFailureReason, ErrorCode, OAuthErrorCode } from '@latchkey/protocol';

/** An error that goes on the wire as an RFC 6749 §5.2 error body. */
export class OAuthError extends Error {
  readonly error: OAuthErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. `WWW-Authenticate` for 401 (RFC 6749 §5.2, RFC 6750 §3). */
  readonly headers: Record<string, string>;
  /** Which check refused a client authentication (audit only; never on the wire). */
  reason: AuthFailureReason | undefined;
  /** What the audit event of a refused authentication may record besides the reason (never a secret). */
  auditDetail: Record<string, string> | undefined;

  constructor(error: OAuthErrorCode, description: string, status = 400, headers: Record<string, string> = {}) {
    super(description);
    this.name = 'OAuthError';
    this.error = error;
    this.status = status;
    this.headers = headers;
  }

  toJSON(): { error: OAuthErrorCode; error_description: string } {
    return { error: this.error, error_description: this.message };
  }
}

/** An internal error with a stable code (listed in docs/errors.md). */
export class LatchkeyError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LatchkeyError';
    this.code = code;
  }
}

export const invalidRequest = (description: string): OAuthError => new OAuthError('invalid_request', description);

/** RFC 6749 §5.2: invalid_client is 401, with WWW-Authenticate when the client used (or may use) Basic. */
export const invalidClient = (description: string, reason?: AuthFailureReason): OAuthError => {
  const e = new OAuthError('invalid_client', description, 401, {
    'www-authenticate': 'Basic realm="latchkey", charset="UTF-8"',
  });
  e.reason = reason;
  return e;
};
