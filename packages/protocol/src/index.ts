// The wire contract, named export by export: what a service, the IdP and the CLI agree on.
export {
  ACCESS_TOKEN_TYP,
  SIGNING_ALGORITHMS,
  CLIENT_ASSERTION_ALGORITHMS,
  CLIENT_ASSERTION_TYPE_JWT_BEARER,
  CLIENT_ASSERTION_TYPE_JWT_SPIFFE,
  JWT_BEARER_GRANT,
  TOKEN_ENDPOINT_AUTH_METHODS,
  GRANT_TYPES,
  basicAuthorization,
  type AccessTokenClaims,
  type SigningAlgorithm,
  type ClientAssertionAlgorithm,
  type TokenEndpointAuthMethod,
  type GrantType,
} from './claims.ts';
export {
  accessTokenTypeOk,
  checkAccessTokenClaims,
  checkAccessTokenTime,
  checkCertificateBinding,
  type AccessTokenProblem,
} from './access_token_check.ts';
export { OAUTH_ERROR_CODES, type OAuthErrorCode, type OAuthErrorBody } from './oauth_errors.ts';
export { ERROR_CODES, type ErrorCode } from './error_codes.ts';
export {
  ADMIN_ERROR_CODES,
  type AdminErrorBody,
  type AdminErrorCode,
  type ValidationProblem,
} from './admin_errors.ts';
export {
  AUDIT_EVENT_TYPES,
  AUTH_FAILURE_REASONS,
  LOGIN_FAILURE_REASONS,
  type LoginFailureReason,
  REPORTABLE_EVENT_TYPES,
  type AuthFailureReason,
  type ReportableEventType,
  type ReportedEvent,
  type AuditEventType,
  type AuditOutcome,
  type AuditEvent,
} from './audit_event.ts';
export { signJws, verifyJws, parseCompactJws, type ParsedJws } from './jws.ts';
export {
  FEED_STREAM_EVENTS,
  type RevocationKind,
  type RevocationEntry,
  type KeyEventType,
  type KeyEvent,
  type FeedPage,
  type PolicyEvent,
} from './feed.ts';
export type { PolicyEntity, PolicyBundle, PolicyBundleContent } from './policy_bundle.ts';
export { TLS_MIN_VERSION, TLS_CIPHERS, TLS_OPTIONS } from './tls_settings.ts';
export {
  SPIFFE_ID,
  isSpiffeId,
  serviceSpiffeId,
  serviceClientId,
  spiffeIdOfCertificate,
  spiffeIdOfSan,
  certificateThumbprint,
  WORKLOAD_SCOPE,
} from './spiffe.ts';
export { type Clock, systemClock, epochSeconds, startTimer } from './clock.ts';
export {
  TOKEN_EXCHANGE_GRANT,
  TOKEN_TYPES,
  TXN_TOKEN_TYP,
  TXN_TOKEN_HEADER,
  MAX_ACT_NESTING,
  actorChain,
  actorClaim,
  isActorClaim,
  transactionTokenTypeOk,
  checkTransactionTokenClaims,
  type ActorClaim,
  type TransactionTokenClaims,
  type TransactionTokenProblem,
} from './delegation.ts';
export {
  STATUS_LIST_TYP,
  STATUS_LIST_MEDIA_TYPE,
  TOKEN_STATUS,
  setInvalid,
  statusAt,
  compressStatusList,
  compressStatusListAsync,
  decompressStatusList,
  statusListReferenceOf,
  checkStatusListTokenClaims,
  type StatusClaim,
  type StatusListReference,
  type StatusListClaim,
  type StatusListTokenClaims,
  type StatusListTokenProblem,
} from './status_list.ts';
export {
  SET_TYP,
  SET_MEDIA_TYPE,
  SSF_DELIVERY,
  SECURITY_EVENT_TYPES,
  SET_DELIVERY_ERRORS,
  SSF_SCOPE,
  subjectKey,
  type SsfDeliveryMethod,
  type SecurityEventType,
  type SubjectIdentifier,
  type SecurityEventTokenClaims,
  type SetPollRequest,
  type SetPollResponse,
  type SsfStreamConfiguration,
  type SsfStreamStatus,
} from './security_events.ts';
