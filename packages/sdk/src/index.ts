export * from './connection/index.ts';
export * from './verify/index.ts';
export * from './token_client/index.ts';
export { authenticateBearer, peerCertificateOf, type AuthOptions, type AuthOutcome } from './middleware/bearer.ts';
export * from './workload/index.ts';
export * from './audit/index.ts';
export * from './authorize/index.ts';
export { decidePermission, type PermissionOptions } from './middleware/permission.ts';
