/**
 * OAuth wire error codes: RFC 6749 §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1, RFC 7591 §3.2.2,
 * RFC 8707 §2, plus `temporarily_unavailable` / `server_error` (RFC 6749 §4.1.2.1).
 */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'unsupported_token_type'
  | 'invalid_client_metadata'
  | 'invalid_redirect_uri'
  | 'access_denied'
  | 'temporarily_unavailable'
  | 'server_error';

/** The JSON body of an OAuth error response (RFC 6749 §5.2). */
export interface OAuthErrorBody {
  error: OAuthErrorCode;
  error_description?: string;
}
