import { randomFillSync } from 'node:crypto';

/**
 * Random identifiers from a pre-filled buffer: one CSPRNG call per 256 ids instead of one per
 * id, which shows on the token path (a jti per token).
 */
export class RandomPool {
  private readonly buf: Buffer;
  private offset: number;
  private readonly size: number;

  constructor(size = 4096) {
    this.size = size;
    this.buf = Buffer.allocUnsafe(size);
    this.offset = size;
  }

  /** `bytes` random bytes as base64url. */
  id(bytes = 16): string {
    if (this.offset + bytes > this.size) {
      randomFillSync(this.buf);
      this.offset = 0;
    }
    const s = this.buf.toString('base64url', this.offset, this.offset + bytes);
    this.offset += bytes;
    return s;
  }
}
