import { X509Certificate } from 'node:crypto';
import type { RequestListener } from 'node:http';
import https from 'node:https';
import type { Server as HttpsServer, ServerOptions as HttpsServerOptions } from 'node:https';
import type { AgentOptions } from 'node:https';
import type {
  ConnectionOptions,
  PeerCertificate,
  SecureContextOptions,
  Server as TlsServer,
  TLSSocket,
} from 'node:tls';
import { Agent as UndiciAgent, Dispatcher, fetch as undiciFetch } from 'undici';
import {
  type Clock,
  TLS_OPTIONS,
  certificateThumbprint,
  serviceClientId,
  startTimer,
  systemClock,
  WORKLOAD_SCOPE,
} from '@latchkey/protocol';
import { createIdpConnection, type IdpCredentials } from '../connection/idp_connection.ts';
import type { Verifier } from '../verify/verifier.ts';
import { peerAllowed, spiffeIdOfPeer, type PeerPolicy } from './peer_identity.ts';
import { createWorkloadCsr, type WorkloadKeyType } from './workload_csr.ts';

export type { WorkloadKeyType } from './workload_csr.ts';

/** Options of {@link createWorkloadIdentity}. */
export interface WorkloadIdentityOptions {
  /** Where "now" comes from (epoch milliseconds); the system clock by default. Tests pass a fake one. */
  clock?: Clock;
  /** The IdP's issuer URL. */
  issuer: string;
  /**
   * How the workload authenticates to the IdP for a certificate: its client credentials (Basic),
   * or a token client (any token source) asked for tokens with the `workload` scope and the IdP
   * as their audience (Bearer) — the forms of {@link IdpCredentials}.
   */
  credentials:
    | IdpCredentials
    | { tokenClient: { getToken(request: { audience?: string; scope?: string }): Promise<string> } };
  /** Key type generated in-process for each certificate (default P-256). */
  keyType?: WorkloadKeyType;
  /**
   * Which peers this workload accepts as servers and as clients, by SPIFFE ID. Without it any
   * peer with a certificate from the trust bundle is accepted.
   */
  authorizePeer?: PeerPolicy;
  /**
   * PEM of the CA that signed the IdP's own HTTPS certificate when it is not a public one (the
   * IdP's local CA, `<data>/ca.pem`). The IdP is verified by host name as usual; renewals present
   * the current certificate.
   */
  idpCa?: string;
  /** Share of a certificate's lifetime after which it is renewed (default 0.5). */
  renewAt?: number;
  /** Random spread of the renewal point, as a share of the lifetime either way (default 0.1). */
  jitter?: number;
  /** Backoff between failed renewals, in milliseconds: from `min` doubling to `max` (default 1000 to 30000). */
  retry?: { min?: number; max?: number };
  /**
   * A verifier with credentials (it follows the IdP's revocation feed): peers whose client was
   * revoked after their certificate was issued are refused at once, and open connections from
   * them are closed when the revocation arrives — not only when their certificate expires.
   */
  revocations?: Pick<Verifier, 'clientRevoked' | 'onClientRevoked'>;
  /** Called after each rotation, and with each renewal error (the current certificate stays in use). */
  onRotate?: (identity: WorkloadIdentity) => void;
  onError?: (err: Error) => void;
}

/** The certificate a workload identity holds now. */
export interface WorkloadCertificate {
  /** PEM: the certificate, then any intermediates. */
  pem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  /** RFC 8705 §3.1 thumbprint (`cnf.x5t#S256` of tokens bound to it). */
  thumbprint: string;
}

/** What {@link WorkloadIdentity.health} reports. */
export interface WorkloadIdentityHealth {
  /** False once the certificate has expired without a renewal. */
  ok: boolean;
  spiffeId: string;
  expiresAt: string;
  nextRenewalAt: string;
  rotations: number;
  failedRenewals: number;
  lastError: string | null;
}

