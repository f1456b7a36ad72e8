import type { SigningAlgorithm } from '@latchkey/protocol';
import type { SigningKeyRecord } from '../storage/ports.ts';

export interface RotationPolicy {
  /** How long a key signs before the next one takes over (seconds). */
  rotateEvery: number;
  /** How long a `next` key must have been published before it may sign (seconds). */
  announce: number;
  /** Algorithm new keys are made with; a change goes through the normal lifecycle. */
  alg: SigningAlgorithm;
}

export type RotationAction =
  | { kind: 'create_current'; alg: SigningAlgorithm }
  | { kind: 'create_next'; alg: SigningAlgorithm }
  | { kind: 'promote'; next: string; current?: string };

/**
 * What the schedule should do now, given every key (a pure function of the stored state and the
 * clock, so it survives restarts and is easy to test). The lifecycle:
 *
 *   next (published, not signing) → current (the one key signing) → retired (published until its
 *   tokens have expired) → removed
 *
 * A `next` key exists at all times, so a verifier that refreshes its JWKS for any reason learns
 * the key that will sign next, a whole rotation ahead. It is promoted once it has been published
 * for at least the announce window and the current key is due (by age, by request, or because the
 * configured algorithm changed).
 */
export function planRotation(
  keys: readonly SigningKeyRecord[],
  now: number,
  policy: RotationPolicy,
  requested: boolean,
): RotationAction[] {
  const current = keys.find((k) => k.state === 'current');
  const next = keys.find((k) => k.state === 'next');
  if (!current) {
    // First start, or the current key was revoked: sign with what exists, at once.
    return next ? [{ kind: 'promote', next: next.kid }] : [{ kind: 'create_current', alg: policy.alg }];
  }
  if (!next) return [{ kind: 'create_next', alg: policy.alg }];
  const announced = now >= next.createdAt + policy.announce;
  const due =
    requested || now >= (current.activatedAt ?? current.createdAt) + policy.rotateEvery || current.alg !== policy.alg;
  return announced && due ? [{ kind: 'promote', next: next.kid, current: current.kid }] : [];
}

/** When the schedule will promote the `next` key if nothing is requested (for `keys list`). */
export function nextRotationAt(keys: readonly SigningKeyRecord[], policy: RotationPolicy): number | undefined {
  const current = keys.find((k) => k.state === 'current');
  const next = keys.find((k) => k.state === 'next');
  if (!current || !next) return undefined;
  return Math.max(next.createdAt + policy.announce, (current.activatedAt ?? current.createdAt) + policy.rotateEvery);
}
