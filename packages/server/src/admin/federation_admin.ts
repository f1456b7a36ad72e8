import { actorOf } from './admin_token.ts';
import { CLIENT_ASSERTION_ALGORITHMS, type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { LatchkeyError, notFound, validationFailed, conflict } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import type { FederatedAssertions } from '../federation/federated_assertion.ts';
import type { FederationRegistry } from '../federation/federation_registry.ts';
import { OutboundFetch } from '../http/outbound_fetch.ts';
import { adminErrors, AnyObject, Nullable, typed } from '../http/schemas.ts';
import type { ClientStore, FederationIssuerRecord, FederationRuleRecord, FederationStore } from '../storage/ports.ts';

export interface FederationAdminDeps {
  clock: Clock;
  store: FederationStore;
  clients: Pick<ClientStore, 'getClient'>;
  registry: Pick<FederationRegistry, 'reload' | 'all'>;
  assertions: Pick<FederatedAssertions, 'explain'>;
  events: ServerEvents;
  /** `outboundAllow`: addresses allowed although special-purpose, to check a jwks_uri against. */
  outboundAllow: readonly string[];
}

const tags = ['admin: federation'];
const Name = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' });
const DEFAULT_ALGORITHMS = ['RS256', 'ES256', 'ES384', 'PS256', 'EdDSA'];

const IssuerBody = Type.Object(
  {
    kind: Type.Optional(
      Type.Union([Type.Literal('oidc'), Type.Literal('spiffe')], { description: 'oidc (default) or spiffe' }),
    ),
    issuer: Type.String({
      minLength: 1,
      maxLength: 512,
      description:
        'oidc: the exact `iss` of its tokens (an https URL); spiffe: the trust domain (e.g. prod.example.org)',
    }),
    jwks_uri: Type.Optional(Type.String({ maxLength: 2048, description: 'its JWKS, or a SPIFFE bundle endpoint' })),
    discovery: Type.Optional(Type.Boolean({ description: 'oidc: find jwks_uri by OpenID Connect Discovery' })),
    jwks: Type.Optional(Type.Object({ keys: Type.Array(AnyObject, { minItems: 1, maxItems: 50 }) })),
    algorithms: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 12 })),
    allow_http: Type.Optional(Type.Boolean({ description: 'plain http for its URLs (never by default)' })),
    allow_private_addresses: Type.Optional(
      Type.Boolean({
        description: 'its URLs may reach loopback, private or link-local addresses (an in-cluster issuer)',
      }),
    ),
    single_use: Type.Optional(Type.Boolean({ description: 'each token authenticates once (default true)' })),
  },
  { additionalProperties: false },
);
const RuleBody = Type.Object(
  {
    issuer: Name,
    client_id: Type.String({ minLength: 1, maxLength: 255 }),
    subject: Type.String({ minLength: 1, maxLength: 512, description: 'sub exactly, or a pattern with *' }),
    audience: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 512 }))),
    claims: Type.Optional(
      Type.Record(Type.String({ pattern: '^/', maxLength: 256 }), Type.String({ maxLength: 512 }), {
        maxProperties: 20,
      }),
    ),
  },
  { additionalProperties: false },
);

const issuerView = (i: FederationIssuerRecord) => ({
  name: i.name,
  kind: i.kind,
  issuer: i.issuer,
  jwks_uri: i.jwksUri,
  discovery: i.discovery,
  jwks: i.jwks ? { keys: i.jwks.keys.length } : null,
  algorithms: i.algorithms,
  allow_http: i.allowHttp,
  allow_private_addresses: i.allowPrivateAddresses,
  single_use: i.singleUse,
});
const ruleView = (r: FederationRuleRecord) => ({
  name: r.name,
  issuer: r.issuer,
  client_id: r.clientId,
  subject: r.subject,
  audience: r.audience,
  claims: r.claims,
});

/**
 * Federated workload identity, administered: the issuers trusted (OpenID Connect / JWT issuers by
 * `iss`, SPIFFE trust domains by name) and the rules mapping their tokens to clients, and a test of
 * which rule a token matches and why — what `latchkey federation add|list|test` calls.
 */
