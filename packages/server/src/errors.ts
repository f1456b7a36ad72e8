import type {
  AdminErrorBody,
  AdminErrorCode,
  AuthFailureReason,
  ErrorCode,
  OAuthErrorCode,
  ValidationProblem,
} from '@latchkey/protocol';

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

const ADMIN_STATUS: Record<AdminErrorCode, number> = {
  validation_failed: 400,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  csrf_failed: 403,
};

/** An error of the admin API (`/admin/...`), with a distinct code per kind (docs/errors.md). */
export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly status: number;
  readonly problems: ValidationProblem[] | undefined;

  constructor(code: AdminErrorCode, description: string, problems?: ValidationProblem[]) {
    super(description);
    this.name = 'AdminError';
    this.code = code;
    this.status = ADMIN_STATUS[code];
    this.problems = problems;
  }

  toJSON(): AdminErrorBody {
    return {
      error: this.code,
      error_description: this.message,
      ...(this.problems ? { errors: this.problems } : {}),
    };
  }
}

export const notFound = (description: string): AdminError => new AdminError('not_found', description);
export const conflict = (description: string): AdminError => new AdminError('conflict', description);
export const validationFailed = (description: string): AdminError => new AdminError('validation_failed', description);
