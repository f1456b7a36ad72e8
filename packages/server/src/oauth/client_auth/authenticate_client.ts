import type { Clock } from '@latchkey/protocol';
import type { FastifyRequest } from 'fastify';
import { OAuthError, invalidClient, invalidRequest } from '../../errors.ts';
import type { ServerEvents } from '../../events.ts';
import type { FormBody } from '../../http/form.ts';
import type { ClientRecord, ClientStore } from '../../storage/ports.ts';
import type { FailureLimiter } from './failure_limiter.ts';
import type { ClientAuthMethod } from './types.ts';

export interface AuthenticatedClient {
  client: ClientRecord;
  /** The registered method, or how else it authenticated (`federation:<rule>`). */
  method: string;
}

export interface ClientAuthenticatorDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  methods: ClientAuthMethod[];
  clients: Pick<ClientStore, 'getClient'>;
  events: ServerEvents;
  limiter: FailureLimiter;
}

export type ClientAuthenticator = (request: FastifyRequest, form: FormBody) => Promise<AuthenticatedClient>;

/**
 * Authenticates the client of a token, introspection or revocation request: exactly one method
 * (RFC 6749 §2.3: MUST NOT use more than one), the one the client registered, an enabled client.
 * A failure is an event of its own; a success is recorded in the one event of the action it
 * authenticated (`detail.auth_method`), so each token costs one audit row. Failures are rate
 * limited per source address and per client and source (refused before any verification); failures
 * against one client from everywhere slow down further failures, never a correct credential.
 */
export function clientAuthenticator(deps: ClientAuthenticatorDeps): ClientAuthenticator {
  return async (request, form) => {
    const started = performance.now();
    const authorization = request.headers.authorization;
    const present = deps.methods.filter((m) => m.present(form, authorization, request));
    const base = { actor: 'anonymous', request_id: request.id, source_ip: request.ip } as const;
    if (present.length > 1) {
      await deps.events.emit('client.auth_failed', { ...base, outcome: 'failure', reason: 'multiple_methods' });
      throw invalidRequest('more than one client authentication method was used');
    }
    const method = present[0];
    if (!method) {
      await deps.events.emit('client.auth_failed', { ...base, outcome: 'failure', reason: 'no_credentials' });
      throw invalidClient('client authentication is required');
    }
    let clientId: string | undefined;
    // Keys an attacker throttles only themselves with: the source, and this client from this source.
    // Checked before the credentials, so a flood costs no verification work.
    const sourceKeys = (): string[] => [
      `ip:${request.ip}`,
      ...(clientId ? [`client-ip:${clientId}\u0000${request.ip}`] : []),
    ];
    // Failures against one client from everywhere: counted, but a block on this key only slows
    // further *failures* — a correct credential is never refused because someone else failed.
    const clientKey = (): string[] => (clientId ? [`client:${clientId}`] : []);
    const throttled = (wait: number) =>
      new OAuthError('invalid_client', 'too many failed authentication attempts; try again later', 429, {
        'retry-after': String(wait),
      });
    try {
      const creds = method.read(form, authorization, request);
      clientId = creds.clientId;
      const wait = deps.limiter.blockedFor(sourceKeys());
      if (wait > 0) throw throttled(wait);
      const client = clientId ? await deps.clients.getClient(clientId) : undefined;
      if (!client) {
        // Same work as a known client, so timing does not reveal which ids exist.
        await creds
          .verify({
            clientId: '',
            metadata: { grant_types: [], token_endpoint_auth_method: method.method, audiences: [] },
            secretHash: null,
            registrationTokenHash: '',
            createdAt: 0,
            updatedAt: 0,
            disabled: true,
            lockedUntil: null,
          })
          .catch(() => {});
        throw invalidClient('client authentication failed', 'unknown_client');
      }
      if (!(method.accepts ?? [method.method]).includes(client.metadata.token_endpoint_auth_method))
        throw invalidClient(`client is registered for ${client.metadata.token_endpoint_auth_method}`, 'wrong_method');
      await creds.verify(client);
      if (client.disabled) throw invalidClient('client is disabled', 'client_disabled');
      if (client.lockedUntil !== null && client.lockedUntil > deps.clock.now() / 1000)
        throw invalidClient('client is locked after suspicious activity', 'client_locked');
      const formClientId = form.get('client_id')?.[0];
      if (formClientId !== undefined && formClientId !== client.clientId)
        throw invalidClient('client_id does not match the authenticated client', 'client_id_mismatch');
      return { client, method: creds.reported ?? client.metadata.token_endpoint_auth_method };
    } catch (caught) {
      if (caught instanceof OAuthError) {
        let err = caught;
        const reason = err.status === 429 ? 'rate_limited' : (err.reason ?? err.error);
        if (err.status !== 429) {
          const wait = deps.limiter.blockedFor(clientKey());
          deps.limiter.recordFailure([...sourceKeys(), ...clientKey()]);
          if (wait > 0 && err.error === 'invalid_client') err = throttled(wait);
        }
        await deps.events.emit('client.auth_failed', {
          ...base,
          ...(clientId ? { client_id: clientId.slice(0, 128) } : {}),
          outcome: 'failure',
          reason,
          detail: {
            method: method.method,
            description: err.message,
            ...caught.auditDetail,
            ...(caught.reason === 'client_id_mismatch'
              ? { presented_client_id: String(form.get('client_id')?.[0]).slice(0, 128) }
              : {}),
          },
        });
        // Every refused authentication is answered no sooner than FAILURE_FLOOR_MS after it began,
        // so whether the client id exists (a cached known client vs a database miss, a secret
        // checked or not) cannot be read from the response time.
        if (err.error === 'invalid_client' && err.status === 401) await untilFloor(started);
        // RFC 6749 §5.2: 401 with WWW-Authenticate naming the scheme the client tried.
        if (err.error === 'invalid_client' && err.status === 401 && method.method !== 'client_secret_basic') {
          throw new OAuthError('invalid_client', err.message, 401);
        }
        throw err;
      }
      throw caught;
    }
  };
}

/** The shortest time a refused client authentication takes (ms); far above any path's own cost. */
export const FAILURE_FLOOR_MS = 10;

const untilFloor = (started: number): Promise<void> => {
  const wait = started + FAILURE_FLOOR_MS - performance.now();
  return wait > 0 ? new Promise((r) => setTimeout(r, Math.ceil(wait) + 1)) : Promise.resolve();
};
