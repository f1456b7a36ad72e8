export {
  createAuthorizer,
  AuthorizerError,
  AUTHORIZER_ERROR_CODES,
  type Authorizer,
  type AuthorizerOptions,
  type AuthorizeRequest,
  type AuthorizeResult,
  type AuthorizerHealth,
  type EntityRef,
} from './authorizer.ts';
