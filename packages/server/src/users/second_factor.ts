import { randomBytes } from 'node:crypto';
import { type AuditEvent, type Clock, epochSeconds } from '@latchkey/protocol';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import QRCode from 'qrcode';
import type { MasterKey } from '../keys/master_key.ts';
import { sha256 } from '../secrets.ts';
import type { ClientRecord, UserRecord, UserStore } from '../storage/ports.ts';
import { base32, matchTotp, newTotpSecret, otpauthUri } from './totp.ts';

/** Recovery codes issued at an enrolment. */
export const RECOVERY_CODE_COUNT = 10;

/** A recovery code as typed: case, spaces and dashes do not matter. */
const normalRecovery = (code: string) => code.toUpperCase().replace(/[\s-]/g, '');

/**
 * Second factors for users: TOTP (RFC 6238, any authenticator app) enrolled at sign-in from a QR
 * code, with ten single-use recovery codes. The secret is sealed under the master key at rest; a
 * TOTP code and a recovery code each work once, atomically across replicas. Required for a user
 * (`mfa_required`), for every user of a client (`require_second_factor`), and always once a user
 * has one.
 */
export class SecondFactors {
  private readonly users: Pick<
    UserStore,
    'updateUser' | 'useTotpStep' | 'setRecoveryCodes' | 'useRecoveryCode' | 'addPasskey' | 'listPasskeys' | 'usePasskey'
  >;
  private readonly master: Pick<MasterKey, 'seal' | 'open'>;
  private readonly clock: Clock;
  private readonly issuerName: string;
  /** WebAuthn: the relying party is the IdP's host, the origin its issuer's (W3C WebAuthn §5.1.3, §7.1). */
  private readonly rpId: string;
  private readonly origin: string;

  constructor(deps: {
    users: SecondFactors['users'];
    master: Pick<MasterKey, 'seal' | 'open'>;
    clock: Clock;
    issuerName: string;
    issuer: string;
  }) {
    this.users = deps.users;
    this.master = deps.master;
    this.clock = deps.clock;
    this.issuerName = deps.issuerName;
    const u = new URL(deps.issuer);
    this.rpId = u.hostname;
    this.origin = u.origin;
  }

  /** Whether this sign-in needs a second factor: the user's, the client's, or one already enrolled. */
  async required(user: UserRecord, client: ClientRecord | undefined): Promise<boolean> {
    if (user.mfaRequired || user.totpSecret !== null || client?.metadata.require_second_factor === true) return true;
    return (await this.users.listPasskeys(user.sub)).length > 0;
  }

