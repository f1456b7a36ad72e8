import { randomUUID } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { adminGuard, adminTokenValid } from './admin/admin_token.ts';
import { registerConsoleAdmin } from './admin/console_admin.ts';
import { registerStatsAdmin } from './admin/stats_admin.ts';
import { registerAuditStream } from './audit/audit_stream.ts';
import { registerConsole } from './console/console_routes.ts';
import { ConsoleSessions } from './console/console_sessions.ts';
import { verifyOwnToken } from './keys/own_token_verifier.ts';
import { CONSOLE_CLIENT_ID, ensureConsoleClient, mayUseConsole } from './console/console_client.ts';
import { FeedHistory } from './revocation/feed_history.ts';
import { registerClientAdmin } from './admin/client_admin.ts';
import type { Config } from './config.ts';
import type { ServerEvents } from './events.ts';
import { registerHealth } from './health.ts';
import { installErrorHandler } from './http/error_handler.ts';
import { registerRequestTracing } from './http/request_tracing.ts';
import { registerOpenApi } from './http/openapi.ts';
import { adminScope, enforceContentTypes, publicScope, routeTable, serviceScope } from './http/route_rules.ts';
import { addSharedSchemas } from './http/schemas.ts';
import { SERVER_VERSION } from './version.ts';
import { FORM_CONTENT_TYPE, parseForm } from './http/form.ts';
import { registerJwksEndpoint } from './keys/jwks_endpoint.ts';
import type { KeyRing } from './keys/key_ring.ts';
import type { KeyRotator } from './keys/key_rotator.ts';
import type { RevocationLog } from './revocation/revocation_log.ts';
import { FeedHub } from './revocation/feed_hub.ts';
import { registerFeedEndpoints } from './revocation/feed_endpoints.ts';
import { registerKeyAdmin } from './admin/key_admin.ts';
import type { MasterKey } from './keys/master_key.ts';
import { clientAuthenticator } from './oauth/client_auth/authenticate_client.ts';
import { clientSecretBasic } from './oauth/client_auth/client_secret_basic.ts';
import { clientSecretPost } from './oauth/client_auth/client_secret_post.ts';
import { FailureLimiter } from './oauth/client_auth/failure_limiter.ts';
import { privateKeyJwt } from './oauth/client_auth/private_key_jwt.ts';
import { registerDiscovery } from './oauth/discovery.ts';
import { registerStatusListEndpoints } from './status/status_list_endpoints.ts';
import { StatusLists } from './status/status_lists.ts';
import { SetWake } from './ssf/set_wake.ts';
import { registerFederationAdmin } from './admin/federation_admin.ts';
import { FederatedAssertions } from './federation/federated_assertion.ts';
import { FederationKeys } from './federation/federation_keys.ts';
import { FederationRegistry } from './federation/federation_registry.ts';
import { federatedAssertionOf, federatedClientAuth } from './oauth/client_auth/federated.ts';
import { jwtBearerGrant } from './oauth/grants/jwt_bearer.ts';
import { registerSsfConfiguration, registerSsfEndpoints } from './ssf/ssf_endpoints.ts';
import { SsfPushDelivery } from './ssf/push_delivery.ts';
import { SsfStreams } from './ssf/ssf_streams.ts';
import { SsfTransmitter } from './ssf/ssf_transmitter.ts';
import { clientCredentialsGrant } from './oauth/grants/client_credentials.ts';
import { registerIntrospectionEndpoint } from './oauth/introspection_endpoint.ts';
import {
  registerClientConfiguration,
  registerClientRegistration,
} from './oauth/registration/registration_endpoints.ts';
import { registerRevocationEndpoint } from './oauth/revocation_endpoint.ts';
import { registerTokenEndpoint } from './oauth/token_endpoint.ts';
import type { ClientCache } from './storage/client_cache.ts';
import type { AuditWriter } from './audit/audit_writer.ts';
import type { AuditCheckpointer } from './audit/audit_checkpointer.ts';
import type { AuditRetention } from './audit/audit_retention.ts';
import { registerAlertAdmin } from './admin/alert_admin.ts';
import { registerMetricsEndpoint, type Metrics } from './metrics.ts';
import { registerPolicyAdmin } from './policy/policy_admin.ts';
import { registerPolicyFeed } from './policy/policy_feed.ts';
import { PolicyPublisher } from './policy/policy_publisher.ts';
import { BundleValidator } from './policy/bundle_validator.ts';
import type { TokenPolicy } from './policy/token_policy.ts';
import type { WorkloadCa } from './ca/workload_ca.ts';
import { registerCaAdmin } from './admin/ca_admin.ts';
import { registerUserAdmin } from './admin/user_admin.ts';
import { registerConsentAdmin } from './admin/consent_admin.ts';
import { tokenExchangeGrant } from './oauth/grants/token_exchange.ts';
import { Consents } from './users/consents.ts';
import type { PasswordHasher } from './users/password_hash.ts';
import type { PasswordPolicy } from './users/password_policy.ts';
import { type LockoutPolicy, LoginLockout } from './users/login_lockout.ts';
import { PasswordLogin } from './users/password_login.ts';
import { KnownDevices } from './users/known_device.ts';
import { registerAuthorizeEndpoints } from './oauth/authorize/authorize_endpoints.ts';
import { LoginTransactions } from './oauth/authorize/login_transaction.ts';
import { authorizationCodeGrant } from './oauth/grants/authorization_code.ts';
import { registerUserinfoEndpoint } from './oauth/userinfo_endpoint.ts';
import { publicClient } from './oauth/client_auth/none.ts';
import { refreshTokenGrant } from './oauth/grants/refresh_token.ts';
import { registerParEndpoint } from './oauth/authorize/par_endpoint.ts';
import { RefreshTokens } from './oauth/refresh_tokens.ts';
import { cookiesOf, PageCookies } from './oauth/authorize/cookies.ts';
import { registerEndSessionEndpoint } from './oauth/authorize/end_session_endpoint.ts';
import { Sessions } from './users/sessions.ts';
import { SecondFactors } from './users/second_factor.ts';
import { ClientJwks } from './oauth/client_auth/client_jwks.ts';
import { OutboundFetch } from './http/outbound_fetch.ts';
import { tlsClientAuth } from './oauth/client_auth/tls_client_auth.ts';
import { clientCertificateReader } from './tls/client_certificate.ts';
import { type Clock, TLS_OPTIONS, epochSeconds, serviceSpiffeId } from '@latchkey/protocol';
import { registerWorkloadEndpoints } from './ca/workload_endpoints.ts';
import { registerAuditAdmin } from './admin/audit_admin.ts';
import { registerAuditIngest } from './audit/ingest_endpoint.ts';
import { serviceCaller } from './oauth/service_caller.ts';
import type { Storage } from './storage/ports.ts';

