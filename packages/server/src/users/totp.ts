import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** RFC 6238 with the parameters every authenticator app supports: HMAC-SHA1, 6 digits, 30 s. */
export const TOTP_PERIOD = 30;
const DIGITS = 6;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 §6 base32 without padding: how secrets travel in otpauth:// URIs. */
export function base32(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/** A new secret: 160 bits, RFC 4226 §4's recommended length for HMAC-SHA1. */
export const newTotpSecret = (): Buffer => randomBytes(20);

/** RFC 4226 §5.3 HOTP of counter `step` (RFC 6238 §4: the step is floor(time / 30)). */
export function totpCode(secret: Buffer, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = (mac[mac.length - 1] as number) & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** DIGITS).padStart(DIGITS, '0');
}

/**
 * The time step whose code `code` is, within one step either way of `nowSeconds` (RFC 6238 §5.2:
 * clock drift and typing time), or undefined. Steps at or before `lastStep` are refused: a code
 * works once (§5.2, "MUST NOT accept the second attempt").
 */
export function matchTotp(
  secret: Buffer,
  code: string,
  nowSeconds: number,
  lastStep: number | null,
): number | undefined {
  if (!/^\d{6}$/.test(code)) return undefined;
  const now = Math.floor(nowSeconds / TOTP_PERIOD);
  let found: number | undefined;
  for (const step of [now - 1, now, now + 1]) {
    const a = Buffer.from(totpCode(secret, step));
    if (timingSafeEqual(a, Buffer.from(code)) && (lastStep === null || step > lastStep)) found ??= step;
  }
  return found;
}

/** The enrolment URI authenticator apps read from the QR code (the Key Uri Format). */
export function otpauthUri(secret: Buffer, issuerName: string, account: string): string {
  const label = `${encodeURIComponent(issuerName)}:${encodeURIComponent(account)}`;
  const q = new URLSearchParams({
    secret: base32(secret),
    issuer: issuerName,
    algorithm: 'SHA1',
    digits: '6',
    period: '30',
  });
  return `otpauth://totp/${label}?${q}`;
}
