import { readFileSync } from 'node:fs';
import { checkMasterKey } from './keys/master_key_check.ts';
import { LatchkeyError } from './errors.ts';
import { PasswordHasher } from './users/password_hash.ts';
import type { LockoutPolicy } from './users/login_lockout.ts';
import { PasswordPolicy } from './users/password_policy.ts';
import { OutboundFetch } from './http/outbound_fetch.ts';
import type { FastifyInstance } from 'fastify';
import { type Clock, epochSeconds, systemClock } from '@latchkey/protocol';
import { pino, type Logger } from 'pino';
import { bootstrapAdminToken } from './admin/admin_token.ts';
import { buildApp } from './app.ts';
import { coalesce } from './coalesce.ts';
import { AuditWriter } from './audit/audit_writer.ts';
import { AuditCheckpointer, fileCheckpointSink } from './audit/audit_checkpointer.ts';
import { AlertRaiser } from './audit/alert_raiser.ts';
import { AuditRetention } from './audit/audit_retention.ts';
import { DetectionRunner } from './audit/detection_runner.ts';
import { buildDetectors } from './audit/detectors/index.ts';
import { WebhookSender } from './audit/webhook_sender.ts';
import type { Config } from './config.ts';
import { ServerEvents } from './events.ts';
import { Metrics } from './metrics.ts';
import { TokenPolicy } from './policy/token_policy.ts';
import { WorkloadCa } from './ca/workload_ca.ts';
import { KeyRing } from './keys/key_ring.ts';
import { KeyRotator } from './keys/key_rotator.ts';
import { RevocationLog } from './revocation/revocation_log.ts';
import { ClientCache } from './storage/client_cache.ts';
import { MasterKey } from './keys/master_key.ts';
import { openStorage } from './storage/open_storage.ts';
import type { Storage } from './storage/ports.ts';
import { loadTlsMaterial } from './tls/local_tls.ts';

export interface RunningIdp {
  app: FastifyInstance;
  config: Readonly<Config>;
  storage: Storage;
  /** The address it listens on (the issuer may name another host). */
  url: string;
  issuer: string;
  /** PEM of the local CA when the IdP serves a certificate it issued itself. */
  caPem: string | undefined;
  /** Set only when this start generated the bootstrap admin token. */
  generatedAdminToken: string | undefined;
  audit: AuditWriter;
  rotator: KeyRotator;
  detection: DetectionRunner;
  retention: AuditRetention;
  /** Stops accepting, finishes in-flight requests, flushes audit, closes storage. */
  close(): Promise<void>;
  /** SIGTERM: /readyz answers 503 draining at once, requests are served for LATCHKEY_SHUTDOWN_GRACE seconds, then close(). */
  shutdown(): Promise<void>;
}

export interface StartOptions {
  /** Logger to use instead of one built from the configured level. */
  logger?: Logger;
  /**
   * Where "now" comes from: token lifetimes, key and CA schedules, leases, revocation expiry,
   * audit times, windows. The system clock by default; tests pass a fake one and advance it.
   */
  clock?: Clock;
  /** Benchmarks only (`npm run bench`: issuance with audit on vs off): events are counted, never written. */
  benchmarkWithoutAudit?: boolean;
}

