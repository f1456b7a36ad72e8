export { createIdpConnection, IdpMetadataError, type IdpConnection, type IdpConnectionOptions, type IdpCredentials, type IdpMetadata } from './idp_connection.ts';
