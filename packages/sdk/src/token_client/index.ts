export {
  createTokenClient,
  TokenClientError,
  TOKEN_CLIENT_ERROR_CODES,
  type TokenClient,
  type TokenClientOptions,
  type TokenRequest,
  type ExchangeRequest,
  type TransactionTokenRequest,
} from './token_client.ts';
export { withTransaction, currentTransaction, type CurrentTransaction } from '../txn/transaction_context.ts';
