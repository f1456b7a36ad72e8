import type { PolicyEntity } from '@latchkey/protocol';
import { CedarTrap, CompiledBundle, withCedar } from '@latchkey/policy';
import type { ClientRecord, PolicyStore, UserRecord } from '../storage/ports.ts';

/** The reserved namespace of the IdP's own decisions. */
export const RESERVED_NAMESPACE = 'Latchkey';

/**
 * Its schema, added to every bundle: which client — and which user, through which client — may
 * have a token for which audience. Clients and users alike are `in` their roles
 * (`Latchkey::RoleGroup::"…"`: the principals holding that role) and carry them as the attribute
 * `roles`; users (`Latchkey::EndUser::"<sub>"`) are `in` their groups too
 * (`Latchkey::UserGroup::"…"`). (`User`, `Role` and `Group` would shadow the types services
 * declare outside any namespace, which Cedar refuses.) Administrators may group clients (`Latchkey::Client::"x" in Latchkey::ClientGroup::"prod"`),
 * users and audiences in the entity data. A user's request names its client in `context.client_id`.
 */
export const RESERVED_SCHEMA = `namespace Latchkey {
  entity ClientGroup;
  entity AudienceGroup;
  entity RoleGroup;
  entity UserGroup;
  entity Client in [ClientGroup, RoleGroup] { roles?: Set<String> };
  entity EndUser in [RoleGroup, UserGroup] { roles?: Set<String>, groups?: Set<String> };
  entity Audience in [AudienceGroup];
  action request_token appliesTo { principal: [Client, EndUser], resource: Audience, context: { client_id?: String } };
  action exchange appliesTo {
    principal: Client,
    resource: Audience,
    context: {
      subject: String,
      subject_kind: String,
      subject_roles: Set<String>,
      subject_groups: Set<String>,
      subject_audiences: Set<String>,
      subject_client: String,
      actors: Set<String>,
      caller: String,
      depth: Long,
      requested_token_type: String,
    },
  };
}
`;
export const RESERVED_SCHEMA_FRAGMENT = 'latchkey.cedarschema';

/** How the validator treats the reserved namespace (see `validateBundle`). */
export const RESERVED = { fragment: RESERVED_SCHEMA_FRAGMENT, namespace: RESERVED_NAMESPACE } as const;

/** The bundle with the reserved schema fragment in place (whatever a push put under its name). */
export function withReservedSchema<T extends { schema: Record<string, string> }>(content: T): T {
  return { ...content, schema: { ...content.schema, [RESERVED_SCHEMA_FRAGMENT]: RESERVED_SCHEMA } };
}

const ACTION = { type: `${RESERVED_NAMESPACE}::Action`, id: 'request_token' };
const EXCHANGE = { type: `${RESERVED_NAMESPACE}::Action`, id: 'exchange' };

/** What a token exchange asks the policy about: the subject, the chain so far, what is wanted. */
export interface ExchangeQuestion {
  /** The subject's `sub`, and whether it is a user or a service. */
  subject: {
    sub: string;
    kind: 'user' | 'service';
    roles: string[];
    groups: string[];
    audiences: string[];
    client: string;
  };
  /** Services that acted before this one, newest first. */
  actors: string[];
  requestedTokenType: 'access_token' | 'txn_token';
}
const q = (s: string): string => JSON.stringify(s);

/**
 * The IdP's own authorization question, decided with the same Cedar policies services use: may
 * this client have a token for this audience? The client's registered `audiences` are permits
 * (`permit(principal == Latchkey::Client::"<id>", action == Latchkey::Action::"request_token",
 * resource == Latchkey::Audience::"<aud>")`); the active bundle's policies whose action scope names
 * `Latchkey::Action` are added — a `forbid` there overrides registrations, a `permit` grants more.
 * Without such policies this is the registration check alone (no evaluation on the token path).
 */
export class TokenPolicy {
  private version = -1;
  /** The bundle's Latchkey policies and entities, with its whole schema; undefined when it has none. */
  private compiled: CompiledBundle | undefined;
  /** Why the newest bundle could not be taken (decisions fail closed meanwhile), or null. */
  private failure: string | null = null;
  private readonly source: Pick<PolicyStore, 'getPolicyVersion' | 'listPolicyVersions'>;

  constructor(source: Pick<PolicyStore, 'getPolicyVersion' | 'listPolicyVersions'>) {
    this.source = source;
  }

  /**
   * Whether the newest bundle is in force. When it could not be taken (the policy engine failed on
   * it), every decision is a deny until it can — issuing tokens a newer `forbid` may deny would
   * fail open — and readiness says so.
   */
  get health(): { ok: true; version: number } | { ok: false; version: number; error: string } {
    return this.failure === null
      ? { ok: true, version: this.version }
      : { ok: false, version: this.version, error: this.failure };
  }

  /** Takes the active bundle's Latchkey policies (at start and after every feed append). */
  async reload(): Promise<void> {
    // Most feed appends are revocations: look at the newest version number before loading a bundle.
    const newest = (await this.source.listPolicyVersions(1))[0];
    if (!newest || (newest.version === this.version && this.failure === null)) return;
    const b = await this.source.getPolicyVersion(newest.version);
    if (!b) return;
    try {
      this.take(b);
      this.failure = null;
    } catch (err) {
      if (!(err instanceof CedarTrap)) throw err;
      this.failure = `policy version ${b.version}: ${err.message}`;
      throw err;
    }
  }

