/**
 * Stable internal error codes. Every code is documented in docs/errors.md, and a test keeps the
 * two in step. Codes never change meaning once released.
 */
export const ERROR_CODES = [
  'config_invalid',
  'storage_unavailable',
  'storage_conflict',
  'migration_failed',
  'master_key_invalid',
  'key_decrypt_failed',
  'signing_key_missing',
  'tls_material_invalid',
  'ca_material_invalid',
  'ca_operator_managed',
  'ca_rotation_pending',
  'outbound_fetch_failed',
  'backup_invalid',
  'restore_refused',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