export interface AppDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  config: Readonly<Config>;
  storage: Storage;
  keys: KeyRing;
  rotator: KeyRotator;
  revocations: RevocationLog;
  clients: ClientCache;
  audit: AuditWriter;
  checkpointer: AuditCheckpointer;
  retention: AuditRetention;
  metrics: Metrics;
  tokenPolicy: TokenPolicy;
  workload: { ca: WorkloadCa; trustDomain: string };
  /** How users' passwords are hashed, which are refused, and how failed logins slow further ones. */
  passwords: { hasher: PasswordHasher; policy: PasswordPolicy; lockout: LockoutPolicy };
  master: MasterKey;
  events: ServerEvents;
  logger: Logger;
  https?: { cert: string; key: string } | undefined;
  /** PEM certificates trusted for outbound HTTPS beside the system roots (`outboundCaFile`). */
  outboundCa?: string | undefined;
  /** Whether the process is draining before shutdown. */
  draining?: () => boolean;
}

/** Composes every concern into one Fastify app; the only module that knows them all. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const { config, storage, keys, master, events, clock } = deps;
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: config.jsonBodyLimit,
    genReqId: () => randomUUID(),
    // Fastify's own request log writes the URL with its query string, where tokens end up by
    // mistake: one access line per request is written below instead, without the query.
    logController: new LogController({ disableRequestLogging: true }),
    // Deadlines (issue 11, finding 18): a slow client cannot hold a connection open indefinitely.
    requestTimeout: config.requestTimeout * 1000,
    keepAliveTimeout: 5000,
    requestIdHeader: false,
    // Schemas validate strictly: no type coercion, and unknown members refused rather than dropped.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
    // Forwarded headers (the client address, a client certificate) only from the proxies the operator names.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    // RFC 8705: the listener asks every client for a certificate and accepts any (or none); what
    // one is worth is decided per request by the client's authentication method and token binding.
    // Deadlines are enforced by node on this interval (its default, 30 s, would let a request run long past its deadline).
    ...(deps.https
      ? {
          https: {
            cert: deps.https.cert,
            key: deps.https.key,
            ...TLS_OPTIONS,
            requestCert: true,
            rejectUnauthorized: false,
            connectionsCheckingInterval: 1000,
          },
        }
      : { http: { connectionsCheckingInterval: 1000 } }),
  }) as unknown as FastifyInstance;

  app.addContentTypeParser(
    FORM_CONTENT_TYPE,
    { parseAs: 'string', bodyLimit: config.formBodyLimit },
    (_req, body, done) => {
      done(null, parseForm(body as string));
    },
  );
  const securityHeaders: Record<string, string> = deps.https
    ? { 'x-content-type-options': 'nosniff', 'strict-transport-security': 'max-age=31536000' }
    : { 'x-content-type-options': 'nosniff' };
  app.addHook('onRequest', (_request, reply, done) => {
    reply.headers(securityHeaders);
    done();
  });
  installErrorHandler(app);
  registerRequestTracing(app);
  // Every route states its credential (checked at ready) and its schemas; one content-type rule.
  const routes = routeTable(app);
  app.decorate('routeTable', routes);
  addSharedSchemas(app);
  enforceContentTypes(app);
  registerOpenApi(app, SERVER_VERSION);
  // Latency and status class per route (the route pattern, never the path: ids stay out of labels).
  const latency = deps.metrics.requestSeconds;
  app.addHook('onResponse', (request, reply, done) => {
    latency.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: `${Math.floor(reply.statusCode / 100)}xx`,
      },
      reply.elapsedTime / 1000,
    );
    done();
  });
  // The access log (LATCHKEY_ACCESS_LOG): one line per request, without the query string.
  if (config.accessLog) {
    app.addHook('onResponse', (request, reply, done) => {
      const q = request.url.indexOf('?');
      request.log.info(
        {
          method: request.method,
          path: q < 0 ? request.url : request.url.slice(0, q),
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
          ip: request.ip,
        },
        'request',
      );
      done();
    });
  }
  // A connection cap (finding 18): past it node:net refuses new connections until some close.
  app.server.maxConnections = config.maxConnections;
  // Headers must arrive within 10 s (or the whole request deadline, when shorter).
  app.server.headersTimeout = Math.min(10_000, config.requestTimeout * 1000);
  if (deps.https) {
    // A connection's client certificate is read once (RFC 8705); renegotiation could change it.
    app.server.on('secureConnection', (socket: TLSSocket) => socket.disableRenegotiation());
  }

  const issuer = config.issuer;
  const clients = deps.clients;
  const certificate = clientCertificateReader({
    trustedProxies: config.trustedProxies,
    header: config.clientCertHeader,
  });
  // Everything a client can make the IdP fetch (its jwks_uri, its Shared Signals receiver) goes
  // through one guard (docs/security.md).
  const clientOutbound = new OutboundFetch({
    allowHttp: !config.tls,
    allowSpecialAddresses: false,
    allow: config.outboundAllow,
    timeoutMs: 5000,
    maxBytes: 64 * 1024,
    ca: deps.outboundCa,
  });
  const jwks = new ClientJwks({ outbound: clientOutbound });
  const { trustDomain } = deps.workload;
  const spiffeIdOf = (clientId: string) => serviceSpiffeId(trustDomain, clientId);
  // Federated workload identity: platform tokens (Kubernetes, CI, JWT-SVIDs) mapped to clients by rules.
  const federation = new FederationRegistry(storage);
  const federationKeys = new FederationKeys({
    allow: config.outboundAllow,
    ca: deps.outboundCa,
    cooldownSeconds: config.federationJwksCooldown,
  });
  const assertions = new FederatedAssertions({
    clock,
    audiences: [issuer, `${issuer}/token`],
    clockSkew: config.clockSkew,
    maxLifetime: config.federationMaxAssertionLifetime,
    registry: federation,
    keys: federationKeys,
    replay: storage,
  });
  app.addHook('onReady', async () => {
    await federation.reload();
    federation.start(5, logError('federation reload failed'));
  });
  app.addHook('onClose', async () => {
    federation.stop();
    await federationKeys.close();
  });
  const authenticatorMethods = [
    clientSecretBasic(master.secretHashKey),
    clientSecretPost(master.secretHashKey),
    privateKeyJwt({
      clock,
      issuer,
      clockSkew: config.clockSkew,
      replay: storage,
      jwks,
      federated: (form, authorization) => federatedAssertionOf(form, authorization, assertions) !== undefined,
    }),
    federatedClientAuth(assertions),
    tlsClientAuth({
      clock,
      certificate,
      anchors: async () => (await deps.workload.ca.state()).anchors,
      trustDomain,
      jwks,
    }),
  ];
  const authLimiter = new FailureLimiter(config.authFailureLimit, clock);
  const authenticate = clientAuthenticator({
    methods: authenticatorMethods,
    clients,
    events,
    clock,
    limiter: authLimiter,
  });
  // At /token a public client (none) may also redeem its codes; introspection and revocation stay for clients with credentials.
  const authenticateAtToken = clientAuthenticator({
    methods: [...authenticatorMethods, publicClient(certificate)],
    clients,
    events,
    clock,
    limiter: authLimiter,
  });
  const secureCookies = issuer.startsWith('https:');
  const consoleSessions = new ConsoleSessions({
    store: storage,
    replay: storage,
    clock,
    hashKey: master.secretHashKey,
    events,
    lifetime: config.consoleSessionLifetime,
  });
  const consoleCookie = secureCookies ? '__Host-lk-console' : 'lk-console';
  const requireAdmin = adminGuard({
    settings: storage,
    hashKey: master.secretHashKey,
    events,
    console: {
      sessions: consoleSessions,
      cookie: (request) => cookiesOf(request).get(consoleCookie),
      userAllowed: async (sub) => mayUseConsole(await storage.getUser(sub)),
    },
  });
  const cookies = new PageCookies(secureCookies);
  const sessions = new Sessions(storage, clock, config.sessionLifetime);
  const refresh = new RefreshTokens({
    store: storage,
    revocations: deps.revocations,
    events,
    policy: {
      lifetime: config.refreshTokenLifetime,
      idleTtl: config.refreshTokenIdleTtl,
      reuseGrace: config.refreshReuseGrace,
    },
  });
  const consents = new Consents({
    clock,
    store: storage,
    families: storage,
    codes: storage,
    refresh,
    revocations: deps.revocations,
    events,
    maxAccessTokenTtl: config.maxAccessTokenTtl,
  });
  const { hasher, policy: passwordPolicy } = deps.passwords;
  const passwordLogin = new PasswordLogin({
    users: storage,
    hasher,
    lockout: new LoginLockout(storage, clock, deps.passwords.lockout),
    events,
    clock,
    nameHashKey: master.secretHashKey,
  });

  const registration = {
    clock,
    issuer,
    clients,
    hashKey: master.secretHashKey,
    events,
    maxAccessTokenTtl: config.maxAccessTokenTtl,
    accessTokenTtl: config.accessTokenTtl,
    revocations: deps.revocations,
    allowHttpJwksUri: !config.tls,
    spiffeIdOf,
  };
  const hub = new FeedHub(storage, {
    heartbeatSeconds: config.feedHeartbeat,
    maxStreamsPerClient: config.feedMaxStreamsPerClient,
    maxStreams: config.feedMaxStreams,
    stallSeconds: config.feedStallTimeout,
    maxStreamAgeSeconds: config.feedMaxStreamAge,
    clock,
    onError: (err) =>
      deps.logger.error(
        { err: { message: (err as Error).message } },
        'feed delivery failed; will retry on the next append',
      ),
  });
  /** This replica's open streams and the entries they have not been sent yet (metrics, dashboard). */
  const feedState = async () => {
    const head = await storage.latestFeedSeq();
    return { streams: hub.size, lag: Math.max(0, head - (hub.oldestCursor ?? head)) };
  };
  const feedHistory = new FeedHistory(feedState, () => clock.now());
  // Open streams would keep the server from closing: end them first (clients resume by cursor).
  app.addHook('preClose', (done) => {
    feedHistory.close();
    hub.close();
    done();
  });
  // How many streams this replica serves (health output and tests).
  app.decorate('feedHubSize', () => hub.size);
  // Token Status List: references in tokens and the lists, unless turned off.
  const statusLists = config.statusList
    ? new StatusLists({
        clock,
        issuer,
        listSize: config.statusListSize,
        ttl: config.statusListTtl,
        lifetime: config.statusListLifetime,
        // Verifiers accept a token up to their skew past `exp`; five minutes more covers theirs too.
        tokenCover: Math.max(config.maxAccessTokenTtl, config.txnTokenTtl) + config.clockSkew + 300,
        keys,
        store: storage,
      })
    : undefined;
  // Shared Signals (SSF 1.0): receivers' streams, the transmitter reading the audit log, push delivery.
  const ssfWake = new SetWake();
  const ssfStreams = new SsfStreams({
    clock,
    issuer,
    store: storage,
    master,
    outbound: clientOutbound,
    minVerificationInterval: config.ssfMinVerificationInterval,
    maxStreamsPerReceiver: config.ssfMaxStreams,
  });
  const logError = (what: string) => (err: unknown) =>
    deps.logger.warn({ err: { message: (err as Error).message } }, `${what}; will retry`);
  const ssfPush = new SsfPushDelivery({
    clock,
    store: storage,
    outbound: clientOutbound,
    master,
    maxAttempts: config.ssfPushAttempts,
    retryBase: config.ssfRetryBase,
    onFailure: async (f) => {
      await events.emit('ssf.delivery_failed', {
        actor: 'system',
        subject: `stream:${f.stream.streamId}`,
        client_id: f.stream.clientId,
        outcome: 'failure',
        reason: f.error.split(':')[0]!.slice(0, 64),
        detail: {
          stream_id: f.stream.streamId,
          jti: f.set.jti,
          event_type: f.set.eventType,
          error: f.error,
          attempts: f.attempts,
          refused: f.refused,
          paused: f.paused,
        },
      });
      if (f.paused) await ssfTransmitter.streamUpdated(f.stream, 'paused', `delivery failed: ${f.error}`);
    },
    onError: logError('Shared Signals push failed'),
  });
  const ssfTransmitter = new SsfTransmitter({
    clock,
    issuer,
    store: storage,
    keys,
    maxQueue: config.ssfMaxQueue,
    interval: 1,
    onQueued: () => {
      ssfPush.nudge();
      ssfWake.notify();
    },
    onDropped: (stream, count, eventType) =>
      void events
        .emit('ssf.events_dropped', {
          actor: 'system',
          subject: `stream:${stream.streamId}`,
          client_id: stream.clientId,
          outcome: 'failure',
          reason: 'queue_full',
          detail: { stream_id: stream.streamId, event_type: eventType, count, queued: config.ssfMaxQueue },
        })
        .catch(() => undefined),
    onError: logError('Shared Signals transmitter pass failed'),
  });
  storage.onAuditAppended(() => ssfTransmitter.nudge());
  app.addHook('onReady', async () => {
    ssfTransmitter.start();
    ssfPush.start();
  });
  app.addHook('onClose', async () => {
    await ssfTransmitter.stop();
    await ssfPush.stop();
  });
  const caller = serviceCaller({
    clock,
    issuer,
    keys,
    clients,
    revocations: deps.revocations,
    authenticate,
    certificate,
  });
  // Routes that state their own credential: none, client authentication, the registration token.
  publicScope(app, (open) => {
    registerConsole(open, {
      sessions: consoleSessions,
      events,
      checkAdminToken: (token) => adminTokenValid(storage, master.secretHashKey, token),
      cookieName: consoleCookie,
      secure: secureCookies,
      users: {
        issuer,
        ensureClient: () => ensureConsoleClient(storage, issuer, clock),
        userOf: async (token) => {
          const r = verifyOwnToken(keys, issuer, token, epochSeconds(clock), config.clockSkew, issuer);
          if (!r.valid || r.claims.client_id !== CONSOLE_CLIENT_ID || r.claims.sub === r.claims.client_id)
            return undefined;
          if (await deps.revocations.check(r.claims)) return undefined;
          const user = await storage.getUser(r.claims.sub);
          return user && { sub: user.sub, username: user.username, roles: user.roles, disabled: user.disabled };
        },
      },
    });
    registerHealth(open, {
      clock,
      storage,
      keys,
      tokenPolicy: deps.tokenPolicy,
      draining: () => deps.draining?.() ?? false,
    });
    registerDiscovery(open, {
      issuer,
      signingAlg: () => keys.currentAlg ?? config.signingAlg,
      mtls: deps.https !== undefined || config.trustedProxies.length > 0,
      trustDomain,
      statusListAggregation: statusLists?.aggregationUri,
    });
    registerJwksEndpoint(open, { keys, maxAge: config.jwksMaxAge });
    if (statusLists) registerStatusListEndpoints(open, { lists: statusLists, clock });
    registerSsfConfiguration(open, { issuer });
    // What a token for the client itself needs (client_credentials, the JWT bearer grant).
    const serviceTokens = {
      clock,
      issuer,
      accessTokenTtl: config.accessTokenTtl,
      keys,
      statusLists,
      events,
      tokenPolicy: deps.tokenPolicy,
      certificate,
    };
    registerTokenEndpoint(open, {
      grants: [
        clientCredentialsGrant(serviceTokens),
        authorizationCodeGrant({
          clock,
          issuer,
          accessTokenTtl: config.accessTokenTtl,
          keys,
          statusLists,
          codes: storage,
          users: storage,
          consents,
          events,
          revocations: deps.revocations,
          tokenPolicy: deps.tokenPolicy,
          refresh,
        }),
        refreshTokenGrant({
          clock,
          issuer,
          accessTokenTtl: config.accessTokenTtl,
          keys,
          statusLists,
          users: storage,
          events,
          revocations: deps.revocations,
          tokenPolicy: deps.tokenPolicy,
          refresh,
        }),
        jwtBearerGrant({ ...serviceTokens, assertions }),
        tokenExchangeGrant({
          clock,
          issuer,
          trustDomain,
          accessTokenTtl: config.accessTokenTtl,
          maxActDepth: config.maxActDepth,
          txnTokenTtl: config.txnTokenTtl,
          clockSkew: config.clockSkew,
          keys,
          statusLists,
          users: storage,
          revocations: deps.revocations,
          tokenPolicy: deps.tokenPolicy,
          events,
        }),
      ],
      authenticate: authenticateAtToken,
      events,
    });
    registerAuthorizeEndpoints(open, {
      issuer,
      clock,
      clients,
      users: storage,
      codes: storage,
      pushed: storage,
      login: passwordLogin,
      transactions: new LoginTransactions(master),
      devices: new KnownDevices(master),
      policy: passwordPolicy,
      hasher,
      events,
      cookies,
      codeTtl: 60,
      sessions,
      consents,
      secondFactors: new SecondFactors({ users: storage, master, clock, issuerName: 'Latchkey', issuer }),
    });
    registerEndSessionEndpoint(open, {
      issuer,
      clock,
      keys,
      clients,
      sessions,
      sessionStore: storage,
      codes: storage,
      families: storage,
      refresh,
      revocations: deps.revocations,
      events,
      cookies,
      maxAccessTokenTtl: config.maxAccessTokenTtl,
    });
    registerParEndpoint(open, { clock, authenticate: authenticateAtToken, pushed: storage, ttl: 60 });
    registerUserinfoEndpoint(open, {
      issuer,
      clock,
      clockSkew: config.clockSkew,
      keys,
      revocations: deps.revocations,
      users: storage,
    });
    registerIntrospectionEndpoint(open, {
      clock,
      issuer,
      keys,
      revocations: deps.revocations,
      clients,
      authenticate,
      events,
    });
    // RFC 7009 §2.1: a public client may revoke its own tokens too.
    registerRevocationEndpoint(open, {
      clock,
      issuer,
      keys,
      revocations: deps.revocations,
      authenticate: authenticateAtToken,
      events,
      refresh,
    });
    registerClientConfiguration(open, registration);
    registerWorkloadEndpoints(open, {
      clock,
      ca: deps.workload.ca,
      trustDomain,
      ttlSeconds: config.workloadCertTtl,
      events,
      caller,
      requireAdmin,
      clients,
    });
  });
  serviceScope(app, caller, (service) => {
    registerFeedEndpoints(service, { clock, issuer, store: storage, hub, maxPage: config.feedMaxPage });
    registerSsfEndpoints(service, {
      issuer,
      streams: ssfStreams,
      transmitter: ssfTransmitter,
      store: storage,
      clients,
      events,
      pollWait: config.ssfPollWait,
      queued: (ms) => ssfWake.wait(ms),
    });
    registerPolicyFeed(service, { store: storage, clients });
    registerAuditIngest(service, {
      events,
      bodyLimit: 4 * config.jsonBodyLimit,
      onDropped: (clientId, n) => deps.metrics.reportedDropped.inc({ client_id: clientId }, n),
    });
  });
  const validator = new BundleValidator({ timeoutMs: config.policyValidationTimeout * 1000 });
  app.addHook('onClose', async () => validator.close());
  const publisher = new PolicyPublisher({
    clock,
    store: storage,
    events,
    issuer,
    feedTtl: config.maxAccessTokenTtl + config.clockSkew,
    validator,
  });
  // Everything behind the admin bearer, checked before the body is read. Registration is here
  // too: its initial access token is the admin bearer (RFC 7591 §3).
  adminScope(app, requireAdmin, (admin) => {
    registerClientRegistration(admin, registration);
    registerMetricsEndpoint(admin, {
      metrics: deps.metrics,
      sample: async () => {
        deps.metrics.auditPending.set(deps.audit.pending);
        deps.metrics.notificationsConnected.set(storage.feedNotificationsConnected() ? 1 : 0);
        const feed = await feedState();
        deps.metrics.feedStreams.set(feed.streams);
        deps.metrics.feedLag.set(feed.lag);
        const current = (await storage.listKeys()).find((k) => k.state === 'current');
        if (current?.activatedAt != null)
          deps.metrics.signingKeyAge.set(Math.max(0, epochSeconds(clock) - current.activatedAt));
      },
    });
    registerClientAdmin(admin, {
      clock,
      issuer,
      clients,
      events,
      revocations: deps.revocations,
      limits: { maxAccessTokenTtl: config.maxAccessTokenTtl, allowHttpJwksUri: !config.tls },
      spiffeIdOf,
    });
    registerAuditAdmin(admin, {
      clock,
      store: storage,
      keys,
      writer: deps.audit,
      checkpointer: deps.checkpointer,
      retention: deps.retention,
    });
    registerUserAdmin(admin, {
      clock,
      users: storage,
      events,
      revocations: deps.revocations,
      hasher: deps.passwords.hasher,
      policy: deps.passwords.policy,
    });
    registerConsentAdmin(admin, { users: storage, consents });
    registerFederationAdmin(admin, {
      clock,
      store: storage,
      clients,
      registry: federation,
      assertions,
      events,
      outboundAllow: config.outboundAllow,
    });
    registerAlertAdmin(admin, { clock, alerts: storage, events });
    registerAuditStream(admin, { store: storage, writer: deps.audit });
    registerStatsAdmin(admin, { clock, store: storage, writer: deps.audit, feed: feedHistory });
    registerConsoleAdmin(admin, { sessions: consoleSessions, events, issuer });
    registerPolicyAdmin(admin, { publisher, store: storage, bodyLimit: config.policyBodyLimit, validator });
    registerCaAdmin(admin, {
      ca: deps.workload.ca,
      events,
      defaultAnnounce: config.caRotateAnnounce ?? config.workloadCertTtl,
    });
    registerKeyAdmin(admin, {
      store: storage,
      rotator: deps.rotator,
      policy: { rotateEvery: config.keyRotationInterval, announce: config.keyAnnounceWindow, alg: config.signingAlg },
    });
  });
  return app;
}
