import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { validate as validateDockerfile } from 'dockerfile-utils';
import * as k8s from 'kubernetes-models';
import { parseAllDocuments } from 'yaml';
import { configFromEnv, loadConfig } from '@latchkey/server';
import { CLI_MAIN, freePort, serveCli, TSX } from '@latchkey/testkit';

// The deploy artefacts of issue 18, validated as far as this machine allows: no container engine
// or cluster runs here. The Dockerfile is linted by dockerfile-utils (the VS Code Docker
// extension's validator) and checked for what the issue asks; the Kubernetes manifests are
// validated against the Kubernetes API schemas kubernetes-models carries (types, required fields,
// enums, formats — unknown fields are not rejected), then checked against each other and against
// Latchkey's own configuration loader. The image's HEALTHCHECK command runs against a real IdP.

const ROOT = new URL('../../../', import.meta.url).pathname;
const run = promisify(execFile);

/** Dockerfile instructions (continuations joined), with the stage they belong to. */
function instructions(text: string): { stage: number; op: string; args: string }[] {
  const out: { stage: number; op: string; args: string }[] = [];
  let stage = -1;
  for (const raw of text.replace(/\\\n/g, ' ').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const [op, ...rest] = line.split(/\s+/);
    if (op!.toUpperCase() === 'FROM') stage++;
    out.push({ stage, op: op!.toUpperCase(), args: rest.join(' ') });
  }
  return out;
}

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const ins = instructions(text);
  const last = Math.max(...ins.map((i) => i.stage));
  const final = ins.filter((i) => i.stage === last);

  test('lints clean (dockerfile-utils)', () => {
    const problems = validateDockerfile(text);
    assert.deepEqual(
      problems.map((p) => `${p.range.start.line + 1}: ${p.message}`),
      [],
    );
    // The linter does flag what is wrong (so the check above can fail).
    assert.ok(validateDockerfile('RUN echo no base image\nEXPOSE eighty\n').length >= 2);
  });

  test('multi-stage; the runtime stage runs as a numeric non-root user with a HEALTHCHECK and an exec-form entry point', () => {
    assert.ok(last >= 1, 'at least two stages');
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args;
    assert.match(user ?? '', /^[1-9]\d*(:[1-9]\d*)?$/, 'USER is a numeric, non-root uid');
    const hc = final.find((i) => i.op === 'HEALTHCHECK')!.args;
    assert.match(hc, /CMD \["node", "\/app\/packages\/cli\/dist\/main\.js", "health"\]/);
    assert.match(final.find((i) => i.op === 'ENTRYPOINT')!.args, /^\[/);
    // No compilers or build tools are installed in the runtime stage, and nothing is fetched there.
    assert.ok(!final.some((i) => i.op === 'RUN' && /apt-get|npm (ci|install)|curl|wget/.test(i.args)));
    assert.ok(!ins.some((i) => i.op === 'ADD'), 'COPY, never ADD (no remote fetches, no tar magic)');
  });

  test('the files the build copies exist, and .dockerignore does not hide them', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const i of ins.filter((x) => x.op === 'COPY' && !x.args.includes('--from'))) {
      const sources = i.args.split(/\s+/).slice(0, -1);
      for (const s of sources) {
        assert.ok(existsSync(join(ROOT, s)), `${s} exists`);
        assert.ok(!ignore.includes(s), `${s} is not ignored`);
      }
    }
  });

  test('its HEALTHCHECK command (latchkey health) answers for a running IdP, and fails once it is gone', {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-health-'));
    const port = await freePort();
    const env = { ...process.env, LATCHKEY_PORT: String(port), LATCHKEY_DATA_DIR: dir };
    const idp = await serveCli({ LATCHKEY_PORT: String(port), LATCHKEY_DATA_DIR: dir });
    try {
      // TLS with the local CA from the data folder: the certificate is checked, not skipped.
      const live = await run(TSX, [CLI_MAIN, 'health'], { env });
      assert.match(live.stdout, /^200 \{"status":"ok"\}/);
      const ready = await run(TSX, [CLI_MAIN, 'health', '--ready'], { env });
      assert.match(ready.stdout, /^200 .*"status":"ready"/);
    } finally {
      idp.child.kill('SIGTERM');
      await idp.exited;
    }
    await assert.rejects(
      run(TSX, [CLI_MAIN, 'health', '--timeout', '1'], { env }),
      (err: { code: number }) => err.code === 1,
    );
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy/kubernetes/latchkey.yaml'), 'utf8')).map(
    (d) => d.toJS() as { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any },
  );
  const byKind = (kind: string) => docs.find((d) => d.kind === kind)!;
  /** The kubernetes-models class for apiVersion and kind (`networking.k8s.io/v1` → networkingK8sIo.v1). */
  const model = (apiVersion: string, kind: string) => {
    const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    const models = k8s as Record<string, any>;
    const cls = group
      ? models[group.replace(/\.([a-z])/g, (_, c: string) => c.toUpperCase())]?.[version!]?.[kind]
      : models.v1?.[kind];
    assert.ok(cls, `no schema for ${apiVersion} ${kind}`);
    return cls as new (
      o: unknown,
    ) => { validate(): void };
  };

  test('every object validates against the Kubernetes API schemas', () => {
    assert.deepEqual(docs.map((d) => d.kind).sort(), [
      'ConfigMap',
      'Deployment',
      'HorizontalPodAutoscaler',
      'NetworkPolicy',
      'PodDisruptionBudget',
      'Service',
      'ServiceAccount',
    ]);
    for (const d of docs) {
      const Cls = model(d.apiVersion, d.kind);
      assert.doesNotThrow(() => new Cls(d).validate(), `${d.kind} ${d.metadata.name}`);
    }
    // The validator does reject what is wrong (so the check above can fail).
    const broken = structuredClone(byKind('Deployment'));
    broken.spec.template.spec.containers[0].ports[0].containerPort = '8443';
    assert.throws(() => new (model('apps/v1', 'Deployment'))(broken).validate(), /containerPort must be integer/);
  });

  test('the objects agree: selectors, ports, probes, secrets, the disruption budget and the hardening', () => {
    const dep = byKind('Deployment');
    const pod = dep.spec.template;
    const labels = pod.metadata.labels;
    const selects = (sel: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);
    assert.ok(selects(dep.spec.selector.matchLabels));
    assert.ok(selects(byKind('Service').spec.selector), 'the Service selects the pods');
    assert.ok(selects(byKind('PodDisruptionBudget').spec.selector.matchLabels), 'the PDB covers the pods');
    assert.ok(selects(byKind('NetworkPolicy').spec.podSelector.matchLabels), 'the NetworkPolicy covers the pods');
    assert.ok(dep.spec.replicas >= 3 && byKind('PodDisruptionBudget').spec.maxUnavailable < dep.spec.replicas);
    assert.equal(byKind('HorizontalPodAutoscaler').spec.scaleTargetRef.name, dep.metadata.name);
    const c = pod.spec.containers[0];
    const config = byKind('ConfigMap').data as Record<string, string>;
    assert.equal(c.ports[0].containerPort, Number(config.LATCHKEY_PORT));
    assert.equal(byKind('Service').spec.ports[0].targetPort, c.ports[0].name);
    assert.equal(c.livenessProbe.httpGet.path, '/healthz');
    assert.equal(c.startupProbe.httpGet.path, '/healthz');
    assert.equal(c.readinessProbe.httpGet.path, '/readyz');
    for (const p of [c.livenessProbe, c.readinessProbe, c.startupProbe]) assert.equal(p.httpGet.port, c.ports[0].name);
    // Master key, admin token and database URL only from the Secret, never in the ConfigMap.
    const fromSecret = Object.fromEntries(c.env.map((e: any) => [e.name, e.valueFrom?.secretKeyRef?.name]));
    for (const name of ['LATCHKEY_MASTER_KEY', 'LATCHKEY_ADMIN_TOKEN', 'LATCHKEY_DATABASE_URL']) {
      assert.equal(fromSecret[name], 'latchkey', `${name} from the Secret`);
      assert.equal(config[name], undefined);
    }
    assert.equal(pod.spec.securityContext.runAsNonRoot, true);
    assert.equal(c.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c.securityContext.allowPrivilegeEscalation, false);
    assert.deepEqual(c.securityContext.capabilities.drop, ['ALL']);
    assert.equal(pod.spec.automountServiceAccountToken, false);
    // Every path the IdP writes is a volume: the data folder and /tmp.
    const mounts = c.volumeMounts.map((m: any) => m.mountPath);
    assert.ok(mounts.includes(config.LATCHKEY_DATA_DIR) && mounts.includes('/tmp'));
    assert.ok(config.LATCHKEY_TLS_CERT!.startsWith(c.volumeMounts.find((m: any) => m.name === 'tls').mountPath));
    // Long enough to drain (readyz 503 for the grace) and finish the longest request (30 s).
    assert.ok(pod.spec.terminationGracePeriodSeconds > Number(config.LATCHKEY_SHUTDOWN_GRACE) + 30);
  });

  test("the configuration is one Latchkey's own loader accepts", () => {
    const { input, unknown } = configFromEnv({
      ...byKind('ConfigMap').data,
      LATCHKEY_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'),
      LATCHKEY_ADMIN_TOKEN: 'x'.repeat(43),
      LATCHKEY_DATABASE_URL: 'postgres://latchkey@postgres.db.svc:5432/latchkey',
    });
    assert.deepEqual(unknown, []);
    const config = loadConfig(input, unknown);
    assert.equal(config.port, 8443);
    assert.equal(config.issuer, 'https://idp.example.com');
  });
});
