import { type Authorizer, authenticateBearer, type AuthorizeRequest, type Verifier } from '@latchkey/sdk';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { Compile } from 'typebox/compile';
import type { SidecarConfig } from '../config/sidecar_config_schema.ts';
import { usableWorkload } from '../gate/gate.ts';
import { factsOf } from './request_of.ts';

const Props = Type.Record(Type.String(), Type.Unknown());
const Entity = Type.Object({
  type: Type.String({ minLength: 1 }),
  id: Type.String({ minLength: 1 }),
  properties: Type.Optional(Props),
});
const Action = Type.Object({ name: Type.String({ minLength: 1 }), properties: Type.Optional(Props) });
/** AuthZEN 1.0 §6.1: one access evaluation request. */
const Evaluation = Type.Object({ subject: Entity, action: Action, resource: Entity, context: Type.Optional(Props) });
/** §7.1: defaults at the top, one entry per evaluation, options. */
const Evaluations = Type.Object({
  subject: Type.Optional(Entity),
  action: Type.Optional(Action),
  resource: Type.Optional(Entity),
  context: Type.Optional(Props),
  evaluations: Type.Optional(
    Type.Array(
      Type.Object({
        subject: Type.Optional(Entity),
        action: Type.Optional(Action),
        resource: Type.Optional(Entity),
        context: Type.Optional(Props),
      }),
      { maxItems: 1000 },
    ),
  ),
  options: Type.Optional(
    Type.Object({
      evaluations_semantic: Type.Optional(
        Type.Union([
          Type.Literal('execute_all'),
          Type.Literal('deny_on_first_deny'),
          Type.Literal('permit_on_first_permit'),
        ]),
      ),
    }),
  ),
});
type EvaluationRequest = Static<typeof Evaluation>;
type Decision = { decision: boolean; context?: Record<string, unknown> };

const checkOne = Compile(Evaluation);
const checkMany = Compile(Evaluations);

/** The Cedar action of an AuthZEN action name: a Cedar reference as is, else `Action::"name"` in the resource type's namespace. */
export function cedarAction(name: string, resourceType: string): string {
  if (/::"/.test(name)) return name;
  const ns = resourceType.includes('::') ? `${resourceType.slice(0, resourceType.lastIndexOf('::'))}::` : '';
  return `${ns}Action::${JSON.stringify(name)}`;
}

/**
 * The AuthZEN 1.0 Access Evaluation API, answered by the local Cedar authorizer:
 * `POST /access/v1/evaluation`, `POST /access/v1/evaluations` (batch, §7, with the three
 * evaluation semantics) and the PDP metadata at `/.well-known/authzen-configuration` (§9). Callers
 * authenticate with a bearer token for this service's audience or an mTLS workload certificate of a
 * client not revoked since it was issued.
 * The subject maps to a Cedar principal (`subject_types` renames types; its attributes come from
 * the policy bundle, as for every principal), the resource's properties become its attributes.
 */
export function authzen(
  app: FastifyInstance,
  deps: {
    authorizer: Pick<Authorizer, 'authorize'>;
    verifier: Pick<Verifier, 'verify' | 'clientRevoked'>;
    config: Pick<SidecarConfig, 'authzen' | 'audience'>;
    now: () => number;
  },
): void {
  const subjectType = (t: string) => deps.config.authzen.subject_types?.[t] ?? t;
  const decide = (e: EvaluationRequest): Decision => {
    const request: AuthorizeRequest = {
      principal: { type: subjectType(e.subject.type), id: e.subject.id },
      action: cedarAction(e.action.name, e.resource.type),
      resource: { type: e.resource.type, id: e.resource.id, attrs: e.resource.properties ?? {} },
      context: e.context ?? {},
    };
    try {
      return { decision: deps.authorizer.authorize(request).decision === 'allow' };
    } catch (err) {
      return { decision: false, context: { error: { status: 400, message: (err as Error).message } } };
    }
  };

  const authenticated = async (request: FastifyRequest, reply: FastifyReply): Promise<boolean> => {
    if (request.headers.authorization === undefined) {
      // An mTLS caller: a workload certificate of a client that is not revoked (as the gate checks it).
      const peer = factsOf(request.raw, deps.now());
      if (peer?.facts.peer && usableWorkload(peer.facts.peer, peer.peerCertificate, deps.verifier)) return true;
    }
    const outcome = await authenticateBearer(request.headers.authorization, {
      verifier: deps.verifier,
      realm: deps.config.audience,
    });
    if (outcome.claims) return true;
    await reply
      .code(outcome.status ?? 401)
      .headers(outcome.headers ?? {})
      .send(outcome.body);
    return false;
  };
  const answer = (request: FastifyRequest, reply: FastifyReply, body: unknown) => {
    const id = request.headers['x-request-id'];
    if (typeof id === 'string' && id.length <= 128) reply.header('x-request-id', id);
    return reply.header('cache-control', 'no-store').send(body);
  };
  // The HTTPS binding carries JSON only; anything else is refused.
  const jsonOnly = async (request: FastifyRequest, reply: FastifyReply) => {
    const type = request.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json')
      return reply.code(415).send({ error: 'invalid_request', error_description: 'the body must be application/json' });
  };
  const invalid = (reply: FastifyReply, message: string) =>
    reply.code(400).send({ error: 'invalid_request', error_description: message });

  app.get('/.well-known/authzen-configuration', async (request) => {
    const base = `${request.protocol}://${request.host}`;
    return {
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`,
    };
  });

  app.post('/access/v1/evaluation', { preValidation: jsonOnly }, async (request, reply) => {
    if (!(await authenticated(request, reply))) return reply;
    if (!checkOne.Check(request.body)) return invalid(reply, firstError(checkOne, request.body));
    const d = decide(request.body);
    if (d.context?.error) return invalid(reply, String((d.context.error as { message: string }).message));
    return answer(request, reply, d);
  });

  app.post('/access/v1/evaluations', { preValidation: jsonOnly }, async (request, reply) => {
    if (!(await authenticated(request, reply))) return reply;
    if (!checkMany.Check(request.body)) return invalid(reply, firstError(checkMany, request.body));
    const body = request.body;
    const semantic = body.options?.evaluations_semantic ?? 'execute_all';
    // §7.1.1: without evaluations, the request is a single evaluation answered in the batch shape.
    const entries = body.evaluations?.length ? body.evaluations : [{}];
    const results: Decision[] = [];
    for (const entry of entries) {
      const e = {
        subject: entry.subject ?? body.subject,
        action: entry.action ?? body.action,
        resource: entry.resource ?? body.resource,
        context: { ...(body.context ?? {}), ...(entry.context ?? {}) },
      };
      const d =
        e.subject && e.action && e.resource
          ? decide(e as EvaluationRequest)
          : {
              decision: false,
              context: { error: { status: 400, message: 'subject, action and resource are required' } },
            };
      results.push(d);
      if (semantic === 'deny_on_first_deny' && !d.decision) break;
      if (semantic === 'permit_on_first_permit' && d.decision) break;
    }
    return answer(request, reply, { evaluations: results });
  });
}

function firstError(
  check: { Errors(v: unknown): Iterable<{ instancePath: string; message: string }> },
  body: unknown,
): string {
  for (const e of check.Errors(body)) return `${e.instancePath || 'body'} ${e.message}`;
  return 'invalid request';
}
