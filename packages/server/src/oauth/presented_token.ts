import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { FastifyRequest } from 'fastify';
import { invalidRequest } from '../errors.ts';
import type { ServerEvents } from '../events.ts';
import { param, readForm } from '../http/form.ts';
import type { KeyRing } from '../keys/key_ring.ts';
import { verifyOwnToken, type OwnTokenResult } from '../keys/own_token_verifier.ts';
import type { ClientRecord } from '../storage/ports.ts';
import type { ClientAuthenticator } from './client_auth/authenticate_client.ts';

/** What the introspection and revocation endpoints both need. */
export interface PresentedTokenDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  issuer: string;
  keys: Pick<KeyRing, 'publishedKey'>;
  authenticate: ClientAuthenticator;
  events: ServerEvents;
}

export interface PresentedToken {
  caller: ClientRecord;
  authMethod: string;
  /** The token checked as one of ours, with expiry judged without skew (the IdP's clock decides). */
  result: OwnTokenResult;
  now: number;
}

/**
 * The common first steps of RFC 7662 §2.1 and RFC 7009 §2.1: a form body, an authenticated
 * client, a `token` parameter, and the token checked against this IdP's keys.
 */
export async function readPresentedToken(request: FastifyRequest, deps: PresentedTokenDeps): Promise<PresentedToken> {
  const form = readForm(request);
  const { client: caller, method } = await deps.authenticate(request, form);
  const token = param(form, 'token');
  if (!token) throw invalidRequest('token is missing');
  const now = epochSeconds(deps.clock);
  return { caller, authMethod: method, result: verifyOwnToken(deps.keys, deps.issuer, token, now, 0), now };
}
