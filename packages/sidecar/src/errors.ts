/**
 * The sidecar's error codes: `config_invalid` (the file or environment), `start_failed` (the IdP
 * unreachable or refusing at start, a port taken). Stable: scripts and tests match on them.
 */
export const SIDECAR_ERROR_CODES = ['config_invalid', 'start_failed'] as const;
export type SidecarErrorCode = (typeof SIDECAR_ERROR_CODES)[number];

/** A typed error of the sidecar, with a stable {@link SIDECAR_ERROR_CODES} code. */
export class SidecarError extends Error {
  readonly code: SidecarErrorCode;
  constructor(code: SidecarErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'SidecarError';
  }
}
