export { createTokenClient, TokenClientError, type TokenClient, type TokenClientOptions, type TokenRequest } from './token_client.ts';
