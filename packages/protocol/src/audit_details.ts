import Type, { type Static, type TSchema } from 'typebox';
import type { AUDIT_EVENT_TYPES, AuditEvent } from './audit_event.ts';

/**
 * What each audit event type carries in `detail`, declared once: the IdP's writers are typed by
 * it, the detectors read it typed, `POST /audit/events` validates reported events against it,
 * and the event table of docs/audit.md is made from it. Optional members are there only in
 * some cases (the description says which). Every event may also carry the failure-aggregation
 * members (`aggregated`, `count`, `first_time`, `last_time`) when it stands for repeats.
 *
 * A separate entry point (`@latchkey/protocol/audit-details`): it loads TypeBox, which the
 * SDK's verification path does not need.
 */

const Str = (description: string) => Type.String({ description });
const Int = (description: string) => Type.Integer({ description });
const Opt = <T extends TSchema>(schema: T) => Type.Optional(schema);
const Obj = <P extends Record<string, TSchema>>(properties: P, description: string) =>
  Type.Object(properties, { description });
const ClientChange = Obj(
  {
    method: Opt(Str('token_endpoint_auth_method, when registered')),
    compromised: Opt(
      Type.Boolean({
        description: 'revoked because its credential was compromised (a RISC credential-compromise event)',
      }),
    ),
  },
  'who changed it is the actor; the client is client_id and subject',
);
const KeyRef = { kid: Str('the signing key') };
const SsfStream = (description: string) =>
  Obj(
    {
      stream_id: Str('the stream'),
      method: Str('its delivery method: urn:ietf:rfc:8935 (push) or urn:ietf:rfc:8936 (poll)'),
      status: Str('enabled, paused or disabled'),
      events: Int('event types it asked for'),
    },
    description,
  );
const UserChange = (description: string) =>
  Obj({ username: Str('the username (the user is `subject`)') }, `${description}; who did it is the actor`);
const Members = Type.Object({ added: Type.Array(Type.String()), removed: Type.Array(Type.String()) });
const Changes = Type.Object({
  added: Type.Array(Type.String()),
  removed: Type.Array(Type.String()),
  changed: Type.Array(Type.String()),
});

