import { type Clock, epochSeconds } from '@latchkey/protocol';
import type { AuditEvent } from '@latchkey/protocol';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { signJws, type SigningAlgorithm } from '@latchkey/protocol';
import { LatchkeyError } from '../errors.ts';
import type { KeyStore, SigningKeyRecord } from '../storage/ports.ts';
import type { MasterKey } from './master_key.ts';

export interface PublishedKey {
  kid: string;
  alg: SigningAlgorithm;
  publicKey: KeyObject;
}

interface Signer {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
  /** base64url of the JOSE header, computed once per key. */
  headerB64: string;
}

function generate(alg: SigningAlgorithm): { publicKey: KeyObject; privateKey: KeyObject } {
  if (alg === 'ES256') return generateKeyPairSync('ec', { namedCurve: 'P-256' });
  if (alg === 'EdDSA') return generateKeyPairSync('ed25519');
  return generateKeyPairSync('rsa', { modulusLength: 2048 });
}

/** The JWK members of a public key only (RFC 7517 §4, RFC 7518 §6): never a private member. */
const PUBLIC_MEMBERS: Record<string, string[]> = {
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
  RSA: ['kty', 'n', 'e'],
};

function publicJwkOf(key: KeyObject): Record<string, string> {
  const full = key.export({ format: 'jwk' }) as Record<string, string>;
  const members = PUBLIC_MEMBERS[full.kty ?? ''] ?? [];
  return Object.fromEntries(members.map((m) => [m, full[m] as string]));
}

/**
 * Signing keys in memory: the current signer and every published key, loaded from the
 * KeyStore. Several published keys are supported so the rotation schedule can add `next`
 * and keep `retired` keys.
 */
export class KeyRing {
  private readonly clock: Clock;
  private signer: Signer | undefined;
  private published = new Map<string, PublishedKey>();
  private jwksBody = '{"keys":[]}';
  private jwksEtag = '"0"';
  private fingerprint: string | undefined;
  private readonly store: Pick<KeyStore, 'insertKey' | 'listPublishedKeys'>;
  private readonly masterKey: MasterKey;

  constructor(store: Pick<KeyStore, 'insertKey' | 'listPublishedKeys'>, masterKey: MasterKey, clock: Clock) {
    this.clock = clock;
    this.store = store;
    this.masterKey = masterKey;
  }

  /** Creates and stores a new key in the given state. */
  async createKey(
    alg: SigningAlgorithm,
    state: 'next' | 'current',
    audit?: (record: SigningKeyRecord) => AuditEvent[],
  ): Promise<SigningKeyRecord> {
    const { publicKey, privateKey } = generate(alg);
    const jwk = publicJwkOf(publicKey);
    // A short kid from the RFC 7638 thumbprint: unique in practice, small in every token header —
    // never starting with `-` or `_`, which a command line would read as an option (`latchkey keys revoke -C2c…`).
    const kid = (await calculateJwkThumbprint(jwk as JWK, 'sha256')).replace(/^[-_]+/, '').slice(0, 16);
    const now = epochSeconds(this.clock);
    const record: SigningKeyRecord = {
      kid,
      alg,
      state,
      publicJwk: { ...jwk, kid, alg, use: 'sig' },
      privateKeyEnc: this.masterKey.seal(privateKey.export({ format: 'der', type: 'pkcs8' }), `signing-key:${kid}`),
      createdAt: now,
      activatedAt: state === 'current' ? now : null,
      retiredAt: null,
      removeAfter: null,
    };
    await this.store.insertKey(record, audit?.(record));
    return record;
  }

  /** Reloads published keys and the current signer from storage, when they changed. */
  async reload(): Promise<void> {
    const records = await this.store.listPublishedKeys();
    const fingerprint = records.map((r) => `${r.kid}:${r.state}`).join(',');
    if (fingerprint === this.fingerprint) return;
    const published = new Map<string, PublishedKey>();
    const jwks: Record<string, unknown>[] = [];
    let signer: Signer | undefined;
    for (const r of records) {
      published.set(r.kid, {
        kid: r.kid,
        alg: r.alg,
        publicKey: createPublicKey({ key: r.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }),
      });
      jwks.push(r.publicJwk);
      if (r.state === 'current') {
        const privateKey = createPrivateKey({
          key: this.masterKey.open(r.privateKeyEnc, `signing-key:${r.kid}`),
          format: 'der',
          type: 'pkcs8',
        });
        const headerB64 = Buffer.from(JSON.stringify({ alg: r.alg, typ: 'at+jwt', kid: r.kid })).toString('base64url');
        signer = { kid: r.kid, alg: r.alg, privateKey, headerB64 };
      }
    }
    this.published = published;
    this.signer = signer;
    this.fingerprint = fingerprint;
    this.jwksBody = JSON.stringify({ keys: jwks });
    this.jwksEtag = `"${createHash('sha256').update(this.jwksBody).digest('base64url').slice(0, 22)}"`;
  }

  get ready(): boolean {
    return this.signer !== undefined;
  }

  get currentAlg(): SigningAlgorithm | undefined {
    return this.signer?.alg;
  }

  /** Signs a JWT access token with the current key (RFC 9068 §2.1 header); returns it and that key's id. */
  signAccessToken(claims: object): { jws: string; kid: string } {
    const s = this.signer;
    if (!s) throw new LatchkeyError('signing_key_missing', 'no current signing key');
    const input = `${s.headerB64}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    return { jws: `${input}.${signJws(s.alg, s.privateKey, input)}`, kid: s.kid };
  }

  /**
   * Signs any other document (an audit checkpoint) with the current key, under its own `typ`
   * so it can never pass for an access token.
   */
  signDocument(payload: object, typ: string): { jws: string; kid: string } {
    const s = this.signer;
    if (!s) throw new LatchkeyError('signing_key_missing', 'no current signing key');
    const header = Buffer.from(JSON.stringify({ alg: s.alg, typ, kid: s.kid })).toString('base64url');
    const input = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return { jws: `${input}.${signJws(s.alg, s.privateKey, input)}`, kid: s.kid };
  }

  publishedKey(kid: string): PublishedKey | undefined {
    return this.published.get(kid);
  }

  /** The JWKS document (public members only) and its strong ETag. */
  jwks(): { body: string; etag: string } {
    return { body: this.jwksBody, etag: this.jwksEtag };
  }
}
