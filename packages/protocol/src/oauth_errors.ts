/**
 * The OAuth wire error codes Latchkey answers with: RFC 6749 §5.2, RFC 6750 §3.1 (`invalid_token`,
 * `insufficient_scope`), RFC 7591 §3.2.2 (`invalid_client_metadata`), RFC 8707 §2
 * (`invalid_target`), `access_denied` (a permission refused by the SDK's requirePermission), and
 * `temporarily_unavailable` / `server_error` (RFC 6749 §4.1.2.1), and the authorization endpoint's
 * (`unsupported_response_type`, RFC 6749 §4.1.2.1; `request_not_supported`,
 * `request_uri_not_supported`, `login_required`, `consent_required`, OpenID Connect Core §3.1.2.6),
 * sent to the redirect URI, and the SDK middleware's `invalid_txn_token` (a Transaction Token required
 * or presented and not valid). docs/errors.md lists exactly
 * these; a test keeps the two in step.
 */
export const OAUTH_ERROR_CODES = [
  'invalid_request',
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'invalid_target',
  'invalid_grant',
  'unsupported_response_type',
  'request_not_supported',
  'request_uri_not_supported',
  'login_required',
  'consent_required',
  'invalid_txn_token',
  'invalid_token',
  'insufficient_scope',
  'invalid_client_metadata',
  'access_denied',
  'temporarily_unavailable',
  'server_error',
] as const;
export type OAuthErrorCode = (typeof OAUTH_ERROR_CODES)[number];

/** The JSON body of an OAuth error response (RFC 6749 §5.2). */
export interface OAuthErrorBody {
  error: OAuthErrorCode;
  error_description?: string;
}
