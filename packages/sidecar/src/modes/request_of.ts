import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { peerCertificateOf, peerSpiffeId } from '@latchkey/sdk';
import { type RequestFacts, splitTarget } from '../routes/request_facts.ts';

/** The facts of a request that reached the sidecar itself (reverse proxy, AuthZEN): its own socket is the peer. */
export function factsOf(
  raw: IncomingMessage,
  now: number,
): { facts: RequestFacts; peerCertificate?: X509Certificate } | undefined {
  const target = splitTarget(raw.url ?? '/');
  if (!target) return undefined;
  const peer = peerSpiffeId(raw);
  const socket = raw.socket as Partial<TLSSocket>;
  const cert = socket.authorized === true ? peerCertificateOf(socket) : undefined;
  return {
    facts: {
      method: raw.method ?? 'GET',
      path: target.path,
      query: target.query,
      headers: raw.headers,
      sourceIp: raw.socket.remoteAddress ?? '',
      ...(peer ? { peer } : {}),
      now,
    },
    ...(cert ? { peerCertificate: cert } : {}),
  };
}
