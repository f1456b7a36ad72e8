/**
 * Security Event Tokens as the IdP transmits them: RFC 8417 SETs profiled by the OpenID Shared
 * Signals Framework 1.0 (SSF), with CAEP 1.0 and RISC 1.0 event types, delivered by push (RFC 8935)
 * or poll (RFC 8936).
 */

/** SSF §4.1.1: JOSE `typ` of every SET (RFC 8417 §2.3). */
export const SET_TYP = 'secevent+jwt';
/** RFC 8935 §2: the media type a pushed SET is sent as. */
export const SET_MEDIA_TYPE = 'application/secevent+jwt';

/** SSF §6.1: delivery method URIs. */
export const SSF_DELIVERY = { push: 'urn:ietf:rfc:8935', poll: 'urn:ietf:rfc:8936' } as const;
export type SsfDeliveryMethod = (typeof SSF_DELIVERY)[keyof typeof SSF_DELIVERY];

const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';
const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';

/** The event types Latchkey transmits (SSF §8.1.4, CAEP §3, RISC §2). */
export const SECURITY_EVENT_TYPES = {
  verification: `${SSF}verification`,
  streamUpdated: `${SSF}stream-updated`,
  sessionRevoked: `${CAEP}session-revoked`,
  credentialChange: `${CAEP}credential-change`,
  tokenClaimsChange: `${CAEP}token-claims-change`,
  assuranceLevelChange: `${CAEP}assurance-level-change`,
  accountDisabled: `${RISC}account-disabled`,
  accountEnabled: `${RISC}account-enabled`,
  accountPurged: `${RISC}account-purged`,
  credentialCompromise: `${RISC}credential-compromise`,
} as const;
export type SecurityEventType = (typeof SECURITY_EVENT_TYPES)[keyof typeof SECURITY_EVENT_TYPES];

/** RFC 9493 subject identifiers Latchkey uses: a user or service by issuer and subject, a stream by id. */
export type SubjectIdentifier =
  | { format: 'iss_sub'; iss: string; sub: string }
  | { format: 'opaque'; id: string }
  | { format: 'jwt_id'; iss: string; jti: string }
  | { format: 'email'; email: string };

/** The claims of a SET (RFC 8417 §2.2; SSF §4.1: no `sub`, no `exp`, the subject in `sub_id`). */
export interface SecurityEventTokenClaims {
  iss: string;
  jti: string;
  iat: number;
  aud: string | string[];
  txn?: string;
  sub_id: SubjectIdentifier;
  events: Record<string, Record<string, unknown>>;
}

/** RFC 8935 §2.3 / RFC 8936 §2.4.4: the error a recipient reports for a SET it could not accept. */
export const SET_DELIVERY_ERRORS = [
  'invalid_request',
  'invalid_key',
  'invalid_issuer',
  'invalid_audience',
  'authentication_failed',
  'access_denied',
] as const;

/** RFC 8936 §2.1: a poll request. */
export interface SetPollRequest {
  maxEvents?: number;
  returnImmediately?: boolean;
  ack?: string[];
  setErrs?: Record<string, { err: string; description: string }>;
}

/** RFC 8936 §2.2: a poll response, SETs by `jti`. */
export interface SetPollResponse {
  sets: Record<string, string>;
  moreAvailable?: boolean;
}

/** SSF §8.1.1: a stream's configuration as the transmitter shows it. */
export interface SsfStreamConfiguration {
  stream_id: string;
  iss: string;
  aud: string | string[];
  events_supported: string[];
  events_requested: string[];
  events_delivered: string[];
  delivery: { method: SsfDeliveryMethod; endpoint_url?: string; authorization_header?: string };
  min_verification_interval?: number;
  description?: string;
}

/** SSF §8.1.2: a stream's status. */
export type SsfStreamStatus = 'enabled' | 'paused' | 'disabled';

/** The canonical text of a subject identifier: its members sorted (two equal subjects, one key). */
export function subjectKey(subject: SubjectIdentifier | Record<string, unknown>): string {
  const s = subject as Record<string, unknown>;
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(s)
        .sort()
        .map((k) => [k, s[k]]),
    ),
  );
}

/** The scope a Shared Signals receiver's access token needs at the IdP's stream management endpoints. */
export const SSF_SCOPE = 'ssf';
