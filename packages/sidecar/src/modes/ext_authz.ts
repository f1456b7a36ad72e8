import { X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { FastifyInstance } from 'fastify';
import type { Gate, GateOutcome } from '../gate/gate.ts';
import { isIdentityHeader } from '../gate/identity_headers.ts';
import { lastForwardedFor, type RequestFacts, splitTarget } from '../routes/request_facts.ts';

/** google.rpc.Code values Envoy reads in CheckResponse.status. */
const RPC = { OK: 0, PERMISSION_DENIED: 7, UNAUTHENTICATED: 16 } as const;

interface Peer {
  address?: { socket_address?: { address?: string } };
  principal?: string;
  certificate?: string;
}
interface CheckRequest {
  attributes?: {
    source?: Peer;
    request?: { http?: { method?: string; path?: string; headers?: Record<string, string> } };
    context_extensions?: Record<string, string>;
  };
}
type HeaderOption = { header: { key: string; value: string }; append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };

/** Headers the upstream must not see: the caller's credentials (unless passed on) and identity headers the sidecar did not set. */
function toRemove(headers: Record<string, unknown>, passAuthorization: boolean, set: Record<string, string>): string[] {
  const out = Object.keys(headers).filter((h) => isIdentityHeader(h) && !(h.toLowerCase() in set));
  if (!passAuthorization && 'authorization' in headers) out.push('authorization');
  return out;
}

/** A peer certificate as Envoy sends it (URL-encoded PEM, with include_peer_certificate), for certificate-bound tokens. */
function certificateOf(encoded: string | undefined): X509Certificate | undefined {
  if (!encoded) return undefined;
  try {
    return new X509Certificate(decodeURIComponent(encoded));
  } catch {
    return undefined;
  }
}

/** The facts of a CheckRequest: Envoy's view of the original request, its mTLS peer and context extensions. */
export function factsOfCheck(request: CheckRequest, now: number): RequestFacts | undefined {
  const a = request.attributes;
  const http = a?.request?.http;
  const target = splitTarget(http?.path ?? '');
  if (!http?.method || !target) return undefined;
  const principal = a?.source?.principal;
  return {
    method: http.method,
    path: target.path,
    query: target.query,
    headers: Object.fromEntries(Object.entries(http.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
    sourceIp: a?.source?.address?.socket_address?.address ?? '',
    ...(principal?.startsWith('spiffe://') ? { peer: principal } : {}),
    now,
    extensions: a?.context_extensions ?? {},
  };
}

/**
 * What Envoy is told: OK with the identity headers to set and the headers to remove, or DENIED
 * with the HTTP status, `WWW-Authenticate` and body to answer the client with. A request that
 * cannot be read is denied: the sidecar fails closed.
 */
export function checkResponse(
  outcome: GateOutcome | undefined,
  incoming: Record<string, unknown>,
  passAuthorization: boolean,
) {
  if (!outcome?.allow) {
    const status = outcome?.status === 401 ? 401 : outcome?.status === 400 || !outcome ? 400 : 403;
    const body = outcome?.body ?? { error: 'invalid_request', error_description: 'the request could not be read' };
    const headers = { ...(outcome?.headers ?? {}), 'content-type': 'application/json', 'cache-control': 'no-store' };
    return {
      status: { code: status === 401 ? RPC.UNAUTHENTICATED : RPC.PERMISSION_DENIED, message: body.error },
      denied_response: {
        status: { code: status === 401 ? 'Unauthorized' : status === 400 ? 'BadRequest' : 'Forbidden' },
        headers: Object.entries(headers).map(([key, value]) => ({ header: { key, value } })),
        body: JSON.stringify(body),
      },
    };
  }
  const set: HeaderOption[] = Object.entries(outcome.identity).map(([key, value]) => ({
    header: { key, value },
    append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
  }));
  return {
    status: { code: RPC.OK },
    ok_response: { headers: set, headers_to_remove: toRemove(incoming, passAuthorization, outcome.identity) },
  };
}

const PROTO = fileURLToPath(new URL('../../proto/envoy/service/auth/v3/external_auth.proto', import.meta.url));

/**
 * Envoy external authorization over gRPC: `envoy.service.auth.v3.Authorization/Check`, as Envoy
 * and Istio (`envoyExtAuthzGrpc` providers) call it. Returns the bound port.
 */
export async function startExtAuthzGrpc(deps: {
  gate: Gate;
  host: string;
  port: number;
  credentials: grpc.ServerCredentials;
  passAuthorization: boolean;
  now: () => number;
  onError: (err: unknown) => void;
}): Promise<{ port: number; close: () => Promise<void> }> {
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: true,
    enums: String,
    defaults: false,
    oneofs: true,
    includeDirs: [fileURLToPath(new URL('../../proto', import.meta.url))],
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } };
  };
  const server = new grpc.Server();
  server.addService(loaded.envoy.service.auth.v3.Authorization.service, {
    Check: (call: grpc.ServerUnaryCall<CheckRequest, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      const facts = factsOfCheck(call.request, deps.now());
      const incoming = call.request.attributes?.request?.http?.headers ?? {};
      if (!facts) return callback(null, checkResponse(undefined, incoming, deps.passAuthorization));
      const cert = certificateOf(call.request.attributes?.source?.certificate);
      deps.gate.check(facts, cert, 'ext_authz_grpc').then(
        (outcome) => callback(null, checkResponse(outcome, incoming, deps.passAuthorization)),
        (err: unknown) => {
          deps.onError(err);
          callback(null, checkResponse(undefined, incoming, deps.passAuthorization));
        },
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${deps.host.includes(':') ? `[${deps.host}]` : deps.host}:${deps.port}`,
      deps.credentials,
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

/**
 * Envoy's HTTP ext_authz (`http_service` with `path_prefix`): the original method and path after
 * the prefix, the original headers; 200 with the identity headers (and
 * `x-envoy-auth-headers-to-remove`) to allow, the status, headers and body to deny.
 */
export function extAuthzHttp(
  app: FastifyInstance,
  deps: { prefix: string; gate: Gate; passAuthorization: boolean; now: () => number },
): void {
  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    url: `${deps.prefix}/*`,
    handler: async (request, reply) => {
      const target = splitTarget((request.raw.url ?? '').slice(deps.prefix.length) || '/');
      const xff = lastForwardedFor(request.headers);
      const facts: RequestFacts | undefined = target && {
        method: request.method,
        path: target.path,
        query: target.query,
        headers: request.headers,
        sourceIp: xff || request.ip,
        now: deps.now(),
      };
      const outcome = facts ? await deps.gate.check(facts, undefined, 'ext_authz_http') : undefined;
      reply.header('cache-control', 'no-store');
      if (!outcome?.allow)
        return reply
          .code(outcome?.status ?? 403)
          .headers(outcome?.headers ?? {})
          .send(outcome?.body ?? { error: 'invalid_request', error_description: 'the request could not be read' });
      const remove = toRemove(request.headers, deps.passAuthorization, outcome.identity);
      if (remove.length > 0) reply.header('x-envoy-auth-headers-to-remove', remove.join(', '));
      return reply.code(200).headers(outcome.identity).send();
    },
  });
}