/** A workload's SPIFFE identity: a short-lived certificate it renews itself, and TLS helpers that follow it. */
export interface WorkloadIdentity {
  readonly spiffeId: string;
  readonly certificate: WorkloadCertificate;
  /** The trust bundle (PEM) peers are verified against; refreshed with every renewal. */
  readonly trustBundlePem: string;
  /**
   * Options for `https.createServer` / `tls.createServer`: this certificate, client certificates
   * required and verified against the bundle, TLS 1.2+ with modern ciphers. A snapshot: use
   * {@link WorkloadIdentity.attachServer} (or {@link WorkloadIdentity.createServer}) to follow rotation.
   */
  serverOptions(): HttpsServerOptions;
  /**
   * Keeps a TLS/HTTPS server on the current certificate and bundle (`setSecureContext` on each
   * rotation) and closes connections from peers outside `authorizePeer`.
   */
  attachServer<S extends TlsServer | HttpsServer>(server: S): S;
  /** An HTTPS server with mutual TLS that follows rotation. */
  createServer(handler?: RequestListener): HttpsServer;
  /**
   * Options for `tls.connect`: this certificate, the server verified against the bundle and,
   * instead of a host name, against `authorizePeer` by SPIFFE ID.
   */
  clientOptions(): ConnectionOptions;
  /** An `https.Agent` that presents the current certificate; connections made before a rotation are not reused after it. */
  readonly agent: https.Agent;
  /** An undici dispatcher that presents the current certificate (a new connection pool per rotation). */
  readonly dispatcher: Dispatcher;
  /** undici's fetch through {@link WorkloadIdentity.dispatcher}. */
  readonly fetch: typeof fetch;
  /**
   * undici's fetch to the IdP: verifies the IdP by host name (trusting `idpCa`) and presents the
   * current certificate — so tokens obtained through it can be bound to it (RFC 8705 §3), and a
   * client registered for `tls_client_auth` authenticates with it.
   */
  readonly idpFetch: typeof fetch;
  /** Subscribes to rotations; returns the unsubscribe function. */
  onRotate(listener: (identity: WorkloadIdentity) => void): () => void;
  /** Renews now (also what the timer does). */
  renew(): Promise<void>;
  health(): WorkloadIdentityHealth;
  /** Stops renewing and closes the client pools. */
  close(): Promise<void>;
}

interface Current {
  keyPem: string;
  certificate: WorkloadCertificate;
  bundlePem: string;
  spiffeId: string;
  generation: number;
}

/** A pool per certificate generation: `dispatch` always goes to the newest; old pools finish their requests and close. */
class RotatingDispatcher extends Dispatcher {
  private current: UndiciAgent;
  private readonly make: () => UndiciAgent;

  constructor(make: () => UndiciAgent) {
    super();
    this.make = make;
    this.current = make();
  }
  rotate(): void {
    const old = this.current;
    this.current = this.make();
    void old.close().catch(() => undefined);
  }
  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.current.dispatch(options, handler);
  }
  override async close(): Promise<void> {
    await this.current.close();
  }
  override async destroy(): Promise<void> {
    await this.current.destroy();
  }
}

/**
 * Obtains and keeps a workload identity: generates a key pair in-process (the private key never
 * leaves it), has the IdP's CA certify it for the workload's SPIFFE ID, renews it at about half
 * its lifetime (with jitter, so a fleet does not renew at once) with a fresh key each time, and
 * retries with backoff while the IdP is unreachable — the current certificate stays in use until
 * it expires. Servers and clients built from it follow each rotation without dropping requests.
 *
 * @example
 * ```ts
 * import { createWorkloadIdentity, peerSpiffeId } from '@latchkey/sdk/workload';
 * const id = await createWorkloadIdentity({
 *   issuer: 'https://idp.internal',
 *   credentials: { clientId: 'orders', clientSecret: process.env.ORDERS_SECRET! },
 *   authorizePeer: ['spiffe://idp.internal/svc/checkout'],
 * });
 * id.createServer((req, res) => res.end(`hello ${peerSpiffeId(req)}`)).listen(8443);
 * const res = await id.fetch('https://billing.internal:8443/invoices'); // mTLS, rotates by itself
 * ```
 */
