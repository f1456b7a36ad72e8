import type { FastifyRequest } from 'fastify';
import type { GrantType } from '@latchkey/protocol';
import type { FormBody } from '../../http/form.ts';
import type { ClientRecord } from '../../storage/ports.ts';

/** The RFC 6749 §5.1 success body. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope?: string;
}

export interface GrantContext {
  request: FastifyRequest;
  form: FormBody;
  client: ClientRecord;
  /** How the client authenticated, recorded with the issuance event. */
  authMethod: string;
}

/** One grant type: the token endpoint dispatches through a Map keyed by `grant_type`. */
export interface GrantHandler {
  grantType: GrantType;
  /** Parameters that may appear more than once (RFC 8707 `resource`); every other one is single. */
  multiValued: readonly string[];
  handle(ctx: GrantContext): Promise<TokenResponse>;
}
