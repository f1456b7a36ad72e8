import { randomBytes } from 'node:crypto';
import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyInstance } from 'fastify';
import Type from 'typebox';
import { OAuthError } from '../../errors.ts';
import { FORM_CONTENT_TYPE, type FormBody } from '../../http/form.ts';
import { oauthErrors } from '../../http/schemas.ts';
import type { PushedRequestStore } from '../../storage/ports.ts';
import type { ClientAuthenticator } from '../client_auth/authenticate_client.ts';
import { AuthorizeError, checkAuthorizationRequest } from './authorization_request.ts';
import { sha256 } from '../../secrets.ts';

/** RFC 9126 §2.2: the request_uri is this prefix and a reference the client cannot guess. */
export const REQUEST_URI_PREFIX = 'urn:ietf:params:oauth:request_uri:';

export interface ParDeps {
  clock: Clock;
  authenticate: ClientAuthenticator;
  pushed: Pick<PushedRequestStore, 'savePushedRequest'>;
  /** Seconds a pushed request may wait for the browser (RFC 9126 §2.2: short; 60 s is typical). */
  ttl: number;
}

/**
 * POST /par (RFC 9126): the client sends its authorization request straight to the IdP, with
 * its client authentication, and gets a one-time `request_uri` for the browser — so the request
 * is authenticated, cannot be changed in the browser, and keeps the URL short. The request is
 * checked here exactly as /authorize checks one (§2.1), and errors are answered here, as JSON
 * (§2.3), not sent to the redirect URI.
 */
export function registerParEndpoint(app: FastifyInstance, deps: ParDeps): void {
  app.post(
    '/par',
    {
      config: { credential: 'client' },
      schema: {
        tags: ['OAuth'],
        summary: 'RFC 9126 pushed authorization request',
        consumes: [FORM_CONTENT_TYPE],
        response: {
          201: Type.Object({ request_uri: Type.String(), expires_in: Type.Integer() }),
          ...oauthErrors(400, 401, 413, 415, 429),
        },
      },
    },
    async (request, reply) => {
      const form = request.body as FormBody;
      const { client } = await deps.authenticate(request, form);
      // §2.1: request_uri cannot itself be pushed.
      if (form.has('request_uri')) throw new OAuthError('invalid_request', 'request_uri must not be pushed');
      const params = new Map(
        [...form].filter(([k]) => !['client_secret', 'client_assertion', 'client_assertion_type'].includes(k)),
      );
      params.set('client_id', [client.clientId]);
      let checked: ReturnType<typeof checkAuthorizationRequest>;
      try {
        checked = checkAuthorizationRequest(params, client, client.metadata.scope);
      } catch (err) {
        if (!(err instanceof AuthorizeError)) throw err;
        throw new OAuthError(err.error, err.message);
      }
      const reference = randomBytes(32).toString('base64url');
      await deps.pushed.savePushedRequest(
        sha256(reference),
        client.clientId,
        checked,
        epochSeconds(deps.clock) + deps.ttl,
      );
      return reply
        .code(201)
        .header('cache-control', 'no-store')
        .send({ request_uri: `${REQUEST_URI_PREFIX}${reference}`, expires_in: deps.ttl });
    },
  );
}