  /** WebAuthn registration options for a new passkey (the challenge goes into the sealed form). */
  async passkeyCreation(user: UserRecord): Promise<{ options: object; challenge: string }> {
    const existing = await this.users.listPasskeys(user.sub);
    const options = await generateRegistrationOptions({
      rpName: this.issuerName,
      rpID: this.rpId,
      userName: user.username,
      userID: new TextEncoder().encode(user.sub),
      attestationType: 'none',
      excludeCredentials: existing.map((k) => ({ id: k.credentialId, transports: k.transports as never })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
    });
    return { options, challenge: options.challenge };
  }

  /** WebAuthn authentication options for a user's passkeys. */
  async passkeyRequest(user: UserRecord): Promise<{ options: object; challenge: string } | undefined> {
    const keys = await this.users.listPasskeys(user.sub);
    if (keys.length === 0) return undefined;
    const options = await generateAuthenticationOptions({
      rpID: this.rpId,
      allowCredentials: keys.map((k) => ({ id: k.credentialId, transports: k.transports as never })),
      userVerification: 'preferred',
    });
    return { options, challenge: options.challenge };
  }

  /** Registers the passkey the browser created for `challenge`; recovery codes come with a first factor. */
  async enrolPasskey(
    user: UserRecord,
    response: string,
    challenge: string,
    audit: readonly AuditEvent[],
  ): Promise<{ recovery: string[] } | undefined> {
    let verified: Awaited<ReturnType<typeof verifyRegistrationResponse>>;
    try {
      verified = await verifyRegistrationResponse({
        response: JSON.parse(response),
        expectedChallenge: challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        requireUserVerification: false,
      });
    } catch {
      return undefined;
    }
    const info = verified.verified ? verified.registrationInfo : undefined;
    if (!info) return undefined;
    const now = epochSeconds(this.clock);
    await this.users.addPasskey({
      credentialId: info.credential.id,
      sub: user.sub,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      transports: info.credential.transports ?? [],
      createdAt: now,
      lastUsedAt: null,
    });
    const recovery = await this.issueRecoveryCodes(user);
    await this.users.updateUser({ ...user, updatedAt: now }, audit);
    return { recovery };
  }

  /** Checks a passkey assertion against the user's passkeys and `challenge`; true when it signs in. */
  async verifyPasskey(user: UserRecord, response: string, challenge: string): Promise<boolean> {
    let parsed: { id?: unknown };
    try {
      parsed = JSON.parse(response) as { id?: unknown };
    } catch {
      return false;
    }
    const key = (await this.users.listPasskeys(user.sub)).find((k) => k.credentialId === parsed.id);
    if (!key) return false;
    try {
      const result = await verifyAuthenticationResponse({
        response: parsed as never,
        expectedChallenge: challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpId,
        credential: {
          id: key.credentialId,
          publicKey: new Uint8Array(Buffer.from(key.publicKey, 'base64url')),
          counter: key.counter,
          transports: key.transports as never,
        },
        requireUserVerification: false,
      });
      if (!result.verified) return false;
      await this.users.usePasskey(key.credentialId, result.authenticationInfo.newCounter, epochSeconds(this.clock));
      return true;
    } catch {
      return false;
    }
  }

  /** Ten new single-use recovery codes (their hashes stored; the codes shown once). */
  private async issueRecoveryCodes(user: UserRecord): Promise<string[]> {
    const recovery = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
      const raw = base32(randomBytes(8)).slice(0, 12);
      return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 12)}`;
    });
    await this.users.setRecoveryCodes(
      user.sub,
      recovery.map((r) => sha256(normalRecovery(r))),
    );
    return recovery;
  }

  /** A new secret to enrol, with what the page shows: the QR code (PNG data URL) and the secret as text. */
  async offer(user: UserRecord): Promise<{ secret: string; text: string; qr: string }> {
    const secret = newTotpSecret().toString('base64url');
    return { secret, ...(await this.show(user, secret)) };
  }

  /** What the enrolment page shows of an offered secret. */
  async show(user: UserRecord, offered: string): Promise<{ text: string; qr: string }> {
    const secret = Buffer.from(offered, 'base64url');
    const qr = await QRCode.toDataURL(otpauthUri(secret, this.issuerName, user.username), {
      errorCorrectionLevel: 'M',
      margin: 2,
      scale: 6,
    });
    return {
      text: base32(secret)
        .replace(/(.{4})/g, '$1 ')
        .trim(),
      qr,
    };
  }

  /** Enrols the offered secret if `code` is its current code; returns the recovery codes (shown once). */
  async enrol(
    user: UserRecord,
    offered: string,
    code: string,
    audit: readonly AuditEvent[],
  ): Promise<{ user: UserRecord; recovery: string[] } | undefined> {
    const secret = Buffer.from(offered, 'base64url');
    const step = matchTotp(secret, code.trim(), this.clock.now() / 1000, null);
    if (step === undefined) return undefined;
    const next: UserRecord = {
      ...user,
      totpSecret: this.master.seal(secret, `totp:${user.sub}`),
      totpLastStep: step,
      updatedAt: epochSeconds(this.clock),
    };
    const recovery = await this.issueRecoveryCodes(user);
    // The secret last, with its event: a crash before it leaves no half-enrolled user.
    await this.users.updateUser(next, audit);
    return { user: next, recovery };
  }

  /** Checks a TOTP code (once) or a recovery code (once): which one worked, or undefined. */
  async verify(user: UserRecord, code: string): Promise<'totp' | 'recovery_code' | undefined> {
    const typed = code.trim();
    if (/^\d{6}$/.test(typed) && user.totpSecret) {
      const secret = this.master.open(user.totpSecret, `totp:${user.sub}`);
      const step = matchTotp(secret, typed, this.clock.now() / 1000, user.totpLastStep);
      return step !== undefined && (await this.users.useTotpStep(user.sub, step)) ? 'totp' : undefined;
    }
    if (typed.length > 64) return undefined;
    return (await this.users.useRecoveryCode(user.sub, sha256(normalRecovery(typed)), epochSeconds(this.clock)))
      ? 'recovery_code'
      : undefined;
  }
}
