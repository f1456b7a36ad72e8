import { actorOf } from '../admin/admin_token.ts';
import type { Clock } from '@latchkey/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import Type from 'typebox';
import { oauthErrors, typed } from '../http/schemas.ts';
import { OAuthError } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { issueWorkloadCertificate } from './certificate_issuer.ts';
import type { ClientStore } from '../storage/ports.ts';
import type { WorkloadCa } from './workload_ca.ts';
import { WORKLOAD_SCOPE } from '@latchkey/protocol';

export interface WorkloadEndpointsDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  ca: WorkloadCa;
  trustDomain: string;
  ttlSeconds: number;
  events: ServerEvents;
  /**
   * The authenticated, enabled client calling — client authentication (Basic, mTLS), or one of its
   * own unrevoked access tokens, which must then carry `requiredScope`.
   */
  caller: (request: FastifyRequest, options: { requiredScope: string }) => Promise<string>;
  /** Checks the admin bearer: an administrator may have a certificate issued for any enabled client. */
  requireAdmin: (request: FastifyRequest) => Promise<void>;
  clients: Pick<ClientStore, 'getClient'>;
}

/**
 * The workload CA: `GET /ca/bundle` (the trust bundle, PEM, public) and
 * `POST /workload/certificate` (`{"csr": "<PEM PKCS#10>"}` from an authenticated client → an
 * X.509-SVID for its own SPIFFE ID, whatever names the CSR asked for). With `client_id` in the
 * body the caller must be the administrator, who obtains the first certificate of a client that
 * authenticates by certificate only (`tls_client_auth`); it renews with that certificate itself.
 * Every issue is audited.
 */
export function registerWorkloadEndpoints(app: FastifyInstance, deps: WorkloadEndpointsDeps): void {
  const tags = ['workload CA'];
  app.get(
    '/ca/bundle',
    {
      config: { credential: 'none' },
      schema: {
        tags,
        summary: 'the trust bundle of workload certificates (PEM)',
        response: { 200: { content: { 'application/x-pem-file': { schema: Type.String() } } } },
      },
    },
    async (_request, reply) => {
      const { bundlePem } = await deps.ca.state();
      // Short-lived in caches: during a rotation a new root must reach every workload quickly.
      return reply.type('application/x-pem-file').header('cache-control', 'public, max-age=60').send(bundlePem);
    },
  );

  // Who may call depends on the body (the administrator names a client_id; a service asks for
  // itself), so the caller is authenticated once the body is parsed, before it is validated:
  // an anonymous caller learns nothing about the schema.
  const callers = new WeakMap<FastifyRequest, { clientId: string; actor: string }>();
  const authenticate = async (request: FastifyRequest): Promise<void> => {
    const named = (request.body as { client_id?: unknown } | null)?.client_id;
    if (named !== undefined) {
      await deps.requireAdmin(request);
      if (typeof named !== 'string') return; // the schema refuses it next
      const client = await deps.clients.getClient(named);
      if (!client || client.disabled) throw new OAuthError('invalid_request', 'no such enabled client', 404);
      callers.set(request, { clientId: client.clientId, actor: actorOf(request) });
    } else {
      const clientId = await deps.caller(request, { requiredScope: WORKLOAD_SCOPE });
      callers.set(request, { clientId, actor: clientId });
    }
  };
  typed(app).post(
    '/workload/certificate',
    {
      config: { credential: 'service' },
      preValidation: authenticate,
      schema: {
        tags,
        summary: 'an X.509-SVID for the calling client (or, with the admin bearer, for client_id)',
        body: Type.Object(
          {
            csr: Type.String({ minLength: 1, maxLength: 16 * 1024, description: 'PEM PKCS#10; only its key is used' }),
            client_id: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 256,
                description: 'with the admin bearer: the client to issue for',
              }),
            ),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            certificate: Type.String(),
            trust_bundle: Type.String(),
            spiffe_id: Type.String(),
            expires_at: Type.Integer(),
          }),
          ...oauthErrors(400, 401, 403, 404, 413, 415, 503),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const { clientId, actor } = callers.get(request)!;
      const state = await deps.ca.state();
      const issued = await issueWorkloadCertificate(state.signer, body.csr, clientId, {
        trustDomain: deps.trustDomain,
        ttlSeconds: deps.ttlSeconds,
        now: deps.clock.now(),
      });
      await deps.events.emit('certificate.issued', {
        actor,
        subject: issued.spiffeId,
        client_id: clientId,
        outcome: 'success',
        request_id: request.id,
        source_ip: request.ip,
        ...(issued.requestedOther.length > 0 ? { reason: 'identity_not_owned' } : {}),
        detail: {
          serial: issued.serial,
          spiffe_id: issued.spiffeId,
          not_after: issued.notAfter.toISOString(),
          key_type: issued.keyType,
          ...(issued.requestedOther.length > 0 ? { requested_other: issued.requestedOther } : {}),
        },
      });
      return reply.header('cache-control', 'no-store').send({
        certificate: issued.pem,
        trust_bundle: state.bundlePem,
        spiffe_id: issued.spiffeId,
        expires_at: Math.floor(issued.notAfter.getTime() / 1000),
      });
    },
  );
}