export function registerFederationAdmin(scope: FastifyInstance, deps: FederationAdminDeps): void {
  const app = typed(scope);
  const stage = (
    type: 'federation.issuer_saved' | 'federation.issuer_deleted' | 'federation.rule_saved' | 'federation.rule_deleted',
    request: FastifyRequest,
    name: string,
    detail: Record<string, string>,
  ) =>
    deps.events.stage(type, {
      actor: actorOf(request),
      subject: `federation:${name}`,
      outcome: 'success',
      request_id: request.id,
      source_ip: request.ip,
      detail: { name, ...detail },
    });

  app.get(
    '/admin/federation',
    { schema: { tags, summary: 'the trusted issuers and the rules', response: { 200: AnyObject, ...adminErrors() } } },
    async () => {
      const { issuers, rules } = deps.registry.all;
      return { issuers: issuers.map(issuerView), rules: rules.map(ruleView) };
    },
  );

  app.put(
    '/admin/federation/issuers/:name',
    {
      schema: {
        tags,
        summary: 'trust an issuer (create or replace)',
        params: Type.Object({ name: Name }),
        body: IssuerBody,
        response: { 200: AnyObject, ...adminErrors(400, 409) },
      },
    },
    async (request) => {
      const b = request.body;
      const kind = b.kind ?? 'oidc';
      const allowHttp = b.allow_http ?? false;
      const allowPrivate = b.allow_private_addresses ?? false;
      const sources = [b.jwks_uri !== undefined, b.discovery === true, b.jwks !== undefined].filter(Boolean).length;
      if (sources !== 1) throw validationFailed('give exactly one of jwks_uri, discovery: true, or jwks');
      if (b.discovery && kind !== 'oidc') throw validationFailed('discovery is for OpenID Connect issuers');
      if (kind === 'spiffe' && !/^[a-z0-9._-]{1,255}$/.test(b.issuer))
        throw validationFailed('a SPIFFE trust domain is lowercase letters, digits, dots, dashes and underscores');
      // The issuer's own policy, as its keys will be fetched with (its URLs checked, one guard, closed once).
      const guard = new OutboundFetch({ allowHttp, allowSpecialAddresses: allowPrivate, allow: deps.outboundAllow });
      try {
        for (const [what, url] of [
          ['issuer', kind === 'oidc' ? b.issuer : undefined],
          ['jwks_uri', b.jwks_uri],
        ] as const) {
          if (url === undefined) continue;
          try {
            guard.checkUrl(url);
          } catch (err) {
            throw validationFailed(`${what} is not allowed: ${(err as Error).message}`);
          }
        }
      } finally {
        await guard.close();
      }
      const algorithms = b.algorithms ?? DEFAULT_ALGORITHMS;
      const bad = algorithms.find((a) => !(CLIENT_ASSERTION_ALGORITHMS as readonly string[]).includes(a));
      if (bad)
        throw validationFailed(
          `algorithm ${bad} is not allowed (asymmetric only: ${CLIENT_ASSERTION_ALGORITHMS.join(', ')})`,
        );
      const now = epochSeconds(deps.clock);
      const existing = deps.registry.all.issuers.find((i) => i.name === request.params.name);
      const record: FederationIssuerRecord = {
        name: request.params.name,
        kind,
        issuer: b.issuer,
        jwksUri: b.jwks_uri ?? null,
        discovery: b.discovery === true,
        jwks: b.jwks ? { keys: b.jwks.keys as Record<string, unknown>[] } : null,
        algorithms,
        allowHttp,
        allowPrivateAddresses: allowPrivate,
        singleUse: b.single_use ?? true,
        createdAt: existing?.createdAt ?? now,
        // The key cache is per version: a change of the issuer fetches its keys afresh.
        updatedAt: Math.max(now, (existing?.updatedAt ?? 0) + 1),
      };
      const event = stage('federation.issuer_saved', request, record.name, { kind, issuer: record.issuer });
      try {
        await deps.store.putFederationIssuer(record, [event]);
      } catch (err) {
        if (err instanceof LatchkeyError && err.code === 'storage_conflict')
          throw conflict(`another trusted issuer already has ${kind} ${b.issuer}`);
        throw err;
      }
      deps.events.committed(event);
      await deps.registry.reload();
      return issuerView(record);
    },
  );

  app.delete(
    '/admin/federation/issuers/:name',
    {
      schema: {
        tags,
        summary: 'stop trusting an issuer (its rules go with it)',
        params: Type.Object({ name: Name }),
        response: { 204: Type.Null(), ...adminErrors(404) },
      },
    },
    async (request, reply) => {
      const event = stage('federation.issuer_deleted', request, request.params.name, {});
      if (!(await deps.store.deleteFederationIssuer(request.params.name, [event]))) throw notFound('no such issuer');
      deps.events.committed(event);
      await deps.registry.reload();
      return reply.code(204).send(null);
    },
  );

  app.put(
    '/admin/federation/rules/:name',
    {
      schema: {
        tags,
        summary: "map an issuer's tokens to a client (create or replace)",
        params: Type.Object({ name: Name }),
        body: RuleBody,
        response: { 200: AnyObject, ...adminErrors(400) },
      },
    },
    async (request) => {
      const b = request.body;
      if (!deps.registry.all.issuers.some((i) => i.name === b.issuer))
        throw validationFailed(`no trusted issuer ${b.issuer}`);
      if (!(await deps.clients.getClient(b.client_id))) throw validationFailed(`no client ${b.client_id}`);
      const existing = deps.registry.all.rules.find((r) => r.name === request.params.name);
      const record: FederationRuleRecord = {
        name: request.params.name,
        issuer: b.issuer,
        clientId: b.client_id,
        subject: b.subject,
        audience: b.audience ?? null,
        claims: b.claims ?? {},
        createdAt: existing?.createdAt ?? epochSeconds(deps.clock),
      };
      const event = stage('federation.rule_saved', request, record.name, {
        issuer: record.issuer,
        client_id: record.clientId,
        subject: record.subject,
      });
      await deps.store.putFederationRule(record, [event]);
      deps.events.committed(event);
      await deps.registry.reload();
      return ruleView(record);
    },
  );

  app.delete(
    '/admin/federation/rules/:name',
    {
      schema: {
        tags,
        summary: 'remove a rule',
        params: Type.Object({ name: Name }),
        response: { 204: Type.Null(), ...adminErrors(404) },
      },
    },
    async (request, reply) => {
      const event = stage('federation.rule_deleted', request, request.params.name, {});
      if (!(await deps.store.deleteFederationRule(request.params.name, [event]))) throw notFound('no such rule');
      deps.events.committed(event);
      await deps.registry.reload();
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/admin/federation/test',
    {
      schema: {
        tags,
        summary: 'which rule a token matches and why the others do not; whether it verifies (it is not used up)',
        body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 16_384 }) }, { additionalProperties: false }),
        response: { 200: AnyObject, ...adminErrors(400) },
      },
    },
    async (request) => deps.assertions.explain(request.body.token),
  );
}