export async function createWorkloadIdentity(options: WorkloadIdentityOptions): Promise<WorkloadIdentity> {
  const idpTrust = options.idpCa ? { ca: options.idpCa } : {};
  // The first certificate is requested without one; every renewal presents the current one.
  const bootstrap = new UndiciAgent({ connect: { ...idpTrust, ...TLS_OPTIONS } as never });
  let idpDispatcher: RotatingDispatcher | undefined;
  const f = ((input: string, init?: RequestInit) =>
    undiciFetch(input, {
      ...(init as object),
      dispatcher: idpDispatcher ?? bootstrap,
    } as never)) as unknown as typeof fetch;
  const keyType = options.keyType ?? 'P-256';
  const clock = options.clock ?? systemClock;
  const renewShare = options.renewAt ?? 0.5;
  const jitterShare = options.jitter ?? 0.1;
  const minDelay = options.retry?.min ?? 1000;
  const maxDelay = options.retry?.max ?? 30_000;
  const listeners = new Set<(identity: WorkloadIdentity) => void>();
  if (options.onRotate) listeners.add(options.onRotate);
  const servers = new Set<TlsServer>();
  /** Open server-side connections by peer client id, to close when that client is revoked. */
  const connections = new Map<TLSSocket, string>();
  let current: Current;
  let cancelTimer: (() => void) | undefined;
  let closed = false;
  let rotations = 0;
  let failedRenewals = 0;
  let consecutiveFailures = 0;
  let lastError: string | null = null;
  let nextRenewalAt = 0;
  let renewing: Promise<void> | undefined;

  // The IdP connection's one way of building the Authorization header, over this workload's own
  // fetch (which presents the current certificate to the IdP).
  const c = options.credentials;
  const idp = createIdpConnection({
    issuer: options.issuer,
    credentials: 'tokenClient' in c ? { tokenSource: c.tokenClient } : c,
    fetch: f,
  });
  const authorization = (): Promise<string> => idp.authorization(WORKLOAD_SCOPE);

  const obtain = async (generation: number): Promise<Current> => {
    const { privateKeyPem, csrPem } = await createWorkloadCsr(keyType);
    const res = await f(`${options.issuer}/workload/certificate`, {
      method: 'POST',
      headers: { authorization: await authorization(), 'content-type': 'application/json' },
      body: JSON.stringify({ csr: csrPem }),
    });
    const body = (await res.json().catch(() => ({}))) as {
      certificate?: string;
      trust_bundle?: string;
      spiffe_id?: string;
      error?: string;
      error_description?: string;
    };
    if (
      !res.ok ||
      typeof body.certificate !== 'string' ||
      typeof body.trust_bundle !== 'string' ||
      typeof body.spiffe_id !== 'string'
    ) {
      throw new Error(
        `the IdP refused a workload certificate: HTTP ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`.trim(),
      );
    }
    const leaf = new X509Certificate(body.certificate);
    return {
      keyPem: privateKeyPem,
      certificate: {
        pem: body.certificate,
        serial: leaf.serialNumber,
        notBefore: new Date(leaf.validFrom),
        notAfter: new Date(leaf.validTo),
        thumbprint: certificateThumbprint(leaf.raw),
      },
      bundlePem: body.trust_bundle,
      spiffeId: body.spiffe_id,
      generation,
    };
  };

  const schedule = (ms: number): void => {
    if (closed) return;
    cancelTimer?.();
    nextRenewalAt = clock.now() + ms;
    // On the clock's timers: a test advances a fake clock past the renewal point instead of waiting.
    cancelTimer = startTimer(clock, () => void identity.renew().catch(() => undefined), ms);
  };

  const scheduleRenewal = (): void => {
    const issuedAt = clock.now();
    const life = current.certificate.notAfter.getTime() - issuedAt;
    const jitter = (Math.random() * 2 - 1) * jitterShare * life;
    schedule(Math.max(0, life * renewShare + jitter));
  };

  const serverSecureContext = (): SecureContextOptions => ({
    key: current.keyPem,
    cert: current.certificate.pem,
    ca: current.bundlePem,
    ...TLS_OPTIONS,
  });

  /** The client id a peer's SPIFFE ID names in this trust domain (`spiffe://<td>/svc/<id>`). */
  const peerClientId = (spiffeId: string | undefined): string | undefined =>
    spiffeId === undefined
      ? undefined
      : serviceClientId(spiffeId, current.spiffeId.slice('spiffe://'.length).split('/')[0]);
  /** Why a verified peer certificate is not acceptable, or undefined. */
  const refusal = (cert: PeerCertificate): string | undefined => {
    const id = spiffeIdOfPeer(cert);
    if (!peerAllowed(options.authorizePeer, id)) return `${id ?? '(no SPIFFE ID)'} is not an allowed peer`;
    const clientId = peerClientId(id);
    if (
      options.revocations &&
      clientId !== undefined &&
      options.revocations.clientRevoked(clientId, Date.parse(cert.valid_from) / 1000)
    )
      return `${id} was revoked`;
    return undefined;
  };

  const checkServer = (_host: string, cert: PeerCertificate): Error | undefined => {
    // The chain was verified against the bundle already; the name that matters is the SPIFFE ID.
    const why = refusal(cert);
    return why ? new Error(`server ${why}`) : undefined;
  };

  const clientOptions = (): ConnectionOptions => ({
    ...serverSecureContext(),
    rejectUnauthorized: true,
    checkServerIdentity: checkServer,
  });

  class RotatingHttpsAgent extends https.Agent {
    constructor(opts: AgentOptions) {
      super(opts);
    }
    // Pools and TLS sessions are keyed by the certificate generation: a session resumed after a
    // rotation would still present the old certificate to the server.
    override getName(opts?: Parameters<https.Agent['getName']>[0]): string {
      return `${super.getName(opts)}:latchkey-gen-${current.generation}`;
    }
    override createConnection(...args: unknown[]): never {
      const opts = args[0] as Record<string, unknown>;
      Object.assign(opts, clientOptions());
      return (
        https.Agent.prototype as unknown as { createConnection: (...a: unknown[]) => never }
      ).createConnection.apply(this, args);
    }
    /** Closes idle pooled sockets of older certificate generations (or all of them). */
    dropIdle(all = false): void {
      const free = (this as unknown as { freeSockets: Record<string, TLSSocket[]> }).freeSockets;
      for (const [name, sockets] of Object.entries(free))
        if (all || !name.endsWith(`:latchkey-gen-${current.generation}`)) for (const s of sockets) s.destroy();
    }
  }

  try {
    current = await obtain(0);
  } finally {
    void bootstrap.close().catch(() => undefined);
  }
  idpDispatcher = new RotatingDispatcher(
    () =>
      new UndiciAgent({
        connect: { key: current.keyPem, cert: current.certificate.pem, ...idpTrust, ...TLS_OPTIONS } as never,
      }),
  );
  const idpFetch = f;
  const agent = new RotatingHttpsAgent({ keepAlive: true });
  const dispatcher = new RotatingDispatcher(() => new UndiciAgent({ connect: clientOptions() as never }));
  const boundFetch = ((input: string | URL | Request, init?: RequestInit) =>
    undiciFetch(input as string, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;

  const identity: WorkloadIdentity = {
    get spiffeId() {
      return current.spiffeId;
    },
    get certificate() {
      return current.certificate;
    },
    get trustBundlePem() {
      return current.bundlePem;
    },
    serverOptions: () => ({ ...serverSecureContext(), requestCert: true, rejectUnauthorized: true }),
    attachServer(server) {
      servers.add(server as TlsServer);
      (server as TlsServer).on('secureConnection', (socket: TLSSocket) => {
        // OpenSSL verified the chain (rejectUnauthorized); the allowlist and revocations decide by SPIFFE ID.
        if (!socket.authorized || refusal(socket.getPeerCertificate()) !== undefined) {
          socket.destroy();
          return;
        }
        // The peer's identity is read once per connection: it must not change by renegotiation.
        socket.disableRenegotiation();
        const peer = peerClientId(spiffeIdOfPeer(socket.getPeerCertificate()));
        if (peer !== undefined && options.revocations) {
          connections.set(socket, peer);
          socket.once('close', () => connections.delete(socket));
        }
      });
      (server as TlsServer).on('close', () => servers.delete(server as TlsServer));
      return server;
    },
    createServer(handler) {
      const server = handler
        ? https.createServer(identity.serverOptions(), handler)
        : https.createServer(identity.serverOptions());
      return identity.attachServer(server);
    },
    clientOptions,
    agent,
    dispatcher,
    fetch: boundFetch,
    idpFetch,
    onRotate(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    renew() {
      renewing ??= (async () => {
        try {
          const next = await obtain(current.generation + 1);
          current = next;
          rotations++;
          consecutiveFailures = 0;
          lastError = null;
          for (const server of servers) server.setSecureContext(serverSecureContext());
          dispatcher.rotate();
          idpDispatcher!.rotate();
          agent.dropIdle();
          scheduleRenewal();
          for (const l of listeners) {
            try {
              l(identity);
            } catch {
              /* a listener's failure is its own */
            }
          }
        } catch (err) {
          failedRenewals++;
          consecutiveFailures++;
          lastError = (err as Error).message;
          options.onError?.(err as Error);
          // Back off while the current certificate is still good; never wait past its expiry by much.
          const left = current.certificate.notAfter.getTime() - clock.now();
          const backoff = Math.min(maxDelay, minDelay * 2 ** (consecutiveFailures - 1)) * (0.75 + Math.random() * 0.5);
          schedule(left > 0 ? Math.min(backoff, Math.max(minDelay, left / 2)) : backoff);
          throw err;
        } finally {
          renewing = undefined;
        }
      })();
      return renewing;
    },
    health() {
      return {
        ok: current.certificate.notAfter.getTime() > clock.now(),
        spiffeId: current.spiffeId,
        expiresAt: current.certificate.notAfter.toISOString(),
        nextRenewalAt: new Date(nextRenewalAt).toISOString(),
        rotations,
        failedRenewals,
        lastError,
      };
    },
    async close() {
      closed = true;
      unsubscribe?.();
      cancelTimer?.();
      agent.destroy();
      await Promise.all([dispatcher.close(), idpDispatcher!.close()]);
    },
  };
  // A revoked peer: its open connections to our servers close, and our pools reconnect (and re-check).
  const unsubscribe = options.revocations?.onClientRevoked((clientId) => {
    for (const [socket, peer] of connections) if (peer === clientId) socket.destroy();
    dispatcher.rotate();
    agent.dropIdle(true);
  });
  scheduleRenewal();
  return identity;
}
