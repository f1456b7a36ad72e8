import {
  type AccessTokenClaims,
  actorChain,
  type Clock,
  type PolicyBundle,
  type PolicyEntity,
  systemClock,
  type TransactionTokenClaims,
} from '@latchkey/protocol';
import type { AuditQueue } from '../audit/audit_queue.ts';
import { connectionOf, type IdpConnection } from '../connection/idp_connection.ts';
import { CedarTrap, CompiledBundle } from '@latchkey/policy';
import { EntityIndex, uidKey, type Uid } from './entity_slice.ts';
import { PolicySource } from './policy_source.ts';
import { tracer, tracing } from '../tracing.ts';

/** Options of {@link createAuthorizer}. Durations in seconds. */
export interface AuthorizerOptions {
  /** Where "now" comes from (epoch milliseconds); the system clock by default. Tests pass a fake one. */
  clock?: Clock;
  /** The IdP (or give `connection`). */
  issuer?: string;
  /** The connection to the IdP this service's components share ({@link createIdpConnection}). */
  connection?: IdpConnection;
  /** Client credentials of this service (Basic) — or `token`, a function giving one of its access tokens. */
  credentials?: { clientId: string; clientSecret: string };
  token?: () => Promise<string>;
  fetch?: typeof fetch;
  /**
   * Every decision is reported through this queue ({@link createAuditQueue}): denies and decisions
   * of `@sensitive` policies each as an event, allows each while under the queue's `allowRate`
   * and counted per interval past it.
   */
  audit?: Pick<AuditQueue, 'record'>;
  /** Seconds between ETag polls of the bundle, under the push stream (default 30). */
  pollInterval?: number;
  /** Entity type of principals from service tokens (`sub` = `client_id`) and from user tokens (default `Service`, `User`). */
  servicePrincipalType?: string;
  userPrincipalType?: string;
  /** Entity type of the token's `roles` (default `Role`). */
  roleType?: string;
  /** Entity type of a user token's `groups` (RFC 9068 §2.2.3.1; default `Group`). */
  groupType?: string;
  /** Decisions remembered per bundle version for repeated identical requests (default 10,000; 0 turns it off). */
  cacheSize?: number;
  /**
   * Puts the delegation chain and the transaction into every decision's context, so policies can
   * say "billing may be called only through orders": `actors` (the services in the token's `act`,
   * a Set), `caller` (the newest of them, or ""), `depth` (how many), and — when the request has a
   * Transaction Token — `txn` (`{ id, sub, scope, requester, tctx? }`). Declare them in the
   * action's context in your schema. Off by default (a schema without them would refuse them).
   */
  delegationContext?: boolean;
}

/** A principal, resource or action: `{ type, id }`, or Cedar's text form `Type::"id"`. */
export type EntityRef = Uid | string;

/** What {@link Authorizer.authorize} is asked. */
export interface AuthorizeRequest {
  /**
   * The verified token's claims (principal from `sub`/`client_id`, parents from `roles` and a
   * user's `groups`, attributes from a user's `attributes`), or an entity.
   */
  principal: AccessTokenClaims | EntityRef;
  /** e.g. `Orders::Action::"read"`. */
  action: EntityRef;
  /** The resource, with the attributes and parents the service knows (they win over the bundle's). */
  resource: EntityRef | { type: string; id: string; attrs?: Record<string, unknown>; parents?: EntityRef[] };
  context?: Record<string, unknown>;
  /** The request's verified Transaction Token (with `delegationContext`, it is `context.txn`). */
  transaction?: TransactionTokenClaims;
}

/** What {@link Authorizer.authorize} answers. */
export interface AuthorizeResult {
  decision: 'allow' | 'deny';
  /** Ids of the policies that decided (the permits for allow, the forbids — if any — for deny). */
  reasons: string[];
  /** Policies that failed to evaluate (they are skipped, as Cedar specifies). */
  errors: string[];
  /** The bundle version that decided. */
  version: number;
}

export interface AuthorizerHealth {
  version: number;
  digest: string;
  entities: number;
  /** Seconds since the IdP last answered. */
  ageSeconds: number;
  cachedDecisions: number;
  /** Decisions since start. */
  decisions: { allow: number; deny: number };
  /**
   * The policy engine: `broken` when cedar-wasm failed on the newest bundle (every decision then
   * denies, fail closed, until a newer version arrives); `traps` counts its failures on this version.
   */
  engine: { broken: boolean; traps: number; error: string | null };
}

