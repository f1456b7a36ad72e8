export { createAuthorizer, AuthorizerError, type Authorizer, type AuthorizerOptions, type AuthorizeRequest, type AuthorizeResult, type AuthorizerHealth, type EntityRef } from './authorizer.ts';
