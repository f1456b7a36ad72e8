export { startIdp, type RunningIdp, type StartOptions } from './server.ts';
export {
  loadConfig,
  configFromEnv,
  defaults,
  insecureWarnings,
  envName,
  flagName,
  SETTINGS,
  type Config,
  type ConfigInput,
} from './config.ts';
export { settingsMarkdown } from './config_docs.ts';
export { openStorage } from './storage/open_storage.ts';
export { SqliteStorage } from './storage/sqlite/sqlite_storage.ts';
export { PostgresStorage } from './storage/postgres/postgres_storage.ts';
export type * from './storage/ports.ts';
export { migrations } from './storage/migrations/index.ts';
export { OAuthError, LatchkeyError } from './errors.ts';
export { MasterKey } from './keys/master_key.ts';
export { validateBundle, type PolicyProblem } from './policy/policy_validator.ts';
export { splitPolicyFile } from '@latchkey/policy';
export { verifyAuditOffline, readCheckpoints, type OfflineVerifyOptions } from './audit/offline_verify.ts';
export { backupSqlite, restoreSqlite, latchkeyVersionOf, SQLITE_FILE } from './storage/sqlite/sqlite_backup.ts';
