import type { X509Certificate } from 'node:crypto';

/** id-kp-clientAuth (RFC 5280 §4.2.1.12). */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const MAX_DEPTH = 4;

const validAt = (c: X509Certificate, now: number): boolean =>
  Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
const signedBy = (c: X509Certificate, issuer: X509Certificate): boolean => {
  try {
    return c.checkIssued(issuer) && c.verify(issuer.publicKey);
  } catch {
    return false;
  }
};

export type ChainResult = { ok: true } | { ok: false; reason: string };

/**
 * Path validation for a client certificate (RFC 5280 §6, the parts a private PKI needs): from the
 * leaf, each certificate must be within its validity and signed by the next — an intermediate the
 * client presented (a CA certificate) or one of `anchors` — until an anchor is reached, at most
 * four steps up. The leaf must be an end-entity certificate allowed for client authentication.
 * Used for RFC 8705 §2.1 (PKI) whether the certificate came over this server's own TLS or from
 * a trusted proxy, so both paths decide alike and a rotated trust bundle applies at once.
 */
export function verifyClientChain(
  leaf: X509Certificate,
  presented: readonly X509Certificate[],
  anchors: readonly X509Certificate[],
  now: number,
): ChainResult {
  if (leaf.ca) return { ok: false, reason: 'the certificate is a CA certificate' };
  const eku = leaf.keyUsage;
  if (eku && eku.length > 0 && !eku.includes(CLIENT_AUTH))
    return { ok: false, reason: 'the certificate is not for client authentication' };
  let current = leaf;
  for (let depth = 0; depth <= MAX_DEPTH; depth++) {
    if (!validAt(current, now))
      return {
        ok: false,
        reason:
          depth === 0
            ? 'the certificate is expired or not yet valid'
            : 'an issuing certificate is expired or not yet valid',
      };
    const anchor = anchors.find((a) => signedBy(current, a));
    if (anchor) return validAt(anchor, now) ? { ok: true } : { ok: false, reason: 'the trust anchor is expired' };
    const next = presented.find((p) => p !== current && p.ca && signedBy(current, p));
    if (!next) return { ok: false, reason: 'the certificate does not chain to the workload CA' };
    current = next;
  }
  return { ok: false, reason: 'the certificate chain is too long' };
}
