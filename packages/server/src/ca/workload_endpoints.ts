import type { FastifyInstance, FastifyRequest } from 'fastify';
import { OAuthError, invalidRequest } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { issueWorkloadCertificate } from './certificate_issuer.ts';
import type { ClientStore } from '../storage/ports.ts';
import type { WorkloadCa } from './workload_ca.ts';
import { WORKLOAD_SCOPE } from '@latchkey/protocol';

export interface WorkloadEndpointsDeps {
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
  app.get('/ca/bundle', async (_request, reply) => {
    const { bundlePem } = await deps.ca.state();
    // Short-lived in caches: during a rotation a new root must reach every workload quickly.
    return reply.type('application/x-pem-file').header('cache-control', 'public, max-age=60').send(bundlePem);
  });

  app.post('/workload/certificate', async (request, reply) => {
    const body = request.body as { csr?: unknown; client_id?: unknown } | null;
    const forClient = body && typeof body === 'object' && !Array.isArray(body) ? body.client_id : undefined;
    let clientId: string;
    let actor: string;
    if (forClient !== undefined) {
      await deps.requireAdmin(request);
      if (typeof forClient !== 'string' || forClient.length === 0 || forClient.length > 256)
        throw invalidRequest('client_id must be a string');
      const client = await deps.clients.getClient(forClient);
      if (!client || client.disabled) throw new OAuthError('invalid_request', 'no such enabled client', 404);
      clientId = client.clientId;
      actor = 'admin';
    } else {
      clientId = await deps.caller(request, { requiredScope: WORKLOAD_SCOPE });
      actor = clientId;
    }
    if (!/^application\/json\s*(;|$)/i.test(String(request.headers['content-type'] ?? '')))
      throw new OAuthError('invalid_request', 'the request body must be application/json', 415);
    if (
      !body ||
      typeof body !== 'object' ||
      Array.isArray(body) ||
      Object.keys(body).some((k) => k !== 'csr' && k !== 'client_id')
    )
      throw invalidRequest('the body must be {"csr": "<PEM>"}');
    if (typeof body.csr !== 'string' || body.csr.length > 16 * 1024)
      throw invalidRequest('csr must be a PEM string of at most 16 KiB');
    const state = await deps.ca.state();
    const issued = await issueWorkloadCertificate(state.signer, body.csr, clientId, {
      trustDomain: deps.trustDomain,
      ttlSeconds: deps.ttlSeconds,
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
  });
}