export interface Authorizer {
  /** Decides in-process, from the last good bundle: never a network call. */
  authorize(request: AuthorizeRequest): AuthorizeResult;
  health(): AuthorizerHealth;
  close(): void;
}

/**
 * The codes of {@link AuthorizerError}: `policy_unavailable` — no bundle could be loaded at start.
 *
 * @example
 * ```ts
 * const alerts = Object.fromEntries(AUTHORIZER_ERROR_CODES.map((c) => [c, 0]));
 * ```
 */
export const AUTHORIZER_ERROR_CODES = ['policy_unavailable'] as const;

/**
 * Thrown by {@link createAuthorizer} when no bundle could be loaded (the IdP unreachable at start,
 * or nothing published yet). Once started, an authorizer keeps its last good bundle instead.
 *
 * @example
 * ```ts
 * try {
 *   await createAuthorizer({ issuer, credentials });
 * } catch (err) {
 *   if (err instanceof AuthorizerError && err.code === 'policy_unavailable') process.exit(1);
 * }
 * ```
 */
export class AuthorizerError extends Error {
  readonly code: (typeof AUTHORIZER_ERROR_CODES)[number];

  constructor(code: (typeof AUTHORIZER_ERROR_CODES)[number], message: string) {
    super(message);
    this.code = code;
    this.name = 'AuthorizerError';
  }
}

const parsedRefs = new Map<string, Uid>();
const parseRef = (r: EntityRef): Uid => {
  if (typeof r !== 'string') return { type: r.type, id: r.id };
  const hit = parsedRefs.get(r);
  if (hit) return hit;
  const m = /^(.+)::"((?:[^"\\]|\\.)*)"$/.exec(r);
  if (!m) throw new TypeError(`${r}: expected Type::"id"`);
  const uid = { type: m[1]!, id: JSON.parse(`"${m[2]}"`) as string };
  // Actions and hot principals repeat: remember a bounded number of parses.
  if (parsedRefs.size >= 10_000) parsedRefs.delete(parsedRefs.keys().next().value as string);
  parsedRefs.set(r, uid);
  return uid;
};

const isClaims = (p: AuthorizeRequest['principal']): p is AccessTokenClaims =>
  typeof p === 'object' && 'sub' in p && 'client_id' in p;

interface Loaded {
  bundle: PolicyBundle;
  /** Undefined when cedar-wasm failed on the bundle: every decision denies (fail closed). */
  compiled: CompiledBundle | undefined;
  error: string | null;
  index: EntityIndex | undefined;
  /** Stored entities the policies name literally (`Role::"admin".level`): always part of the slice. */
  named: PolicyEntity[];
}

/** Every entity uid a policy's JSON form names. */
function namedUids(v: unknown, into: Map<string, Uid>): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) namedUids(x, into);
    return;
  }
  const o = v as Record<string, unknown>;
  for (const k of ['__entity', 'entity']) {
    const u = o[k] as Uid | undefined;
    if (u && typeof u === 'object' && typeof u.type === 'string' && typeof u.id === 'string') into.set(uidKey(u), u);
  }
  if (Array.isArray(o.entities)) for (const u of o.entities as Uid[]) into.set(uidKey(u), u);
  for (const x of Object.values(o)) namedUids(x, into);
}

/**
 * Creates an authorizer that evaluates the IdP's Cedar bundle in-process. The bundle arrives by
 * push (the `policy` feed stream) with an ETag poll underneath; when the IdP is unreachable the
 * last good bundle keeps deciding (fail-static). Policies are parsed once per version, and Cedar
 * is given only the entity slice the request can reach.
 *
 * @example
 * ```ts
 * import { createAuthorizer } from '@latchkey/sdk/authorize';
 * const authz = await createAuthorizer({ issuer: 'https://idp.internal', credentials: { clientId: 'orders', clientSecret } });
 * const { decision, reasons } = authz.authorize({
 *   principal: claims, // from verifier.verify(token)
 *   action: 'Orders::Action::"read"',
 *   resource: { type: 'Orders::Order', id: '42', attrs: { tenant: 'acme' } },
 * });
 * ```
 */