/** Starts the IdP: storage and migrations, master key, signing keys, TLS, audit, HTTP. */
export async function startIdp(config: Readonly<Config>, options: StartOptions = {}): Promise<RunningIdp> {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]'],
    });
  const master = MasterKey.load({ masterKey: config.masterKey, dataDir: config.dataDir });
  const clock = options.clock ?? systemClock;
  const storage = await openStorage({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, clock });
  try {
    // A database sealed with another master key (a backup restored elsewhere) is refused here, clearly.
    await checkMasterKey(storage, master);
    const generatedAdminToken = await bootstrapAdminToken(storage, master.secretHashKey, config.adminToken);
    const events = new ServerEvents(clock);
    const metrics = new Metrics();
    const audit = new AuditWriter(storage, {
      onError: (err) => {
        metrics.auditWriteFailures.inc();
        logger.error(
          { err: { message: (err as Error).message } },
          'audit write failed; the requests it recorded failed with 503',
        );
      },
    });
    if (!options.benchmarkWithoutAudit) events.setSink((e, tokenStatus) => audit.commit(e, tokenStatus));
    events.aggregateFailures({ windowMs: config.auditAggregateWindow * 1000 });
    events.observe((e) => {
      metrics.countEvent(e.type, e.outcome);
    });
    const keys = new KeyRing(storage, master, clock);
    // A client or key revocation must outlive every token and every workload certificate it covers.
    const revocations = new RevocationLog(
      storage,
      config.issuer,
      Math.max(config.maxAccessTokenTtl, config.workloadCertTtl) + config.clockSkew,
      clock,
    );
    const rotator = new KeyRotator({
      clock,
      feed: revocations,
      store: storage,
      ring: keys,
      events,
      policy: { rotateEvery: config.keyRotationInterval, announce: config.keyAnnounceWindow, alg: config.signingAlg },
      checkInterval: config.keyCheckInterval,
      retireGrace: config.maxAccessTokenTtl + config.clockSkew,
      onError: (err) => logger.error({ err: { message: (err as Error).message } }, 'key schedule failed; will retry'),
    });
    await rotator.start();
    const tls = config.tls
      ? await loadTlsMaterial({
          dataDir: config.dataDir,
          certFile: config.tlsCert,
          keyFile: config.tlsKey,
          hosts: [config.host, new URL(config.issuer).hostname.replace(/^\[|\]$/g, '')],
          master,
        })
      : undefined;
    // Every client lookup and change in this process goes through one cache, so local writes invalidate it.
    const clients = new ClientCache(storage, config.clientCacheTtl, clock);
    // A feed entry from any replica (PostgreSQL LISTEN/NOTIFY) may be a revoked key or client:
    // reload the keys and forget cached clients at once instead of at the next check or TTL.
    const reloadKeys = coalesce(
      () => keys.reload(),
      (err) => logger.warn({ err: { message: (err as Error).message } }, 'key reload failed'),
    );
    // The IdP's own Cedar policies (which client may have which audience) follow the active bundle.
    const tokenPolicy = new TokenPolicy(storage);
    await tokenPolicy.reload();
    const reloadTokenPolicy = coalesce(
      () => tokenPolicy.reload(),
      (err) => logger.warn({ err: { message: (err as Error).message } }, 'token policy reload failed'),
    );
    const unlisten = storage.onFeedAppended(() => {
      clients.clear();
      reloadKeys();
      reloadTokenPolicy();
    });
    const trustDomain =
      config.trustDomain ??
      new URL(config.issuer).hostname
        .replace(/^\[|\]$/g, '')
        .toLowerCase()
        .replace(/[^a-z0-9._-]/g, '-');
    const workloadCa = await WorkloadCa.open({
      clock,
      store: storage,
      master,
      trustDomain,
      retireAfter: config.workloadCertTtl + config.clockSkew,
      operator:
        config.caCert && config.caKey
          ? { certFile: config.caCert, keyFile: config.caKey, bundleFile: config.caBundle }
          : undefined,
    });
    const checkpointer = new AuditCheckpointer(
      storage,
      keys,
      config.issuer,
      clock,
      config.auditCheckpointFile ? fileCheckpointSink(config.auditCheckpointFile) : undefined,
    );
    const webhooks =
      config.alertWebhooks.length > 0
        ? new WebhookSender({
            clock,
            urls: config.alertWebhooks,
            secret: config.alertWebhookSecret!,
            attempts: config.alertWebhookAttempts,
            // The operator named these URLs: any address, but still capped in time and size.
            outbound: new OutboundFetch({
              allowHttp: true,
              allowSpecialAddresses: true,
              timeoutMs: 5000,
              maxBytes: 64 * 1024,
            }),
            onGiveUp: (alert, url, lastError) => {
              logger.warn({ alert: alert.id, url }, `alert webhook gave up: ${lastError}`);
              events
                .emit('alert.delivery_failed', {
                  actor: 'system',
                  subject: `alert:${alert.id}`,
                  outcome: 'failure',
                  reason: lastError,
                  detail: { alert_id: alert.id, url },
                })
                .catch(() => undefined);
            },
          })
        : undefined;
    const raiser = new AlertRaiser({
      clock,
      store: storage,
      clients,
      revocations,
      events,
      cooldown: config.alertCooldown,
      lock: { detectors: config.alertLock, seconds: config.alertLockSeconds },
      ...(webhooks ? { deliver: (a: Parameters<WebhookSender['send']>[0]) => webhooks.send(a) } : {}),
    });
    const detection = new DetectionRunner({
      clock,
      store: storage,
      detectors: buildDetectors(config),
      raiser,
      interval: config.detectInterval,
      onError: (err) => logger.error({ err: { message: (err as Error).message } }, 'detection pass failed; will retry'),
    });
    // What this replica appends reaches detection in memory; other replicas' rows are read from the log.
    storage.onAuditAppended(detection.appended);
    const retention = new AuditRetention({
      clock,
      store: storage,
      checkpointer,
      events,
      retention: config.auditRetention,
    });
    const passwordPolicy = new PasswordPolicy({
      minLength: config.passwordMinLength,
      ...(config.passwordBlocklistFile ? { blocklistFile: config.passwordBlocklistFile } : {}),
    });
    try {
      passwordPolicy.load();
    } catch (err) {
      throw new LatchkeyError(
        'config_invalid',
        `passwordBlocklistFile ${config.passwordBlocklistFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
        { cause: err },
      );
    }
    let outboundCa: string | undefined;
    if (config.outboundCaFile) {
      try {
        outboundCa = readFileSync(config.outboundCaFile, 'utf8');
      } catch (err) {
        throw new LatchkeyError(
          'config_invalid',
          `outboundCaFile ${config.outboundCaFile}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
          { cause: err },
        );
      }
      if (!outboundCa.includes('-----BEGIN CERTIFICATE-----'))
        throw new LatchkeyError('config_invalid', `outboundCaFile ${config.outboundCaFile}: no PEM certificate in it`);
    }
    const lockout: LockoutPolicy = {
      freeFailures: config.loginFreeFailures,
      accountFailures: config.loginAccountFailures,
      sourceFailures: config.loginSourceFailures,
      baseDelaySeconds: 1,
      maxDelaySeconds: config.loginMaxDelay,
      windowSeconds: config.loginFailureWindow,
    };
    let draining = false;
    const app = buildApp({
      clock,
      config,
      storage,
      keys,
      rotator,
      revocations,
      clients,
      master,
      events,
      logger,
      https: tls,
      outboundCa,
      audit,
      checkpointer,
      retention,
      metrics,
      tokenPolicy,
      workload: { ca: workloadCa, trustDomain },
      passwords: {
        hasher: new PasswordHasher({ ln: config.passwordHashCost, r: 8, p: 1 }),
        policy: passwordPolicy,
        lockout,
      },
      draining: () => draining,
    });
    checkpointer.start(config.auditCheckpointInterval, (err) =>
      logger.warn({ err: { message: (err as Error).message } }, 'audit checkpoint failed; will retry'),
    );
    await app.listen({ port: config.port, host: config.host });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const hostForUrl = config.host.includes(':') ? `[${config.host}]` : config.host;
    const url = `${config.tls ? 'https' : 'http'}://${hostForUrl}:${port}`;
    const purge = setInterval(() => {
      storage
        .purgeExpired(epochSeconds(clock))
        .then(() => storage.purgeLoginFailures(clock.now() - config.loginFailureWindow * 1000))
        .catch((err: Error) => logger.warn({ err: { message: err.message } }, 'purge failed'));
    }, 60_000);
    purge.unref();
    detection.start();
    const prune = (): void =>
      void retention
        .prune()
        .catch((err: Error) => logger.warn({ err: { message: err.message } }, 'audit pruning failed; will retry'));
    const pruneTimer =
      config.auditRetention > 0
        ? setInterval(prune, Math.min(3600, Math.max(60, config.auditRetention / 10)) * 1000)
        : undefined;
    pruneTimer?.unref();
    if (config.auditRetention > 0) prune();
    const detectionRunner = detection;
    let closing: Promise<void> | undefined;
    const running: RunningIdp = {
      app,
      config,
      storage,
      url,
      issuer: config.issuer,
      caPem: tls?.caPem,
      generatedAdminToken,
      audit,
      rotator,
      detection: detectionRunner,
      retention,
      async shutdown() {
        // Drain: not ready at once (load balancers stop sending), still serving for the grace period, then close.
        draining = true;
        if (config.shutdownGrace > 0) await new Promise((r) => setTimeout(r, config.shutdownGrace * 1000));
        await running.close();
      },
      close() {
        closing ??= (async () => {
          clearInterval(purge);
          if (pruneTimer) clearInterval(pruneTimer);
          await rotator.stop();
          checkpointer.stop();
          unlisten();
          await app.close();
          await detectionRunner.stop();
          await webhooks?.close();
          events.flushAggregated();
          await audit.close();
          // Pin what this process wrote last.
          await checkpointer.checkpoint().catch(() => undefined);
          await storage.close();
        })();
        return closing;
      },
    };
    return running;
  } catch (err) {
    await storage.close().catch(() => {});
    throw err;
  }
}
