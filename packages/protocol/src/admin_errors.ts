/**
 * The error codes of the admin API (`/admin/...`). Its error body has the same envelope as an
 * OAuth error — `{"error": "...", "error_description": "..."}` — plus, for `validation_failed`,
 * `errors: [{ in, path, message }]` listing every problem. An admin bearer that is missing or
 * wrong is still RFC 6750's `invalid_token` (401), and client metadata RFC 7591's
 * `invalid_client_metadata`. docs/errors.md lists exactly these; a test keeps the two in step.
 */
export const ADMIN_ERROR_CODES = [
  'validation_failed',
  'not_found',
  'conflict',
  'unsupported_media_type',
  'payload_too_large',
  'csrf_failed',
] as const;
export type AdminErrorCode = (typeof ADMIN_ERROR_CODES)[number];

/** One problem of a request that failed validation: where (`body`, `querystring`, `params`), which member, what. */
export interface ValidationProblem {
  in: string;
  path: string;
  message: string;
}

/** The JSON body of an admin API error. */
export interface AdminErrorBody {
  error: AdminErrorCode;
  error_description: string;
  /** Every problem: `ValidationProblem`s of a request, or Cedar's located problems of a policy bundle. */
  errors?: readonly { message: string }[];
  /** Cedar's warnings about a refused bundle. */
  warnings?: readonly { message: string }[];
}
