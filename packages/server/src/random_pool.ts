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
    const at = this.take(bytes);
    return this.buf.toString('base64url', at, at + bytes);
  }

  /** Copies `bytes` random bytes into `target` at `offset`. */
  fill(target: Buffer, offset: number, bytes: number): void {
    const at = this.take(bytes);
    this.buf.copy(target, offset, at, at + bytes);
  }

  private take(bytes: number): number {
    if (this.offset + bytes > this.size) {
      randomFillSync(this.buf);
      this.offset = 0;
    }
    const at = this.offset;
    this.offset += bytes;
    return at;
  }
}
