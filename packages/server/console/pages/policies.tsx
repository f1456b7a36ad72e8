import { useEffect, useState } from 'preact/hooks';
import { ApiError, api } from '../api.ts';
import { Empty, ErrorText, Note, Page, useAction, useLoad, when, Grid } from '../ui.tsx';

interface Bundle {
  version: number;
  digest: string;
  publishedAt: string;
  actor: string;
  note: string | null;
  schema: Record<string, string>;
  policies: Record<string, string>;
  entities: unknown[];
}
type Summary = Omit<Bundle, 'schema' | 'policies' | 'entities'>;
interface Changes {
  added: string[];
  removed: string[];
  changed: string[];
}
interface Diff {
  from: number;
  to: number;
  policies: Changes;
  schema: Changes;
  entities: Changes;
}

/** Policies: versions, the active bundle as an editable draft (validate, push), a diff, rollback. */
export function Policies() {
  const versions = useLoad(() => api<{ versions: Summary[] }>('GET', '/admin/policy/versions?limit=50'));
  const active = useLoad(() =>
    api<Bundle>('GET', '/admin/policy').catch((err) => {
      if (err instanceof ApiError && err.status === 404) return undefined;
      throw err;
    }),
  );
  const action = useAction();
  const reload = () => {
    versions.reload();
    active.reload();
  };
  const rollback = (version: number) =>
    action.run(async () => {
      if (!confirm(`Publish version ${version} again as the active bundle?`)) return;
      const r = await api<{ version: number; unchanged: boolean }>('POST', '/admin/policy/rollback', { version });
      reload();
      return r.unchanged
        ? `Version ${version} is the active bundle already.`
        : `Rolled back: version ${r.version} has the contents of ${version}.`;
    });
  const list = versions.data?.versions ?? [];
  return (
    <Page title="Policies">
      <ErrorText error={versions.error || active.error} />
      <Note note={action.note} />
      {versions.data && list.length === 0 && <Empty>No policy bundle has been published yet.</Empty>}
      {list.length > 0 && (
        <Grid label="policy versions" columns={['Version', 'Published', 'By', 'Note', 'Digest', { hidden: 'Actions' }]}>
          {list.map((v, i) => (
            <tr key={v.version} data-version={v.version}>
              <td>
                {v.version} {i === 0 && <span class="badge active">active</span>}
              </td>
              <td>{when(v.publishedAt)}</td>
              <td>{v.actor}</td>
              <td>{v.note ?? ''}</td>
              <td>
                <code>{v.digest.slice(0, 16)}</code>
              </td>
              <td>
                {i > 0 && (
                  <button type="button" class="small" disabled={action.busy} onClick={() => rollback(v.version)}>
                    Roll back to {v.version}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </Grid>
      )}
      {list.length > 1 && <DiffView versions={list} />}
      {versions.data && <Draft active={active.data} onPublished={reload} />}
    </Page>
  );
}

function Draft({ active, onPublished }: { active: Bundle | undefined; onPublished: () => void }) {
  const [schema, setSchema] = useState<Record<string, string>>({});
  const [policies, setPolicies] = useState<Record<string, string>>({});
  const [newId, setNewId] = useState('');
  const action = useAction();
  useEffect(() => {
    setSchema(active?.schema ?? { main: '' });
    setPolicies(active?.policies ?? {});
  }, [active?.version]);
  const bundle = () => ({ schema, policies, entities: active?.entities ?? [] });
  const validate = () =>
    action.run(async () => {
      const r = await api<{ ok: boolean; errors: unknown[]; warnings: unknown[] }>(
        'POST',
        '/admin/policy/validate',
        bundle(),
      );
      if (!r.ok)
        throw new ApiError(
          400,
          'validation_failed',
          'The draft does not validate against the schema.',
          r.errors as never,
        );
      return `The draft validates${r.warnings.length ? ` (${r.warnings.length} warnings)` : ''}.`;
    });
  const push = () =>
    action.run(async () => {
      const r = await api<{ version: number; unchanged: boolean }>('POST', '/admin/policy', bundle());
      onPublished();
      return r.unchanged ? 'Nothing changed: the draft equals the active bundle.' : `Published version ${r.version}.`;
    });
  const edit = (kind: 'schema' | 'policy', id: string, text: string) =>
    kind === 'schema' ? setSchema({ ...schema, [id]: text }) : setPolicies({ ...policies, [id]: text });
  return (
    <section class="panel" aria-labelledby="draft-title">
      <h2 id="draft-title">Draft {active ? `(from version ${active.version})` : ''}</h2>
      {Object.entries(schema).map(([id, text]) => (
        <label key={`s-${id}`} class="code">
          Schema fragment <code>{id}</code>
          {id === 'latchkey.cedarschema' && (
            <span class="muted"> (Latchkey's own types, added by the IdP: read-only)</span>
          )}
          <textarea
            readOnly={id === 'latchkey.cedarschema'}
            rows={8}
            spellcheck={false}
            value={text}
            onInput={(e) => edit('schema', id, (e.target as HTMLTextAreaElement).value)}
          />
        </label>
      ))}
      {Object.entries(policies).map(([id, text]) => (
        <label key={`p-${id}`} class="code">
          Policy set <code>{id}</code>
          <textarea
            rows={Math.min(16, text.split('\n').length + 1)}
            spellcheck={false}
            value={text}
            data-policy={id}
            onInput={(e) => edit('policy', id, (e.target as HTMLTextAreaElement).value)}
          />
        </label>
      ))}
      <div class="row">
        <label>
          New policy set id
          <input
            value={newId}
            pattern="[A-Za-z0-9_.-]+"
            onInput={(e) => setNewId((e.target as HTMLInputElement).value)}
          />
        </label>
        <button
          type="button"
          class="secondary"
          disabled={!newId || newId in policies}
          onClick={() => {
            setPolicies({ ...policies, [newId]: '' });
            setNewId('');
          }}
        >
          Add policy set
        </button>
      </div>
      <Note note={action.note} />
      <div class="row">
        <button type="button" disabled={action.busy} onClick={validate}>
          Validate
        </button>
        <button type="button" disabled={action.busy} onClick={push}>
          Push
        </button>
      </div>
    </section>
  );
}

function DiffView({ versions }: { versions: Summary[] }) {
  const [from, setFrom] = useState(versions[1]!.version);
  const [to, setTo] = useState(versions[0]!.version);
  const diff = useLoad(async () => {
    const [d, a, b] = await Promise.all([
      api<Diff>('GET', `/admin/policy/diff?from=${from}&to=${to}`),
      api<Bundle>('GET', `/admin/policy/versions/${from}`),
      api<Bundle>('GET', `/admin/policy/versions/${to}`),
    ]);
    return { d, a, b };
  }, [from, to]);
  const pick = (value: number, set: (v: number) => void, label: string) => (
    <label>
      {label}{' '}
      <select value={value} onChange={(e) => set(Number((e.target as HTMLSelectElement).value))}>
        {versions.map((v) => (
          <option key={v.version} value={v.version}>
            {v.version}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <section class="panel" aria-labelledby="diff-title">
      <h2 id="diff-title">Diff</h2>
      <div class="row">
        {pick(from, setFrom, 'From version')}
        {pick(to, setTo, 'to version')}
      </div>
      <ErrorText error={diff.error} />
      {diff.data && (
        <div class="diff">
          {(['policies', 'schema'] as const).map((part) => {
            const c = diff.data!.d[part];
            const names = [...c.added, ...c.removed, ...c.changed];
            if (names.length === 0) return <p key={part}>{part}: no change</p>;
            const before = part === 'policies' ? diff.data!.a.policies : diff.data!.a.schema;
            const after = part === 'policies' ? diff.data!.b.policies : diff.data!.b.schema;
            return names.map((name) => (
              <div key={`${part}-${name}`} class="diff-file">
                <h3>
                  {part === 'policies' ? 'policy set' : 'schema'} <code>{name}</code>{' '}
                  {c.added.includes(name) ? '(added)' : c.removed.includes(name) ? '(removed)' : '(changed)'}
                </h3>
                <pre>
                  {lineDiff(before[name] ?? '', after[name] ?? '').map((l, i) => (
                    <span key={i} class={`dl ${l.kind}`}>
                      {l.kind === 'add' ? '+ ' : l.kind === 'del' ? '- ' : '  '}
                      {l.text}
                      {'\n'}
                    </span>
                  ))}
                </pre>
              </div>
            ));
          })}
          <p>
            entities: {diff.data.d.entities.added.length} added, {diff.data.d.entities.removed.length} removed,{' '}
            {diff.data.d.entities.changed.length} changed
          </p>
        </div>
      )}
    </section>
  );
}

/** A line diff by longest common subsequence (bundles are small: at most 2,000 lines a side are compared). */
function lineDiff(a: string, b: string): { kind: 'same' | 'add' | 'del'; text: string }[] {
  const lines = (text: string) => (text === '' ? [] : text.split('\n').slice(0, 2000));
  const x = lines(a);
  const y = lines(b);
  const lcs: number[][] = Array.from({ length: x.length + 1 }, () => new Array<number>(y.length + 1).fill(0));
  for (let i = x.length - 1; i >= 0; i--)
    for (let j = y.length - 1; j >= 0; j--)
      lcs[i]![j] = x[i] === y[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
  const out: { kind: 'same' | 'add' | 'del'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < x.length && j < y.length) {
    if (x[i] === y[j]) {
      out.push({ kind: 'same', text: x[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ kind: 'del', text: x[i++]! });
    else out.push({ kind: 'add', text: y[j++]! });
  }
  while (i < x.length) out.push({ kind: 'del', text: x[i++]! });
  while (j < y.length) out.push({ kind: 'add', text: y[j++]! });
  return out;
}
