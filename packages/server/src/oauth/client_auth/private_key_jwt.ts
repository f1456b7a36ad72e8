import { type Clock, epochSeconds } from '@latchkey/protocol';
import {
  createLocalJWKSet,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { CLIENT_ASSERTION_ALGORITHMS, CLIENT_ASSERTION_TYPE_JWT_BEARER } from '@latchkey/protocol';
import { invalidClient, invalidRequest } from '../../errors.ts';
import { type FormBody, param } from '../../http/form.ts';
import type { ClientRecord, ReplayStore } from '../../storage/ports.ts';
import type { ClientJwks } from './client_jwks.ts';
import type { ClientAuthMethod } from './types.ts';

/** The longest a client assertion may live (RFC 7523 §3 leaves it to the server; RFC 9700 §2.2.2 asks for short). */
export const MAX_ASSERTION_LIFETIME = 300;

export interface PrivateKeyJwtDeps {
  /** Where "now" comes from (a fake clock in tests). */
  clock: Clock;
  issuer: string;
  clockSkew: number;
  replay: Pick<ReplayStore, 'useOnce'>;
  jwks: ClientJwks;
  /** An assertion from a trusted federated issuer (handled by the federated method, not here). */
  federated?: (form: FormBody, authorization: string | undefined) => boolean;
}

/**
 * An OKP key registered with `alg: EdDSA` must also match assertions signed as RFC 9864's
 * `Ed25519` (what current clients, openid-client among them, send) and the other way round;
 * the allowlist of algorithms still applies.
 */
function withEd25519Aliases(set: JSONWebKeySet): JSONWebKeySet {
  return {
    keys: set.keys.map((k) =>
      k.kty === 'OKP' && (k.alg === 'EdDSA' || k.alg === 'Ed25519') ? { ...k, alg: undefined } : k,
    ),
  };
}

/** RFC 7523 §2.2 / §3: a JWT signed with one of the client's registered keys authenticates it. */
export function privateKeyJwt(deps: PrivateKeyJwtDeps): ClientAuthMethod {
  const keySetOf = async (client: ClientRecord, refresh = false): Promise<JWTVerifyGetKey> =>
    createLocalJWKSet(withEd25519Aliases(await deps.jwks.keySet(client, { refresh })));

  return {
    method: 'private_key_jwt',
    present: (form, authorization) =>
      (form.has('client_assertion') || form.has('client_assertion_type')) && !deps.federated?.(form, authorization),
    read(form) {
      if (param(form, 'client_assertion_type') !== CLIENT_ASSERTION_TYPE_JWT_BEARER) {
        throw invalidRequest(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE_JWT_BEARER}`);
      }
      const assertion = param(form, 'client_assertion');
      if (!assertion) throw invalidRequest('client_assertion is missing');
      let iss: unknown;
      try {
        iss = decodeJwt(assertion).iss;
      } catch {
        throw invalidClient('client_assertion is not a JWT', 'malformed_credentials');
      }
      if (typeof iss !== 'string' || iss.length === 0)
        throw invalidClient('client_assertion has no iss', 'malformed_credentials');
      const formClientId = param(form, 'client_id');
      if (formClientId !== undefined && formClientId !== iss)
        throw invalidClient('client_id does not match the assertion issuer', 'client_id_mismatch');

      return {
        method: 'private_key_jwt',
        clientId: iss,
        async verify(client) {
          if (!client.metadata.jwks && !client.metadata.jwks_uri)
            throw invalidClient('client has no registered keys', 'assertion_invalid');
          const alg = client.metadata.token_endpoint_auth_signing_alg;
          let payload;
          const verifyWith = (keys: JWTVerifyGetKey) =>
            jwtVerify(assertion, keys, {
              // RFC 7523 §3: iss and sub are the client_id; aud identifies this authorization server.
              issuer: client.clientId,
              subject: client.clientId,
              audience: deps.issuer,
              algorithms: alg ? [alg] : [...CLIENT_ASSERTION_ALGORITHMS],
              requiredClaims: ['exp', 'jti'],
              clockTolerance: deps.clockSkew,
            });
          try {
            try {
              ({ payload } = await verifyWith(await keySetOf(client)));
            } catch (err) {
              // A key added at the jwks_uri a moment ago: fetch once more (the cooldown applies).
              if (!(err instanceof joseErrors.JWKSNoMatchingKey) || !client.metadata.jwks_uri) throw err;
              ({ payload } = await verifyWith(await keySetOf(client, true)));
            }
          } catch (err) {
            if (err instanceof joseErrors.JOSEError)
              throw invalidClient(`client_assertion rejected (${err.code})`, 'assertion_invalid');
            throw err;
          }
          const now = epochSeconds(deps.clock);
          const exp = payload.exp as number;
          if (exp > now + MAX_ASSERTION_LIFETIME + deps.clockSkew)
            throw invalidClient(
              `client_assertion exp is more than ${MAX_ASSERTION_LIFETIME}s ahead`,
              'assertion_invalid',
            );
          if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 256)
            throw invalidClient('client_assertion jti is invalid', 'assertion_invalid');
          // RFC 7523 §3 item 7: a jti is single-use until the assertion can no longer be valid.
          const fresh = await deps.replay.useOnce(`assertion:${client.clientId}:${payload.jti}`, exp + deps.clockSkew);
          if (!fresh) throw invalidClient('client_assertion was already used', 'assertion_replayed');
        },
      };
    },
  };
}
