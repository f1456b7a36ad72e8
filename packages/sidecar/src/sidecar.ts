import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { rootCertificates } from 'node:tls';
import { type Clock, systemClock } from '@latchkey/protocol';
import {
  type AuditQueue,
  type Authorizer,
  createAuditQueue,
  createAuthorizer,
  createIdpConnection,
  createTokenClient,
  createVerifier,
  createWorkloadIdentity,
  type Verifier,
  type WorkloadIdentity,
} from '@latchkey/sdk';
import Fastify, { type FastifyInstance } from 'fastify';
import { Agent, fetch as undiciFetch } from 'undici';
import type { SidecarConfig } from './config/sidecar_config_schema.ts';
import { SidecarError } from './errors.ts';
import { Gate } from './gate/gate.ts';
import * as grpc from '@grpc/grpc-js';
import { authzen } from './modes/authzen.ts';
import { extAuthzHttp, startExtAuthzGrpc } from './modes/ext_authz.ts';
import { forwardAuth } from './modes/forward_auth.ts';
import { reverseProxy } from './modes/reverse_proxy.ts';
import { opsRoutes, type Readiness } from './ops/ops_routes.ts';
import { SidecarMetrics } from './ops/sidecar_metrics.ts';
import { RouteTable } from './routes/route_table.ts';

type Listen = NonNullable<SidecarConfig['listen']>;

/** Options of {@link startSidecar} beyond the configuration file. */
export interface SidecarOptions {
  /** fetch to reach the IdP (default: one trusting the system roots and `idp.ca_file`). */
  fetch?: typeof fetch;
  clock?: Clock;
  /** A pino-compatible logger, or false for none (default: JSON lines at `log_level` on stdout). */
  logger?: boolean | object;
}

/** A running sidecar. */
export interface RunningSidecar {
  /** Base URL of the reverse proxy, when configured. */
  proxyUrl?: string;
  /** Base URL of the sidecar's own API (forward auth, AuthZEN, HTTP ext_authz, health, metrics), when configured. */
  url?: string;
  /** host:port of the gRPC ext_authz service, when configured. */
  grpcAddress?: string;
  /** The sidecar's own workload identity, when a listener terminates mTLS with it (`workload_tls`). */
  workload?: WorkloadIdentity;
  verifier: Verifier;
  authorizer: Authorizer;
  audit: AuditQueue;
  readiness(): Readiness;
  /** Stops taking connections, lets requests in flight finish, flushes the audit queue. */
  close(): Promise<void>;
}

function idpFetch(caFile: string | undefined): typeof fetch {
  if (!caFile) return globalThis.fetch;
  let ca: string;
  try {
    ca = readFileSync(caFile, 'utf8');
  } catch (err) {
    throw new SidecarError(
      'config_invalid',
      `idp.ca_file ${caFile}: cannot be read (${(err as NodeJS.ErrnoException).code})`,
    );
  }
  const dispatcher = new Agent({ connect: { ca: [...rootCertificates, ca] } });
  return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
    undiciFetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
}

