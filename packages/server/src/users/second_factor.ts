import { randomBytes } from 'node:crypto';
import type { AuditEvent, Clock } from '@latchkey/protocol';
import QRCode from 'qrcode';
import type { MasterKey } from '../keys/master_key.ts';
import { sha256 } from '../oauth/authorize/authorize_endpoints.ts';
import type { ClientRecord, UserRecord, UserStore } from '../storage/ports.ts';
import { base32, matchTotp, newTotpSecret, otpauthUri } from './totp.ts';

const RECOVERY_CODES = 10;

export const RECOVERY_CODE_COUNT = RECOVERY_CODES;

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
  private readonly users: Pick<UserStore, 'updateUser' | 'useTotpStep' | 'setRecoveryCodes' | 'useRecoveryCode'>;
  private readonly master: Pick<MasterKey, 'seal' | 'open'>;
  private readonly clock: Clock;
  private readonly issuerName: string;

  constructor(deps: {
    users: SecondFactors['users'];
    master: Pick<MasterKey, 'seal' | 'open'>;
    clock: Clock;
    issuerName: string;
  }) {
    this.users = deps.users;
    this.master = deps.master;
    this.clock = deps.clock;
    this.issuerName = deps.issuerName;
  }

  /** Whether this sign-in needs a second factor: the user's, the client's, or one already enrolled. */
  required(user: UserRecord, client: ClientRecord | undefined): boolean {
    return user.mfaRequired || user.totpSecret !== null || client?.metadata.require_second_factor === true;
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
    const recovery = Array.from({ length: RECOVERY_CODES }, () => {
      const raw = base32(randomBytes(8)).slice(0, 12);
      return `${raw.slice(0, 4)}-${raw.slice(4, 8)}-${raw.slice(8, 12)}`;
    });
    const next: UserRecord = {
      ...user,
      totpSecret: this.master.seal(secret, `totp:${user.sub}`),
      totpLastStep: step,
      updatedAt: Math.floor(this.clock.now() / 1000),
    };
    await this.users.setRecoveryCodes(
      user.sub,
      recovery.map((r) => sha256(normalRecovery(r))),
    );
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
    return (await this.users.useRecoveryCode(
      user.sub,
      sha256(normalRecovery(typed)),
      Math.floor(this.clock.now() / 1000),
    ))
      ? 'recovery_code'
      : undefined;
  }
}
