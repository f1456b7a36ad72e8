import { isAdminActor } from '../admin/admin_token.ts';
import {
  type AuditEvent,
  SECURITY_EVENT_TYPES as T,
  type SecurityEventType,
  type SubjectIdentifier,
} from '@latchkey/protocol';
import type { UserRecord } from '../storage/ports.ts';

/** One security event an audit event stands for: its type, whom it is about, and its members. */
export interface SecurityEvent {
  type: SecurityEventType;
  subject: SubjectIdentifier;
  event: Record<string, unknown>;
}

/** Who caused it (CAEP §2 `initiating_entity`): an administrator, the user, a policy (a detector, reuse detection). */
type Initiator = 'admin' | 'user' | 'policy' | 'system';

/** The event types a stream can receive (SSF §8.1.1 `events_supported`). */
export const EVENTS_SUPPORTED: readonly SecurityEventType[] = [
  T.sessionRevoked,
  T.credentialChange,
  T.tokenClaimsChange,
  T.assuranceLevelChange,
  T.accountDisabled,
  T.accountEnabled,
  T.accountPurged,
  T.credentialCompromise,
  T.verification,
  T.streamUpdated,
];

export interface MappingContext {
  issuer: string;
  /** The user as stored now (the new claims of a `token-claims-change`). */
  user(sub: string): Promise<UserRecord | undefined>;
}

/**
 * The CAEP and RISC events an audit event of the IdP stands for (none for most): each revocation,
 * disable, lock and credential change, and the claims and assurance changes that follow from them.
 * Users and services alike are named `iss_sub` (RFC 9493 §3.2.5) — the `iss` and `sub` of their
 * tokens (a service's `sub` is its client id).
 */
export async function securityEventsOf(e: AuditEvent, ctx: MappingContext): Promise<SecurityEvent[]> {
  if (e.outcome !== 'success') return [];
  const at = Math.floor(Date.parse(e.time) / 1000);
  const about = (sub: string | undefined): SubjectIdentifier | undefined =>
    sub ? { format: 'iss_sub', iss: ctx.issuer, sub } : undefined;
  const user = about(e.subject);
  const client = about(e.client_id);
  const by = (fallback: Initiator): Initiator => (isAdminActor(e.actor) ? 'admin' : fallback);
  const one = (type: SecurityEventType, subject: SubjectIdentifier | undefined, event: Record<string, unknown>) =>
    subject ? [{ type, subject, event: { event_timestamp: at, ...event } }] : [];
  const detail = (e.detail ?? {}) as Record<string, unknown>;
  switch (e.type) {
    // CAEP session-revoked: a session, or every token of a subject, ended before its time.
    case 'user.logout':
      return one(T.sessionRevoked, user, { initiating_entity: 'user', reason_admin: { en: 'signed out' } });
    case 'subject.revoked':
      return one(T.sessionRevoked, user, {
        initiating_entity: by('system'),
        reason_admin: { en: 'every token revoked' },
      });
    // A single token revoked (RFC 7009): named by its jti (SSF §3.4.1 jwt_id); a refresh token
    // ends its sign-in, named by its user.
    case 'token.revoked': {
      if (typeof detail.refresh_family === 'string')
        return one(T.sessionRevoked, user, {
          initiating_entity: by('user'),
          reason_admin: { en: 'refresh token revoked' },
        });
      if (typeof detail.jti !== 'string') return [];
      return one(
        T.sessionRevoked,
        { format: 'jwt_id', iss: ctx.issuer, jti: detail.jti },
        { initiating_entity: by('user'), reason_admin: { en: 'access token revoked' } },
      );
    }
    case 'token.refresh_reused':
      return one(T.sessionRevoked, user, {
        initiating_entity: 'policy',
        reason_admin: { en: 'a rotated refresh token was used again; the sign-in was revoked' },
      });
    case 'user.consent_revoked':
      return one(T.sessionRevoked, user, {
        initiating_entity: by('user'),
        reason_admin: { en: `consent to ${e.client_id ?? 'a client'} withdrawn` },
      });
    // RISC account-disabled / -enabled / -purged: users and services alike.
    case 'user.disabled':
      return one(T.accountDisabled, user, { initiating_entity: by('system') });
    case 'user.enabled':
      return one(T.accountEnabled, user, { initiating_entity: by('system') });
    case 'user.deleted':
      return one(T.accountPurged, user, { initiating_entity: by('system') });
    case 'client.revoked':
      return [
        ...one(T.accountDisabled, client, { initiating_entity: by('system') }),
        ...(detail.compromised === true
          ? one(T.credentialCompromise, client, {
              credential_type: credentialTypeOf(typeof detail.method === 'string' ? detail.method : undefined),
              reason_admin: { en: 'the client’s credential was reported compromised' },
            })
          : []),
      ];
    case 'client.locked':
      return one(T.accountDisabled, client, {
        initiating_entity: 'policy',
        reason_admin: { en: `locked by a detector's response until ${String(detail.until ?? '?')}` },
      });
    case 'client.unlocked':
      return one(T.accountEnabled, client, { initiating_entity: by('system') });
    case 'client.deleted':
      return one(T.accountPurged, client, { initiating_entity: by('system') });
    // CAEP credential-change, and the assurance level a second factor moves.
    case 'user.password_set':
      return one(T.credentialChange, user, {
        credential_type: 'password',
        change_type: 'update',
        initiating_entity: by('user'),
      });
    case 'user.second_factor_enrolled':
      return [
        ...one(T.credentialChange, user, {
          credential_type: detail.factor === 'passkey' ? 'fido2-platform' : 'app',
          change_type: 'create',
          initiating_entity: 'user',
        }),
        // RFC 8176 authentication method references: from a password alone to multiple factors.
        ...one(T.assuranceLevelChange, user, {
          namespace: 'RFC8176',
          current_level: 'mfa',
          previous_level: 'pwd',
          change_direction: 'increase',
          initiating_entity: 'user',
        }),
      ];
    case 'user.second_factor_reset':
      return [
        ...one(T.credentialChange, user, {
          credential_type: 'app',
          change_type: 'delete',
          initiating_entity: by('system'),
        }),
        ...one(T.assuranceLevelChange, user, {
          namespace: 'RFC8176',
          current_level: 'pwd',
          previous_level: 'mfa',
          change_direction: 'decrease',
          initiating_entity: by('system'),
        }),
      ];
    // CAEP token-claims-change: the roles, groups or attributes a user's tokens carry.
    case 'user.updated': {
      const members = (m: unknown) =>
        typeof m === 'object' &&
        m !== null &&
        ((m as { added?: unknown[] }).added?.length ?? 0) + ((m as { removed?: unknown[] }).removed?.length ?? 0) > 0;
      const attributes = Array.isArray(detail.changed) && detail.changed.includes('attributes');
      if (!e.subject || !(members(detail.roles) || members(detail.groups) || attributes)) return [];
      const now = await ctx.user(e.subject);
      if (!now) return [];
      const claims: Record<string, unknown> = {};
      if (members(detail.roles)) claims.roles = now.roles;
      if (members(detail.groups)) claims.groups = now.groups;
      if (attributes) claims.attributes = now.attributes;
      return one(T.tokenClaimsChange, user, { claims, initiating_entity: by('system') });
    }
    default:
      return [];
  }
}

/** CAEP §3.3 `credential_type` of a client's authentication method. */
function credentialTypeOf(method: string | undefined): string {
  if (method === 'tls_client_auth' || method === 'self_signed_tls_client_auth') return 'x509';
  if (method === 'private_key_jwt') return 'private-key-jwt';
  return 'client-secret';
}