function server(
  listen: Listen,
  logger: SidecarOptions['logger'],
  level: string,
  workload: WorkloadIdentity | undefined,
): FastifyInstance {
  const https = listen.tls
    ? {
        cert: readFileSync(listen.tls.cert_file),
        key: readFileSync(listen.tls.key_file),
        ...(listen.tls.client_ca_file
          ? { ca: readFileSync(listen.tls.client_ca_file), requestCert: true, rejectUnauthorized: false }
          : {}),
        minVersion: 'TLSv1.2' as const,
      }
    : null;
  return Fastify({
    ...(https ? { https } : {}),
    // Mutual TLS with the workload identity: its certificate, peers verified against the trust
    // bundle, both following renewals and CA rotation.
    ...(listen.workload_tls && workload
      ? { serverFactory: (handler: Parameters<WorkloadIdentity['createServer']>[0]) => workload.createServer(handler) }
      : {}),
    logger:
      logger === undefined
        ? {
            level,
            // A token put in a URL by mistake (RFC 6750 §2.3) stays out of the log: paths only, as the IdP logs them.
            serializers: {
              req: (req: { method: string; url: string; socket?: { remoteAddress?: string } }) => ({
                method: req.method,
                path: req.url.split('?', 1)[0],
                remoteAddress: req.socket?.remoteAddress,
              }),
            },
          }
        : (logger as boolean),
    trustProxy: false,
    return503OnClosing: true,
    requestTimeout: 0,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;
}

async function listenOn(app: FastifyInstance, listen: Listen): Promise<string> {
  await app.listen({ host: listen.host, port: listen.port });
  const { port } = app.server.address() as AddressInfo;
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `${listen.tls || listen.workload_tls ? 'https' : 'http'}://${host}:${port}`;
}

/**
 * Starts the sidecar: one connection to the IdP shared by a verifier (keys and revocations kept
 * fresh by the feed), an authorizer (the policy bundle by the feed) and an audit queue, then the
 * configured listeners — the reverse proxy, and the sidecar's own API with forward auth, AuthZEN,
 * `/healthz`, `/readyz` and `/metrics`. Throws a {@link SidecarError} `start_failed` when the
 * IdP cannot be reached at start (nothing to decide with yet).
 */
export async function startSidecar(config: SidecarConfig, options: SidecarOptions = {}): Promise<RunningSidecar> {
  const clock = options.clock ?? systemClock;
  const routes = new RouteTable(config.routes);
  const fetchIdp = options.fetch ?? idpFetch(config.idp.ca_file);
  if (!config.idp.client_secret)
    throw new SidecarError('config_invalid', 'idp.client_secret is required (LATCHKEY_SIDECAR_CLIENT_SECRET)');
  const credentials = { clientId: config.idp.client_id, clientSecret: config.idp.client_secret };
  const connection = createIdpConnection({ issuer: config.idp.issuer, credentials, fetch: fetchIdp });
  const audit = createAuditQueue({
    connection,
    allowRate: config.audit.allow_rate,
    aggregateInterval: config.audit.aggregate_interval,
    maxQueue: config.audit.max_queue,
  });
  let verifier: Verifier | undefined;
  let authorizer: Authorizer | undefined;
  try {
    verifier = await createVerifier({
      connection,
      audience: config.audience,
      maxStaleness: config.max_staleness,
      statusList: config.status_list,
      audit,
      clock,
    });
    authorizer = await createAuthorizer({ connection, audit, clock, delegationContext: config.delegation_context });
  } catch (err) {
    verifier?.close();
    await audit.close();
    throw new SidecarError(
      'start_failed',
      `the IdP at ${config.idp.issuer} could not be used: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  const v = verifier;
  const a = authorizer;
  let workload: WorkloadIdentity | undefined;
  if (config.proxy?.listen.workload_tls || config.listen?.workload_tls) {
    try {
      workload = await createWorkloadIdentity({
        issuer: config.idp.issuer,
        credentials,
        revocations: v,
        ...(config.idp.ca_file ? { idpCa: readFileSync(config.idp.ca_file, 'utf8') } : {}),
        clock,
      });
    } catch (err) {
      v.close();
      a.close();
      await audit.close();
      throw new SidecarError('start_failed', `no workload certificate from the IdP: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  const metrics = new SidecarMetrics();
  const readiness = (): Readiness => {
    const vh = v.health();
    const ah = a.health();
    const policyFresh = ah.ageSeconds <= config.max_staleness && !ah.engine.broken;
    return {
      ready: vh.ok && policyFresh,
      checks: {
        keys: { count: vh.jwks.keys, age_seconds: vh.jwks.ageSeconds },
        revocations: {
          entries: vh.revocations.entries,
          age_seconds: vh.revocations.ageSeconds,
          feed: vh.revocations.feed,
        },
        policy: { version: ah.version, age_seconds: ah.ageSeconds, broken: ah.engine.broken },
        audit: { pending: audit.pending, dropped: audit.dropped },
      },
    };
  };
  metrics.gauges(() => {
    const vh = v.health();
    const ah = a.health();
    return {
      jwks_age: vh.jwks.ageSeconds ?? -1,
      revocations_age: vh.revocations.ageSeconds ?? -1,
      revocation_entries: vh.revocations.entries,
      policy_age: ah.ageSeconds,
      policy_version: ah.version,
      audit_pending: audit.pending,
      audit_dropped: audit.dropped,
      ready: readiness().ready ? 1 : 0,
      feed_pushed: vh.revocations.feed === 'connected' ? 1 : 0,
    };
  });
  // Routes that mint Transaction Tokens ask the IdP with the sidecar's own client (token exchange).
  const tokens = config.routes.some((r) => r.transaction_token === 'mint')
    ? createTokenClient({ issuer: config.idp.issuer, ...credentials, fetch: fetchIdp, clock })
    : undefined;
  const gate = new Gate({
    config,
    routes,
    verifier: v,
    authorizer: a,
    audit,
    metrics,
    realm: config.audience,
    ...(tokens ? { tokens } : {}),
  });
  const now = () => clock.now();
  const apps: FastifyInstance[] = [];
  const closers: (() => Promise<void>)[] = [];
  const running: RunningSidecar = {
    ...(workload ? { workload } : {}),
    verifier: v,
    authorizer: a,
    audit,
    readiness,
    close: async () => {
      await Promise.all([...apps.map((app) => app.close()), ...closers.map((c) => c())]);
      v.close();
      a.close();
      await workload?.close();
      await audit.close();
    },
  };
  try {
    if (config.proxy) {
      const app = server(config.proxy.listen, options.logger, config.log_level, workload);
      apps.push(app);
      await reverseProxy(app, {
        config: config.proxy,
        gate,
        metrics,
        passAuthorization: config.pass_authorization,
        now,
      });
      running.proxyUrl = await listenOn(app, config.proxy.listen);
    }
    if (config.listen) {
      const app = server(config.listen, options.logger, config.log_level, workload);
      apps.push(app);
      opsRoutes(app, { readiness, metrics });
      forwardAuth(app, { path: config.forward_auth.path, gate, now });
      extAuthzHttp(app, {
        prefix: config.ext_authz.http_path_prefix,
        gate,
        passAuthorization: config.pass_authorization,
        now,
      });
      if (config.authzen.enabled) authzen(app, { authorizer: a, verifier: v, config, now });
      running.url = await listenOn(app, config.listen);
    }
    const grpcListen = config.ext_authz.grpc?.listen;
    if (grpcListen) {
      const tls = grpcListen.tls;
      const grpcServer = await startExtAuthzGrpc({
        gate,
        host: grpcListen.host,
        port: grpcListen.port,
        credentials: tls
          ? grpc.ServerCredentials.createSsl(
              tls.client_ca_file ? readFileSync(tls.client_ca_file) : null,
              [{ private_key: readFileSync(tls.key_file), cert_chain: readFileSync(tls.cert_file) }],
              tls.client_ca_file !== undefined,
            )
          : grpc.ServerCredentials.createInsecure(),
        passAuthorization: config.pass_authorization,
        now,
        onError: () => metrics.checkErrors.inc(),
      });
      closers.push(grpcServer.close);
      running.grpcAddress = `${grpcListen.host}:${grpcServer.port}`;
    }
  } catch (err) {
    await running.close();
    if (err instanceof SidecarError) throw err;
    throw new SidecarError('start_failed', `could not listen: ${(err as Error).message}`, { cause: err });
  }
  return running;
}
