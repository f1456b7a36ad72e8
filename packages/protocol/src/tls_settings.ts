/**
 * TLS settings shared by the IdP and the SDK's mTLS helpers: TLS 1.2 at least, and on TLS 1.2
 * only ECDHE key exchange with AEAD ciphers (forward secrecy, no CBC, no RSA key transport) —
 * Mozilla's "intermediate" profile. TLS 1.3's suites are all modern and stay as OpenSSL
 * offers them.
 */
export const TLS_MIN_VERSION = 'TLSv1.2' as const;

export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** The `node:tls` options every Latchkey TLS endpoint and client starts from. */
export const TLS_OPTIONS = Object.freeze({ minVersion: TLS_MIN_VERSION, ciphers: TLS_CIPHERS, honorCipherOrder: true });
