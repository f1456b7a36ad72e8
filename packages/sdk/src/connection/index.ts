export {
  createIdpConnection,
  IdpMetadataError,
  type IdpConnection,
  type IdpConnectionOptions,
  type IdpCredentials,
  type IdpMetadata,
} from './idp_connection.ts';
export { SharedFeedStream, type FeedListener, type FeedStreamName } from './feed_stream.ts';
