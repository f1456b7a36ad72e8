export * from './claims.ts';
export * from './oauth_errors.ts';
export * from './error_codes.ts';
export * from './audit_event.ts';
export * from './jws.ts';
export * from './feed.ts';
export * from './policy_bundle.ts';
export * from './cedar_eval.ts';
