import type { FastifyRequest } from 'fastify';
import type { TokenEndpointAuthMethod } from '@latchkey/protocol';
import type { FormBody } from '../../http/form.ts';
import type { ClientRecord } from '../../storage/ports.ts';

/** What one client authentication method finds in a request before it looks anything up. */
export interface PresentedCredentials {
  method: TokenEndpointAuthMethod;
  /** The client id the credentials claim; undefined when it cannot be read. */
  clientId: string | undefined;
  /** Checks the credentials against the client's registration; throws invalid_client on failure. */
  verify(client: ClientRecord): Promise<void>;
  /** How the authentication is recorded when not as the client's registered method (a federation rule). */
  reported?: string;
}

/** One client authentication method (RFC 6749 §2.3, RFC 7523 §2.2, RFC 8705 §2). */
export interface ClientAuthMethod {
  method: TokenEndpointAuthMethod;
  /**
   * The registered methods these credentials can satisfy, when more than `method` (a client
   * certificate is one credential for both RFC 8705 methods; the registration says which).
   */
  accepts?: readonly TokenEndpointAuthMethod[];
  /** Whether the request carries this method's credentials at all. */
  present(form: FormBody, authorization: string | undefined, request: FastifyRequest): boolean;
  /** Reads the credentials; throws invalid_request / invalid_client on a malformed shape. */
  read(form: FormBody, authorization: string | undefined, request: FastifyRequest): PresentedCredentials;
}
