import type { KeyEvent, KeyEventType, PolicyEvent, RevocationEntry, RevocationKind } from '@latchkey/protocol';
import type { FeedEventRecord } from '../storage/ports.ts';

/** A stored revocation as the feeds send it. */
export function revocationEntry(e: FeedEventRecord): RevocationEntry {
  const entry: RevocationEntry = {
    cursor: String(e.seq),
    kind: e.kind as RevocationKind,
    iss: e.iss,
    ref: e.ref,
    expires_at: e.expiresAt,
    revoked_at: e.createdAt,
  };
  if (e.notBefore !== null) entry.not_before = e.notBefore;
  return entry;
}

/** A stored key event as the feeds send it. */
export function keyEvent(e: FeedEventRecord): KeyEvent {
  const ev: KeyEvent = {
    cursor: String(e.seq),
    type: e.kind as KeyEventType,
    kid: e.ref,
    alg: String(e.data?.alg ?? ''),
    at: e.createdAt,
  };
  if (e.data?.jwk) ev.jwk = e.data.jwk as Record<string, unknown>;
  return ev;
}

/** A stored policy publication as the feeds send it. */
export function policyEvent(e: FeedEventRecord): PolicyEvent {
  return {
    cursor: String(e.seq),
    type: 'policy.published',
    version: Number(e.ref),
    digest: String(e.data?.digest ?? ''),
    at: e.createdAt,
  };
}

/** One Server-Sent Event (WHATWG HTML §9.2): the cursor as `id`, so a reconnect resumes with Last-Event-ID. */
export function sseFrame(e: FeedEventRecord): string {
  const [event, data] =
    e.stream === 'revocations'
      ? ['revocation', revocationEntry(e)]
      : e.stream === 'keys'
        ? ['key', keyEvent(e)]
        : ['policy', policyEvent(e)];
  return `id: ${e.seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