export const AUDIT_EVENT_DETAILS = {
  'client.auth_failed': Obj(
    {
      method: Opt(Str('the authentication method tried')),
      description: Opt(Str('what the check said (never a secret)')),
      presented_client_id: Opt(Str('client_id_mismatch: the client_id sent beside credentials of another client')),
      presented_spiffe_id: Opt(Str('certificate_mismatch: the SPIFFE ID of the certificate presented')),
    },
    'a client failed to authenticate at /token, /introspect, /revoke, a feed or /audit/events; `reason` says which check refused it',
  ),
  'token.issued': Obj(
    {
      grant_type: Str('client_credentials, authorization_code or refresh_token'),
      family: Opt(Str('authorization_code and refresh_token with a refresh token: its family')),
      auth_method: Str('how the client authenticated'),
      jti: Str('the token id'),
      aud: Type.Union([Type.String(), Type.Array(Type.String())], { description: 'its audience(s)' }),
      scope: Type.Union([Type.String(), Type.Null()], { description: 'its scope' }),
      exp: Int('when it expires (epoch seconds)'),
      cnf_x5t_s256: Opt(Str('certificate-bound token: the certificate thumbprint (RFC 8705)')),
    },
    'an access token was issued',
  ),
  'token.request_failed': Obj(
    {
      grant_type: Opt(Str('the grant asked for')),
      auth_method: Str('how the client authenticated'),
      description: Str('the RFC 6749 error description'),
    },
    "an authenticated client's token request was refused; `reason` is the RFC error",
  ),
  'token.introspected': Obj(
    {
      auth_method: Str('how the caller authenticated'),
      active: Type.Boolean({ description: 'the answer' }),
      reason: Str('why: active, expired, bad_signature, token, client, subject, key, client_gone, ...'),
      jti: Opt(Str('the token id, when it was one of ours')),
    },
    'RFC 7662 introspection',
  ),
  'token.revoked': Obj(
    {
      auth_method: Str('how the caller authenticated'),
      jti: Opt(Str('the token id, when there was one to revoke')),
      exp: Opt(Int('when it would have expired')),
      refresh_family: Opt(Str('a refresh token: the family (sign-in) that was revoked with it')),
    },
    "RFC 7009 revocation (also refusals of another client's token, and nothing to revoke)",
  ),
  'client.registered': ClientChange,
  'client.updated': ClientChange,
  'client.deleted': ClientChange,
  'client.revoked': ClientChange,
  'subject.revoked': Obj({}, 'every token of a subject, issued until now, was revoked'),
  'admin.auth_failed': Obj({}, 'a wrong admin bearer'),
  'key.created': Obj({ ...KeyRef, alg: Str('its algorithm'), state: Str('next or current') }, 'a signing key was made'),
  'key.activated': Obj(
    { ...KeyRef, alg: Str('its algorithm'), replaces: Type.Union([Type.String(), Type.Null()]) },
    'a next key started signing',
  ),
  'key.retired': Obj({ ...KeyRef, remove_after: Int('when it leaves the JWKS') }, 'a key stopped signing'),
  'key.removed': Obj(KeyRef, 'a retired or revoked key left the database after its last token expired'),
  'key.revoked': Obj(
    { ...KeyRef, was: Str('its state before') },
    'a key was revoked: its tokens stop working everywhere',
  ),
  'key.rotation_requested': Obj(
    { immediate: Type.Boolean({ description: 'activate at once rather than after the announce window' }) },
    'an administrator asked for a rotation',
  ),
  'authz.decision': Obj(
    {
      service: Str('the reporting client, from its authentication'),
      action: Opt(Str('the Cedar action')),
      policy_version: Opt(Type.Union([Type.Integer(), Type.Null()], { description: 'the bundle that decided' })),
      errors: Opt(Type.Array(Type.String(), { description: "Cedar's evaluation errors, if any" })),
      target: Opt(Str('the resource asked about')),
      reported_time: Opt(Str("the service's own time")),
      txn: Opt(Str('the Transaction Token of the request: its transaction id')),
      chain: Opt(Type.Array(Type.String(), { description: "the caller token's delegation chain, newest first" })),
      policies: Opt(
        Type.Array(Type.String(), {
          description: 'the policies that decided (the permits of an allow, the forbids of a deny)',
        }),
      ),
      sensitive: Opt(Type.Boolean({ description: 'a deciding policy is annotated `@sensitive`' })),
    },
    "a service reported a permission decision (POST /audit/events, the SDK audit queue): every deny and every sensitive decision, and allows while they stay under the service's individual rate",
  ),
  'authz.decisions': Obj(
    {
      service: Str('the reporting client, from its authentication'),
      count: Type.Integer({ minimum: 1, description: 'decisions this event stands for' }),
      from: Str('RFC 3339: the start of the interval (service time)'),
      to: Str('RFC 3339: its end'),
      action: Str('the Cedar action (`*` for the overflow row)'),
      resource_type: Str('the resource entity type (`*` for the overflow row)'),
      policies: Type.Array(Type.String(), { description: 'the policies that decided' }),
      policy_version: Type.Union([Type.Integer(), Type.Null()], { description: 'the bundle that decided' }),
      why: Type.Enum(['rate', 'backlog'], {
        description:
          '`rate`: allows above the individual rate (`allowRate`); `backlog`: the queue was full (the IdP slow or unreachable)',
      }),
      reported_time: Opt(Str("the service's own time")),
    },
    "a service's decisions counted per interval instead of one event each: per principal (`actor`), outcome, action, resource type, deciding policies and bundle version",
  ),
  'audit.gap': Obj(
    {
      service: Str('the reporting client'),
      count: Type.Integer({ minimum: 1, description: 'events the service could not keep' }),
    },
    'a service reported events its SDK had to discard (its queue full): the trail has a counted gap here; `actor` is the service',
  ),
  'token.rejected': Obj(
    {
      service: Str('the reporting client'),
      why: Opt(Str("the verifier's message")),
      jti: Opt(Str('the token id the token claims (never the token)')),
      kid: Opt(Str('the key id it names')),
      token_client_id: Opt(Str('the client_id it claims')),
      iss: Opt(Str('the issuer it claims')),
      target: Opt(Str('the resource asked about')),
      reported_time: Opt(Str("the service's own time")),
    },
    "a service's SDK verifier refused a token; `reason` is the SDK's VerifyError code",
  ),
  'client.locked': Obj(
    { alert_id: Int('the alert that locked it'), until: Str('RFC 3339') },
    'a configured response locked a client',
  ),
  'client.unlocked': Obj({}, 'an administrator lifted a lock'),
  'alert.raised': Obj(
    {
      alert_id: Int('the alert'),
      severity: Str('low, medium or high'),
      summary: Str('what happened'),
      first_seq: Int('the first audit event it is based on'),
      last_seq: Int('the last one'),
      count: Int('how many'),
    },
    'a detector raised an alert; `reason` is the detector',
  ),
  'alert.acknowledged': Obj(
    { alert_id: Int('the alert'), detector: Str('the detector that raised it') },
    'an operator acknowledged an alert; `actor` is who',
  ),
  'console.signed_in': Obj(
    {
      sid: Str('the console session'),
      method: Type.Enum(['admin_token', 'sign_in_link', 'user'], {
        description: 'how: the admin bearer, a one-time link, or a user with the console role signed in at the IdP',
      }),
      expires_at: Int('when the session ends at the latest (epoch seconds)'),
    },
    'someone signed in to the admin console',
  ),
  'console.signed_out': Obj({ sid: Str('the console session') }, 'a console session was ended by signing out'),
  'console.link_issued': Obj(
    { expires_at: Int('until when the link can be used once (epoch seconds)') },
    'a one-time console sign-in link was made (`latchkey console link`, the demo)',
  ),
  'alert.delivery_failed': Obj(
    { alert_id: Int('the alert'), url: Str('the webhook') },
    'a webhook never accepted an alert; `reason` is the last error',
  ),
  'audit.pruned': Obj(
    {
      through_seq: Int('the last event deleted'),
      hash: Type.Union([Type.String(), Type.Null()], { description: 'its hash: the anchor of what remains' }),
      before: Str('the cutoff (RFC 3339)'),
    },
    'retention pruned old events (written before the delete)',
  ),
  'policy.published': Obj(
    {
      version: Int('the new version'),
      previous: Type.Union([Type.Integer(), Type.Null()], { description: 'the version it replaces' }),
      digest: Str('its digest (the ETag)'),
      policies: Changes,
      schema: Changes,
      entities: Type.Object({ added: Type.Integer(), removed: Type.Integer(), changed: Type.Integer() }),
    },
    'a policy bundle version was published (push, entity or role change, rollback)',
  ),
  'certificate.issued': Obj(
    {
      serial: Str('the certificate serial'),
      spiffe_id: Str('the identity it names'),
      not_after: Str('RFC 3339'),
      key_type: Str('EC P-256, Ed25519, RSA ...'),
      requested_other: Opt(
        Type.Array(Type.String(), { description: "identities the CSR asked for that are not the caller's" }),
      ),
    },
    'the workload CA issued a certificate (actor `admin` when the administrator asked)',
  ),
  'ca.rotated': Obj(
    { serial: Str('the new root'), activate_at: Int('when it starts signing') },
    'a new workload CA root was announced',
  ),
  'user.created': UserChange('a user was created'),
  'user.updated': Obj(
    {
      username: Str('the username (the user is `subject`)'),
      roles: Opt(Members),
      groups: Opt(Members),
      changed: Opt(Type.Array(Type.String(), { description: 'other members changed (email, name, attributes)' })),
      tokens_revoked: Type.Boolean({
        description:
          'a role or group was taken away, or the attributes changed: the tokens issued until now were revoked',
      }),
    },
    "a user's roles, groups or profile changed; who did it is the actor",
  ),
  'user.password_set': Obj(
    {
      username: Str('the username (the user is `subject`)'),
      generated: Type.Boolean({ description: 'the IdP generated it (shown once to the administrator)' }),
      must_change: Type.Boolean({ description: 'the next login must choose a new one' }),
    },
    "a user's password was set or reset (never the password); the user's tokens were revoked",
  ),
  'user.disabled': UserChange("a user was disabled; the user's tokens were revoked"),
  'user.enabled': UserChange('a disabled user was enabled'),
  'user.deleted': UserChange("a user was deleted; the user's tokens were revoked"),
  'user.login': Obj(
    {
      username: Str('the username (the user is `subject`)'),
      method: Str(
        'how they authenticated: password, password+totp, password+recovery_code, or session (single sign-on)',
      ),
      known_device: Type.Boolean({ description: 'the browser had logged in as this user before' }),
      password_changed: Opt(Type.Boolean({ description: 'they set a new password, as they had to' })),
    },
    'a user logged in at /authorize for the client `client_id`',
  ),
  'user.login_failed': Obj(
    {
      username: Str(
        "the user's username — or, for a name no user has, `?` and a keyed hash of it (the same name, the same value; never the name, which may be a password typed in the wrong field)",
      ),
      method: Str('password; or password+code (TOTP or recovery code) or password+passkey at the second step'),
      known_device: Type.Boolean({ description: 'the browser had logged in as this user before' }),
      lock: Opt(Str('locked: which count held the attempt back (user_source, account, source)')),
      retry_after: Opt(Int('locked: seconds until the next attempt')),
    },
    'a login failed; `reason` says why (bad_password, unknown_user, user_disabled, no_password, locked, weak_new_password, second_factor_failed)',
  ),
  'token.refresh_reused': Obj(
    {
      family: Str('the refresh token family (one sign-in and its rotations)'),
      revoked_tokens: Int('access tokens of the family revoked with it'),
      rotated_seconds_ago: Int('how long ago the reused token had been rotated'),
    },
    'a rotated refresh token was presented again: someone else holds a copy, so the family and its access tokens were revoked (RFC 9700 §4.14.2); `subject` is the user',
  ),
  'user.logout': Obj(
    {
      sid: Str('the sign-in session that ended'),
      families: Int('refresh token families (sign-ins at clients) revoked with it'),
      tokens: Int('access tokens revoked with it'),
    },
    'a user signed out (RP-initiated logout at /end_session); `client_id` is the client that asked',
  ),
  'user.second_factor_enrolled': Obj(
    {
      username: Str('the username (the user is `subject`)'),
      factor: Str('totp or passkey'),
      recovery_codes: Int('recovery codes issued (shown once)'),
    },
    'a user enrolled a second factor at sign-in',
  ),
  'user.second_factor_reset': UserChange(
    "an administrator removed a user's second factor and recovery codes; the user's tokens were revoked",
  ),
  'user.consent_granted': Obj(
    {
      scope: Type.Union([Type.String(), Type.Null()], { description: 'the scopes the user agreed to' }),
      resource: Type.Array(Type.String(), { description: 'the resources (RFC 8707) the user agreed to' }),
    },
    'a user agreed that the third-party client `client_id` may have what it asked for (remembered for the next sign-in)',
  ),
  'user.consent_denied': Obj(
    {
      scope: Type.Union([Type.String(), Type.Null()], { description: 'the scopes the client asked for' }),
      resource: Type.Array(Type.String(), { description: 'the resources it asked for' }),
    },
    'a user refused the third-party client `client_id` what it asked for; it was answered access_denied',
  ),
  'user.consent_revoked': Obj(
    {
      families: Int("the client's refresh token families (sign-ins) for the user revoked with it"),
      tokens: Int("access tokens the client's codes gave that were revoked (a family's own are revoked with it)"),
    },
    "a user's consent to the client `client_id` was withdrawn; the client's tokens for the user were revoked",
  ),
  'token.exchanged': Obj(
    {
      subject_token_type: Str('what was exchanged (an RFC 8693 token type URN)'),
      requested_token_type: Str('what was issued: an access token or a Transaction Token (txn_token)'),
      chain: Type.Array(Type.String(), {
        description:
          'the services acting for the subject, newest first (the issued `act`; for a Txn-Token, its requester first)',
      }),
      txn: Opt(Str('a Transaction Token: its transaction id (the same through the whole call chain)')),
      jti: Str('the issued token id'),
      origin_jti: Opt(Str('the token the chain started from')),
      aud: Type.Union([Type.String(), Type.Array(Type.String())], { description: 'its audience(s)' }),
      scope: Type.Union([Type.String(), Type.Null()], { description: 'its scope' }),
      exp: Int('when it expires (epoch seconds)'),
      policies: Type.Array(Type.String(), { description: 'the Cedar policies that allowed it' }),
      auth_method: Str('how the acting client authenticated'),
    },
    'a token exchange (RFC 8693) issued a token for `subject` to the acting client `client_id`',
  ),
  'ssf.stream_created': SsfStream('a Shared Signals receiver (`client_id`) created a stream'),
  'ssf.stream_updated': SsfStream('a receiver changed its stream’s configuration or status'),
  'ssf.stream_deleted': SsfStream('a receiver deleted its stream and the SETs waiting in it'),
  'ssf.delivery_failed': Obj(
    {
      stream_id: Str('the stream'),
      jti: Str('the SET'),
      event_type: Opt(Str('its event type URI')),
      error: Str('what the receiver answered (RFC 8935 `err` and description), or why it could not be reached'),
      attempts: Int('attempts made'),
      refused: Type.Boolean({ description: 'the receiver refused the SET itself (not retried)' }),
      paused: Type.Boolean({ description: 'retries ran out: the stream was paused, its SETs kept' }),
    },
    'a SET was not delivered to the receiver `client_id`; `reason` is the RFC 8935 error code or `unreachable`',
  ),
  'ssf.events_dropped': Obj(
    {
      stream_id: Str('the stream'),
      event_type: Str('the event type URI'),
      count: Int('SETs not queued'),
      queued: Int('SETs waiting in the stream (its bound)'),
    },
    'a stream holds as many SETs as it may (`ssfMaxQueue`): newer ones were not queued',
  ),
  'federation.issuer_saved': Obj(
    { name: Str('its name'), kind: Str('oidc or spiffe'), issuer: Str('its `iss`, or the SPIFFE trust domain') },
    'an administrator trusted an issuer of workload tokens, or changed it',
  ),
  'federation.issuer_deleted': Obj({ name: Str('its name') }, 'an issuer is no longer trusted; its rules went with it'),
  'federation.rule_saved': Obj(
    {
      name: Str('the rule'),
      issuer: Str('the trusted issuer it applies to'),
      client_id: Str('the client its tokens map to'),
      subject: Str('the `sub` (or pattern) it requires'),
    },
    "an administrator mapped an issuer's tokens to a client, or changed the mapping",
  ),
  'federation.rule_deleted': Obj({ name: Str('the rule') }, 'a federation rule was removed'),
} satisfies Record<(typeof AUDIT_EVENT_TYPES)[number], TSchema>;

/** Members any event has when it stands for repeated failures (the failure aggregator). */
export interface AggregatedDetail {
  aggregated?: true;
  count?: number;
  first_time?: string;
  last_time?: string;
}

type Types = (typeof AUDIT_EVENT_TYPES)[number];

/** The `detail` of each event type. */
export type AuditEventDetails = { [T in Types]: Static<(typeof AUDIT_EVENT_DETAILS)[T]> & AggregatedDetail };

/** An audit event of one type, its detail typed. */
export type AuditEventOf<T extends Types> = Omit<AuditEvent, 'type' | 'detail'> & {
  type: T;
  detail?: AuditEventDetails[T];
};

/** Narrows an event to its type, so its `detail` reads typed. */
export const isAuditEvent = <T extends Types, E extends AuditEvent>(e: E, type: T): e is E & AuditEventOf<T> =>
  e.type === type;
