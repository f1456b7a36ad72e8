export { endpoint, type Endpoint } from './http_client.ts';