export async function createAuthorizer(options: AuthorizerOptions): Promise<Authorizer> {
  if (!options.connection && !options.credentials === !options.token)
    throw new TypeError('give a connection, or exactly one of credentials and token');
  const conn = connectionOf(options);
  const clock = options.clock ?? systemClock;
  const serviceType = options.servicePrincipalType ?? 'Service';
  const userType = options.userPrincipalType ?? 'User';
  const roleType = options.roleType ?? 'Role';
  const groupType = options.groupType ?? 'Group';
  const cacheSize = options.cacheSize ?? 10_000;
  let loaded: Loaded | undefined;
  const cache = new Map<string, AuthorizeResult>();

  const install = (bundle: PolicyBundle): void => {
    if (loaded && loaded.bundle.digest === bundle.digest && loaded.compiled) return;
    let compiled: CompiledBundle;
    try {
      compiled = CompiledBundle.compile(bundle);
    } catch (err) {
      if (!(err instanceof CedarTrap)) throw err;
      // A newer bundle exists that cannot be evaluated: deciding with an older one could allow
      // what it forbids. Deny everything until a version that works arrives.
      loaded = { bundle, compiled: undefined, error: err.message, index: undefined, named: [] };
      cache.clear();
      return;
    }
    const index = new EntityIndex(compiled.store);
    const named = new Map<string, Uid>();
    namedUids(compiled.json ?? [], named);
    loaded = {
      bundle,
      compiled,
      error: null,
      index,
      named: [...named.values()].map((u) => index.get(u)).filter((e): e is PolicyEntity => e !== undefined),
    };
    cache.clear();
  };

  const source = new PolicySource({
    connection: conn,
    pollInterval: options.pollInterval ?? 30,
    onBundle: install,
    clock,
    onError: () => undefined, // fail-static: keep deciding with the last good bundle; health() shows the age
  });
  try {
    await source.start();
  } catch (err) {
    source.close();
    throw new AuthorizerError('policy_unavailable', `no policy bundle could be loaded: ${(err as Error).message}`);
  }

  const principalEntity = (p: AuthorizeRequest['principal'], index: EntityIndex | undefined): PolicyEntity => {
    let uid: Uid;
    let roles: Uid[] = [];
    let carried: Record<string, unknown> | undefined;
    if (isClaims(p)) {
      const user = p.sub !== p.client_id;
      uid = { type: user ? userType : serviceType, id: p.sub };
      // A user's attributes the IdP put in the token (the client's `user_attributes`) are the
      // principal's attributes, over what the bundle says of them: they are as fresh as the token.
      if (user && p.attributes && typeof p.attributes === 'object' && !Array.isArray(p.attributes))
        carried = p.attributes;
      const names = (v: unknown) => (Array.isArray(v) ? v : []).filter((r): r is string => typeof r === 'string');
      // RFC 9068 §2.2.3.1: a user's roles and groups are parents, as a service's roles are.
      roles = [
        ...names(p.roles).map((r) => ({ type: roleType, id: r })),
        ...names(p.groups).map((g) => ({ type: groupType, id: g })),
      ];
    } else uid = parseRef(p);
    const known = index?.get(uid);
    const parents = [...(known?.parents ?? [])];
    for (const r of roles) if (!parents.some((x) => uidKey(x) === uidKey(r))) parents.push(r);
    return { uid, attrs: carried ? { ...(known?.attrs ?? {}), ...carried } : (known?.attrs ?? {}), parents };
  };

  /** The request's context with the delegation chain and the transaction (what the caller gave wins). */
  const delegation = (request: AuthorizeRequest): Record<string, unknown> => {
    const chain = isClaims(request.principal) ? actorChain(request.principal) : [];
    const t = request.transaction;
    return {
      actors: chain,
      caller: chain[0] ?? '',
      depth: chain.length,
      ...(t
        ? {
            txn: {
              id: t.txn,
              sub: t.sub,
              scope: t.scope,
              requester: t.req_wl,
              ...(t.tctx ? { tctx: t.tctx } : {}),
            },
          }
        : {}),
      ...request.context,
    };
  };

  const resourceEntity = (r: AuthorizeRequest['resource'], index: EntityIndex | undefined): PolicyEntity => {
    const given = typeof r === 'string' ? { ...parseRef(r) } : r;
    const uid = { type: given.type, id: given.id };
    const known = index?.get(uid);
    const extra =
      'attrs' in given || 'parents' in given
        ? (given as { attrs?: Record<string, unknown>; parents?: EntityRef[] })
        : {};
    return {
      uid,
      attrs: { ...(known?.attrs ?? {}), ...(extra.attrs ?? {}) },
      parents: extra.parents ? extra.parents.map(parseRef) : (known?.parents ?? []),
    };
  };

  const decide = (request: AuthorizeRequest): AuthorizeResult => {
    const l = loaded!;
    const principal = principalEntity(request.principal, l.index);
    const resource = resourceEntity(request.resource, l.index);
    const action = parseRef(request.action);
    const context = options.delegationContext ? delegation(request) : (request.context ?? {});
    const key =
      cacheSize > 0
        ? JSON.stringify([
            uidKey(principal.uid),
            principal.parents,
            // Attributes a token carries differ between tokens of one user; the bundle's do not.
            isClaims(request.principal) && request.principal.attributes ? principal.attrs : 0,
            uidKey(action),
            resource,
            context,
          ])
        : '';
    let result = cacheSize > 0 ? cache.get(key) : undefined;
    if (!result) {
      const c = l.compiled;
      const d = c
        ? c.isAuthorized({
            principal,
            action,
            resource,
            context,
            entities: () => l.index!.slice([principal, resource, ...l.named]),
          })
        : {
            decision: 'deny' as const,
            reasons: [],
            errors: [`policy version ${l.bundle.version} cannot be evaluated: ${l.error}`],
          };
      result = { decision: d.decision, reasons: d.reasons, errors: d.errors, version: l.bundle.version };
    }
    if (cacheSize > 0 && !cache.has(key)) {
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value as string);
      cache.set(key, result);
    }
    options.audit?.record({
      type: 'authz.decision',
      outcome: result.decision === 'allow' ? 'success' : 'failure',
      actor: `${principal.uid.type}::${JSON.stringify(principal.uid.id)}`,
      target: `${resource.uid.type}::${JSON.stringify(resource.uid.id)}`,
      ...(isClaims(request.principal) ? { subject: request.principal.sub } : {}),
      reason:
        result.reasons.length > 0 ? result.reasons.join(',') : result.decision === 'deny' ? 'no permit' : 'permit',
      detail: {
        action: `${action.type}::${JSON.stringify(action.id)}`,
        policy_version: result.version,
        policies: result.reasons,
        // Decided by a policy annotated @sensitive: always its own audit event, never counted.
        ...(l.compiled && result.reasons.some((r) => l.compiled!.sensitive.has(r)) ? { sensitive: true } : {}),
        ...(result.errors.length > 0 ? { errors: result.errors.slice(0, 5) } : {}),
        // One user request, traced across services in the audit trail (`latchkey audit search --txn`).
        ...(request.transaction ? { txn: request.transaction.txn } : {}),
        ...(isClaims(request.principal) && request.principal.act ? { chain: actorChain(request.principal) } : {}),
      },
    });
    return result;
  };

  const decisions = { allow: 0, deny: 0 };
  return {
    authorize(request) {
      const span = tracing() ? tracer.startSpan('latchkey.authorize') : undefined;
      try {
        const result = decide(request);
        decisions[result.decision]++;
        if (span?.isRecording())
          span.setAttributes({
            'latchkey.decision': result.decision,
            'latchkey.policy_version': result.version ?? -1,
            'latchkey.policies': result.reasons,
          });
        return result;
      } finally {
        span?.end();
      }
    },
    health() {
      const l = loaded!;
      const engine = { broken: !l.compiled || l.compiled.broken, traps: l.compiled?.trapCount ?? 0, error: l.error };
      return {
        version: l.bundle.version,
        digest: l.bundle.digest,
        entities: l.index?.size ?? 0,
        ageSeconds: Math.round((clock.now() - source.lastContact) / 1000),
        cachedDecisions: cache.size,
        decisions: { ...decisions },
        engine,
      };
    },
    close() {
      source.close();
    },
  };
}
