import type { FastifyRequest } from 'fastify';
import type { GrantType } from '@latchkey/protocol';
import type { FormBody } from '../../http/form.ts';
import type { ClientRecord } from '../../storage/ports.ts';

import type { TokenResponse } from '../oauth_schemas.ts';

export type { TokenResponse } from '../oauth_schemas.ts';

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
