export {
  createTokenClient,
  TokenClientError,
  TOKEN_CLIENT_ERROR_CODES,
  type TokenClient,
  type TokenClientOptions,
  type TokenRequest,
} from './token_client.ts';
