import {
  CLIENT_ASSERTION_TYPE_JWT_BEARER,
  CLIENT_ASSERTION_TYPE_JWT_SPIFFE,
  JWT_BEARER_GRANT,
  TOKEN_ENDPOINT_AUTH_METHODS,
} from '@latchkey/protocol';
import { invalidClient, invalidRequest } from '../../errors.ts';
import { type FormBody, param } from '../../http/form.ts';
import {
  type AssertionKind,
  type FederatedAssertions,
  FederationError,
  grantAssertionKind,
} from '../../federation/federated_assertion.ts';
import type { ClientAuthMethod } from './types.ts';

/** The assertion a request carries as a federated credential, and how it was presented, if any. */
export function federatedAssertionOf(
  form: FormBody,
  authorization: string | undefined,
  assertions: Pick<FederatedAssertions, 'isFederated'>,
): { assertion: string; kind: AssertionKind } | undefined {
  const type = form.get('client_assertion_type')?.[0];
  const clientAssertion = form.get('client_assertion')?.[0];
  // draft-ietf-oauth-spiffe-client-auth §3.1: a JWT-SVID.
  if (type === CLIENT_ASSERTION_TYPE_JWT_SPIFFE) return { assertion: clientAssertion ?? '', kind: 'jwt-spiffe' };
  // RFC 7523 §2.2 with an assertion from a trusted issuer (a client's own is private_key_jwt).
  if (type === CLIENT_ASSERTION_TYPE_JWT_BEARER && clientAssertion && assertions.isFederated(clientAssertion))
    return { assertion: clientAssertion, kind: 'jwt-bearer' };
  // RFC 7523 §2.1 / §3.1: the grant's assertion, when no other credential is sent, authenticates too.
  const grantAssertion = form.get('assertion')?.[0];
  if (
    form.get('grant_type')?.[0] === JWT_BEARER_GRANT &&
    grantAssertion &&
    authorization === undefined &&
    !form.has('client_id') &&
    !form.has('client_secret') &&
    !form.has('client_assertion') &&
    !form.has('client_assertion_type')
  )
    return { assertion: grantAssertion, kind: grantAssertionKind(grantAssertion) };
  return undefined;
}

/**
 * Federated workload identity as client authentication: a platform token (Kubernetes, a CI system,
 * any trusted issuer) or a JWT-SVID, mapped to a client by an administrator's rule — whatever
 * method the client registered, since the rule is the administrator's grant. Recorded as
 * `federation:<rule>` with the token it issues.
 */
export function federatedClientAuth(assertions: FederatedAssertions): ClientAuthMethod {
  return {
    method: 'private_key_jwt',
    accepts: TOKEN_ENDPOINT_AUTH_METHODS,
    present: (form, authorization) => federatedAssertionOf(form, authorization, assertions) !== undefined,
    read(form, authorization) {
      const found = federatedAssertionOf(form, authorization, assertions);
      if (!found?.assertion) throw invalidRequest('client_assertion is missing');
      let mapped: ReturnType<FederatedAssertions['candidate']>;
      try {
        mapped = assertions.candidate(found.assertion, found.kind);
      } catch (err) {
        throw asClientError(err);
      }
      const formClientId = param(form, 'client_id');
      if (formClientId !== undefined && formClientId !== mapped.rule.clientId)
        throw invalidClient('client_id does not match the client the assertion maps to', 'client_id_mismatch');
      return {
        method: 'private_key_jwt',
        clientId: mapped.rule.clientId,
        reported: `federation:${mapped.rule.name}`,
        async verify() {
          try {
            await assertions.verify(found.assertion, found.kind);
          } catch (err) {
            throw asClientError(err);
          }
        },
      };
    },
  };
}

/** A federation refusal as RFC 6749 §5.2 `invalid_client`, its reason and detail for the audit. */
export function asClientError(err: unknown): unknown {
  if (!(err instanceof FederationError)) return err;
  const e = invalidClient(err.message, err.reason);
  e.auditDetail = err.detail;
  return e;
}