  private take(b: {
    version: number;
    schema: Record<string, string>;
    policies: Record<string, string>;
    entities: PolicyEntity[];
  }): void {
    const policies: Record<string, string> = {};
    for (const [id, text] of Object.entries(b.policies)) {
      const j = withCedar((c) => c.policyToJson(text));
      if (j.type !== 'success') continue;
      const a = j.json.action as { op: string; entity?: { type: string }; entities?: { type: string }[] };
      const named = a.entities ?? (a.entity ? [a.entity] : []);
      if (named.some((u) => u.type === ACTION.type)) policies[id] = text;
    }
    // The same engine as the SDK's: action groups and request types come from the schema — with
    // the reserved fragment as this IdP writes it (a version published before it changed has the old one).
    this.compiled =
      Object.keys(policies).length === 0
        ? undefined
        : CompiledBundle.compile({
            schema: withReservedSchema(b).schema,
            policies,
            entities: b.entities.filter((e) => e.uid.type.startsWith(`${RESERVED_NAMESPACE}::`)),
          });
    this.version = b.version;
  }

  /** Whether the client may have a token for `audience`. */
  allows(client: ClientRecord, audience: string): boolean {
    if (this.failure !== null) return false;
    const registered = client.metadata.audiences.includes(audience);
    const c = this.compiled;
    if (!c) return registered;
    const roles = client.metadata.roles ?? [];
    const r = this.decide(c, 'Client', client.clientId, { roles }, roles.map(role), audience, {});
    // The registration is a permit of its own: a forbid that applies overrides it, a permit grants
    // beyond it. A request Cedar refused as a whole (schema, limits, an engine failure) is refused:
    // fail closed.
    if (r.refused || (r.decision === 'deny' && r.reasons.length > 0)) return false;
    return registered || r.decision === 'allow';
  }

  /**
   * Whether `user` may have a token for `audience` through `client` (authorization code and refresh
   * grants): the client must be allowed it, and no forbid may apply to the user — their roles and
   * groups are parents, as in services. A permit for a user grants nothing the client may not have:
   * a user's rights only narrow the client's.
   */
  allowsUser(client: ClientRecord, user: Pick<UserRecord, 'sub' | 'roles' | 'groups'>, audience: string): boolean {
    if (!this.allows(client, audience)) return false;
    const c = this.compiled;
    return !c || this.userForbidden(c, client, user, audience) === undefined;
  }

  /**
   * The forbid that applies to a user's token for `audience` through `client` — the policies that
   * decided it (empty when Cedar refused the request as a whole: fail closed) — or undefined.
   */
  private userForbidden(
    c: CompiledBundle,
    client: ClientRecord,
    user: Pick<UserRecord, 'sub' | 'roles' | 'groups'>,
    audience: string,
  ): string[] | undefined {
    const parents = [
      ...user.roles.map(role),
      ...user.groups.map((g) => ({ type: `${RESERVED_NAMESPACE}::UserGroup`, id: g })),
    ];
    const r = this.decide(c, 'EndUser', user.sub, { roles: user.roles, groups: user.groups }, parents, audience, {
      client_id: client.clientId,
    });
    return r.refused || (r.decision === 'deny' && r.reasons.length > 0) ? r.reasons : undefined;
  }

  /**
   * RFC 8693: may `actor` act for the subject toward `audience`? Only a Cedar permit of
   * `Latchkey::Action::"exchange"` says yes — no registration grants delegation — and a forbid
   * overrides it; for a user subject, no `request_token` forbid may apply to the user at that
   * audience either (a user's rights only narrow). `reasons` names the policies that decided.
   */
  allowsExchange(actor: ClientRecord, audience: string, q: ExchangeQuestion): { allowed: boolean; reasons: string[] } {
    if (this.failure !== null) return { allowed: false, reasons: [] };
    const c = this.compiled;
    if (!c) return { allowed: false, reasons: [] };
    const roles = actor.metadata.roles ?? [];
    const s = q.subject;
    const r = this.decide(
      c,
      'Client',
      actor.clientId,
      { roles },
      roles.map(role),
      audience,
      {
        subject: s.sub,
        subject_kind: s.kind,
        subject_roles: s.roles,
        subject_groups: s.groups,
        subject_audiences: s.audiences,
        subject_client: s.client,
        actors: q.actors,
        caller: q.actors[0] ?? '',
        depth: q.actors.length,
        requested_token_type: q.requestedTokenType,
      },
      EXCHANGE,
    );
    if (r.refused || r.decision !== 'allow') return { allowed: false, reasons: r.reasons };
    const forbidden = s.kind === 'user' ? this.userForbidden(c, actor, s, audience) : undefined;
    return forbidden ? { allowed: false, reasons: forbidden } : { allowed: true, reasons: r.reasons };
  }

  private decide(
    c: CompiledBundle,
    type: 'Client' | 'EndUser',
    id: string,
    attrs: Record<string, unknown>,
    given: { type: string; id: string }[],
    audience: string,
    context: Record<string, unknown>,
    action: { type: string; id: string } = ACTION,
  ) {
    const stored = c.store.get(`${RESERVED_NAMESPACE}::${type}::${q(id)}`);
    const parents = [...(stored?.parents ?? [])];
    for (const p of given) if (!parents.some((x) => x.type === p.type && x.id === p.id)) parents.push(p);
    const principal: PolicyEntity = { uid: { type: `${RESERVED_NAMESPACE}::${type}`, id }, attrs, parents };
    const storedAud = c.store.get(`${RESERVED_NAMESPACE}::Audience::${q(audience)}`);
    const resource: PolicyEntity = {
      uid: { type: `${RESERVED_NAMESPACE}::Audience`, id: audience },
      attrs: {},
      parents: storedAud?.parents ?? [],
    };
    return c.isAuthorized({ principal, action, resource, context });
  }
}

const role = (name: string) => ({ type: `${RESERVED_NAMESPACE}::RoleGroup`, id: name });
