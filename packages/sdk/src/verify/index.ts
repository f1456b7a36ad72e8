export { createVerifier, type Verifier, type VerifierOptions, type VerifierHealth } from './verifier.ts';
export { VerifyError, VERIFY_ERROR_CODES, type VerifyErrorCode } from './verify_error.ts';
export {
  actorChain,
  TXN_TOKEN_HEADER,
  type ActorClaim,
  type TransactionTokenClaims,
} from '@latchkey/protocol';
