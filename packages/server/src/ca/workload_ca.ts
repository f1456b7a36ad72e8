import type { Clock } from '@latchkey/protocol';
import { createPrivateKey, createPublicKey, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import { LatchkeyError } from '../errors.ts';
import type { MasterKey } from '../keys/master_key.ts';
import type { SettingsStore, WithAudit } from '../storage/ports.ts';
import { CA_ALG, createRootCa, importCaKey } from './root_ca.ts';

export { randomSerial } from './root_ca.ts';

const SETTING = 'ca.workload';
const SEAL_LABEL = 'workload-ca';
/** Replicas re-read the CA state at most this often (a rotation elsewhere reaches them within it). */
const REFRESH_MS = 5000;

/** What signs workload certificates right now. */
export interface CaSigner {
  cert: x509.X509Certificate;
  key: CryptoKey;
  /** Signature algorithm of `key` (ECDSA P-256 for Latchkey's own roots). */
  signingAlgorithm: Algorithm | EcdsaParams | RsaHashedImportParams;
  /** Intermediates to send after an issued certificate (PEM, may be empty). */
  chainPem: string;
}

export interface CaRootStatus {
  subject: string;
  serial: string;
  not_after: string;
  /** `announced`: in the bundle, not signing yet; `active`: signing; `retiring`: in the bundle until its certificates expire. */
  state: 'announced' | 'active' | 'retiring';
  activate_at: number;
  retire_at: number | null;
}

export interface CaState {
  signer: CaSigner;
  /** The trust bundle (PEM): what `GET /ca/bundle` serves. */
  bundlePem: string;
  /** Certificates a client certificate may chain to (bundle roots and the operator's intermediates). */
  anchors: NodeX509[];
  roots: CaRootStatus[];
  operatorManaged: boolean;
}

interface StoredRoot {
  cert: string;
  /** Sealed PKCS#8 PEM. */
  key: string;
  /** Epoch seconds from which this root signs; 0 for the first one. */
  activate_at: number;
}

function parseStored(text: string): StoredRoot[] {
  const v = JSON.parse(text) as { roots?: StoredRoot[]; cert?: string; key?: string };
  // The first slice stored one root as {cert, key}.
  if (v.roots) return v.roots;
  return [{ cert: v.cert!, key: v.key!, activate_at: 0 }];
}

const pemBlocks = (text: string): string[] =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

export interface WorkloadCaOptions {
  store: Pick<SettingsStore, 'getSetting' | 'setSettingIfAbsent' | 'replaceSetting'>;
  master: MasterKey;
  trustDomain: string;
  /** Longest lifetime of a workload certificate plus clock skew: how long a replaced root stays trusted. */
  retireAfter: number;
  /** Where "now" comes from (a fake clock in tests): rotation phases and certificate dates. */
  clock: Clock;
  /** Operator-provided CA (files): an intermediate and its key, and the root(s) to serve. */
  operator?: { certFile: string; keyFile: string; bundleFile?: string | undefined } | undefined;
}

/**
 * The workload CA. By default its roots are Latchkey's own — P-256, ten years, each key sealed
 * with the master key and kept in storage with the certificates, so every replica of one
 * deployment signs alike and the first to start creates the root (set-if-absent decides a race).
 * `rotate()` adds a new root that is first only *announced* (in the trust bundle, not signing) so
 * that every workload's bundle holds it before any certificate it signed is presented; then it
 * signs, and the old root stays in the bundle until the last certificate it signed has expired.
 * An operator may instead provide an intermediate (and key) signed by their own root: Latchkey
 * signs with it, sends it as the chain, and serves the operator's bundle; rotating that CA is the
 * operator's (new files, both roots in the bundle file).
 */
export class WorkloadCa {
  private cached: { at: number; text: string; state: CaState } | undefined;
  private operatorState: CaState | undefined;
  private readonly options: WorkloadCaOptions;

  private constructor(options: WorkloadCaOptions) {
    this.options = options;
  }

  static async open(options: WorkloadCaOptions): Promise<WorkloadCa> {
    const ca = new WorkloadCa(options);
    if (options.operator) ca.operatorState = await loadOperatorCa(options.operator);
    else if (!(await options.store.getSetting(SETTING))) {
      const root = await createRootCa(ca.rootName(), options.clock.now());
      await options.store.setSettingIfAbsent(
        SETTING,
        JSON.stringify({
          roots: [
            { cert: root.certPem, key: options.master.seal(Buffer.from(root.keyPem), SEAL_LABEL), activate_at: 0 },
          ],
        }),
      );
    }
    await ca.state();
    return ca;
  }

  get operatorManaged(): boolean {
    return this.operatorState !== undefined;
  }

  /** The current signer, bundle and anchors (re-read from storage at most every 5 s). */
  async state(now = this.options.clock.now()): Promise<CaState> {
    if (this.operatorState) return this.operatorState;
    if (this.cached && now - this.cached.at < REFRESH_MS && !this.transitionDue(now)) return this.cached.state;
    const text = (await this.options.store.getSetting(SETTING))!;
    if (this.cached && this.cached.text === text && !this.transitionDue(now)) {
      this.cached.at = now;
      return this.cached.state;
    }
    const state = await this.build(parseStored(text), now);
    this.cached = { at: now, text, state };
    return state;
  }

  /**
   * Starts a root rotation: a new root, announced now, signing after `announceSeconds`. Refused
   * while another rotation has not finished announcing, and for an operator-provided CA.
   */
  async rotate(
    announceSeconds: number,
    audit: (root: { serial: string; activateAt: number }) => WithAudit,
    now = this.options.clock.now(),
  ): Promise<CaState> {
    if (this.operatorState)
      throw new LatchkeyError(
        'ca_operator_managed',
        "the workload CA is the operator's: rotate it by replacing LATCHKEY_CA_CERT/LATCHKEY_CA_KEY with both roots in LATCHKEY_CA_BUNDLE",
      );
    const text = (await this.options.store.getSetting(SETTING))!;
    const roots = parseStored(text);
    const nowS = Math.floor(now / 1000);
    if (roots.some((r) => r.activate_at > nowS))
      throw new LatchkeyError('ca_rotation_pending', 'a new root is already announced and not signing yet');
    const root = await createRootCa(this.rootName(nowS), now);
    roots.push({
      cert: root.certPem,
      key: this.options.master.seal(Buffer.from(root.keyPem), SEAL_LABEL),
      activate_at: nowS + announceSeconds,
    });
    // Roots no longer in the bundle are forgotten.
    const kept = roots.filter(
      (_r, i) => i === roots.length - 1 || this.retireAt(roots, i) === null || this.retireAt(roots, i)! > nowS,
    );
    // Compare-and-set, with the audit event in the same transaction: two rotations at once cannot both win.
    if (
      !(await this.options.store.replaceSetting(
        SETTING,
        text,
        JSON.stringify({ roots: kept }),
        audit({ serial: root.cert.serialNumber, activateAt: nowS + announceSeconds }),
      ))
    ) {
      throw new LatchkeyError('ca_rotation_pending', 'another rotation changed the CA at the same time');
    }
    this.cached = undefined;
    return this.state(now);
  }

  private rootName(at?: number): string {
    const o = this.options.trustDomain.replace(/[,=+<>#;"\\]/g, '');
    return at === undefined
      ? `CN=Latchkey workload CA, O=${o}`
      : `CN=Latchkey workload CA ${new Date(at * 1000).toISOString().slice(0, 19)}Z, O=${o}`;
  }

  /** When root `i` leaves the bundle: the next root's activation plus the longest certificate lifetime. */
  private retireAt(roots: StoredRoot[], i: number): number | null {
    const next = roots[i + 1];
    return next ? next.activate_at + this.options.retireAfter : null;
  }

  /** Whether a root's activation or retirement time has passed since the state was built. */
  private transitionDue(now: number): boolean {
    const nowS = now / 1000;
    return (this.cached?.state.roots ?? []).some(
      (r) => (r.state === 'announced' && r.activate_at <= nowS) || (r.retire_at !== null && r.retire_at <= nowS),
    );
  }

  private async build(roots: StoredRoot[], now: number): Promise<CaState> {
    const nowS = Math.floor(now / 1000);
    let signerIndex = 0;
    roots.forEach((r, i) => {
      if (r.activate_at <= nowS) signerIndex = i;
    });
    const status: CaRootStatus[] = [];
    const inBundle: StoredRoot[] = [];
    roots.forEach((r, i) => {
      const retire = this.retireAt(roots, i);
      if (retire !== null && retire <= nowS && i < signerIndex) return;
      const c = new x509.X509Certificate(r.cert);
      inBundle.push(r);
      status.push({
        subject: c.subject,
        serial: c.serialNumber,
        not_after: c.notAfter.toISOString(),
        state: i === signerIndex ? 'active' : i > signerIndex ? 'announced' : 'retiring',
        activate_at: r.activate_at,
        retire_at: i < signerIndex ? retire : null,
      });
    });
    const s = roots[signerIndex]!;
    const key = await importCaKey(this.options.master.open(s.key, SEAL_LABEL).toString('utf8'));
    const bundlePem = inBundle.map((r) => `${r.cert.trim()}\n`).join('');
    return {
      signer: {
        cert: new x509.X509Certificate(s.cert),
        key,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
        chainPem: '',
      },
      bundlePem,
      anchors: inBundle.map((r) => new NodeX509(r.cert)),
      roots: status,
      operatorManaged: false,
    };
  }
}

/** Signature parameters for a CA key of the operator's. */
function algorithmsFor(key: ReturnType<typeof createPrivateKey>): {
  importAlg: EcKeyImportParams | RsaHashedImportParams | Algorithm;
  signAlg: EcdsaParams | Algorithm;
} {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (type === 'ec' && (curve === 'prime256v1' || curve === 'P-256'))
    return { importAlg: CA_ALG, signAlg: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams };
  if (type === 'ec' && (curve === 'secp384r1' || curve === 'P-384'))
    return {
      importAlg: { name: 'ECDSA', namedCurve: 'P-384' } as EcKeyImportParams,
      signAlg: { name: 'ECDSA', hash: 'SHA-384' } as EcdsaParams,
    };
  if (type === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048)
    return {
      importAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as RsaHashedImportParams,
      signAlg: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as EcdsaParams,
    };
  if (type === 'ed25519') return { importAlg: { name: 'Ed25519' }, signAlg: { name: 'Ed25519' } };
  throw new LatchkeyError(
    'ca_material_invalid',
    'LATCHKEY_CA_KEY: the key must be EC P-256 or P-384, RSA of at least 2048 bits, or Ed25519',
  );
}

/** Loads and checks an operator-provided intermediate, its key and the bundle of roots. */
async function loadOperatorCa(files: {
  certFile: string;
  keyFile: string;
  bundleFile?: string | undefined;
}): Promise<CaState> {
  let certText: string;
  let keyText: string;
  let bundleText: string | undefined;
  try {
    certText = readFileSync(files.certFile, 'utf8');
    keyText = readFileSync(files.keyFile, 'utf8');
    bundleText = files.bundleFile ? readFileSync(files.bundleFile, 'utf8') : undefined;
  } catch (err) {
    throw new LatchkeyError('ca_material_invalid', `cannot read the operator CA files: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const bad = (m: string) => new LatchkeyError('ca_material_invalid', m);
  // Malformed files are the operator's mistake to fix: a typed error naming the file, not a raw parser error.
  const parse = <T>(what: string, f: () => T): T => {
    try {
      return f();
    } catch (err) {
      throw new LatchkeyError('ca_material_invalid', `${what}: ${(err as Error).message}`, { cause: err });
    }
  };
  const blocks = pemBlocks(certText);
  if (blocks.length === 0) throw bad('LATCHKEY_CA_CERT: no PEM certificate');
  const chain = parse('LATCHKEY_CA_CERT is not a valid PEM certificate chain', () =>
    blocks.map((b) => new NodeX509(b)),
  );
  const issuing = chain[0]!;
  if (!issuing.ca)
    throw bad('LATCHKEY_CA_CERT: the first certificate is not a CA certificate (basicConstraints CA:TRUE)');
  const nodeKey = parse('LATCHKEY_CA_KEY is not a valid PEM private key', () => createPrivateKey(keyText));
  const pubOfKey = createPublicKey(nodeKey).export({ type: 'spki', format: 'der' });
  if (!Buffer.from(issuing.publicKey.export({ type: 'spki', format: 'der' })).equals(pubOfKey))
    throw bad('LATCHKEY_CA_KEY does not belong to the certificate in LATCHKEY_CA_CERT');
  const { importAlg, signAlg } = algorithmsFor(nodeKey);
  const pkcs8 = nodeKey.export({ type: 'pkcs8', format: 'der' });
  const key = (await webcrypto.subtle.importKey('pkcs8', pkcs8, importAlg, false, ['sign'])) as CryptoKey;
  const selfSigned = (c: NodeX509) => c.checkIssued(c) && c.verify(c.publicKey);
  const roots =
    bundleText !== undefined
      ? parse('LATCHKEY_CA_BUNDLE is not a valid PEM certificate bundle', () =>
          pemBlocks(bundleText!).map((b) => new NodeX509(b)),
        )
      : chain.filter(selfSigned);
  if (roots.length === 0)
    throw bad('LATCHKEY_CA_BUNDLE is required: LATCHKEY_CA_CERT holds no root to serve as the trust bundle');
  const intermediates = chain.filter((c) => !selfSigned(c));
  // The issuing CA must chain to one of the roots through the intermediates given.
  // Each intermediate is used at most once, so the walk ends; running out is an error, not a pass.
  let cur = issuing;
  const unused = new Set(intermediates);
  while (!roots.some((r) => cur.checkIssued(r) && cur.verify(r.publicKey))) {
    const next = [...unused].find((c) => c !== cur && cur.checkIssued(c) && cur.verify(c.publicKey));
    if (!next) throw bad('LATCHKEY_CA_CERT does not chain to a root in LATCHKEY_CA_BUNDLE');
    unused.delete(next);
    cur = next;
  }
  return {
    signer: {
      cert: new x509.X509Certificate(issuing.raw),
      key,
      signingAlgorithm: signAlg,
      chainPem: intermediates.map((c) => `${c.toString().trim()}\n`).join(''),
    },
    bundlePem: roots.map((r) => `${r.toString().trim()}\n`).join(''),
    anchors: [...roots, ...intermediates],
    roots: roots.map((r) => ({
      subject: r.subject.replace(/\n/g, ', '),
      serial: r.serialNumber,
      not_after: new Date(r.validTo).toISOString(),
      state: 'active' as const,
      activate_at: 0,
      retire_at: null,
    })),
    operatorManaged: true,
  };
}
