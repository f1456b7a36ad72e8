import type { PolicyEntity } from '@latchkey/protocol';
import { CedarTrap, CompiledBundle, withCedar } from '@latchkey/policy';
import type { ClientRecord, PolicyStore } from '../storage/ports.ts';

/** The reserved namespace of the IdP's own decisions. */
export const RESERVED_NAMESPACE = 'Latchkey';

/**
 * Its schema, added to every bundle: which client may request a token for which audience. Clients
 * carry their registered `roles`; administrators may group clients (`Latchkey::Client::"x" in
 * Latchkey::ClientGroup::"prod"`) and audiences in the entity data.
 */
export const RESERVED_SCHEMA = `namespace Latchkey {
  entity ClientGroup;
  entity AudienceGroup;
  entity Client in [ClientGroup] { roles?: Set<String> };
  entity Audience in [AudienceGroup];
  action request_token appliesTo { principal: Client, resource: Audience };
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
    // The same engine as the SDK's: action groups and request types come from the schema.
    this.compiled =
      Object.keys(policies).length === 0
        ? undefined
        : CompiledBundle.compile({
            schema: b.schema,
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
    const stored = c.store.get(`${RESERVED_NAMESPACE}::Client::${q(client.clientId)}`);
    const principal: PolicyEntity = {
      uid: { type: `${RESERVED_NAMESPACE}::Client`, id: client.clientId },
      attrs: { roles: client.metadata.roles ?? [] },
      parents: stored?.parents ?? [],
    };
    const storedAud = c.store.get(`${RESERVED_NAMESPACE}::Audience::${q(audience)}`);
    const resource: PolicyEntity = {
      uid: { type: `${RESERVED_NAMESPACE}::Audience`, id: audience },
      attrs: {},
      parents: storedAud?.parents ?? [],
    };
    const r = c.isAuthorized({ principal, action: ACTION, resource, context: {} });
    // The registration is a permit of its own: a forbid that applies overrides it, a permit grants
    // beyond it. A request Cedar refused as a whole (schema, limits, an engine failure) is refused:
    // fail closed.
    if (r.refused || (r.decision === 'deny' && r.reasons.length > 0)) return false;
    return registered || r.decision === 'allow';
  }
}
