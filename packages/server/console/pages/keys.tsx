import { api } from '../api.ts';
import { ErrorText, Note, Page, useAction, useLoad, when } from '../ui.tsx';

interface Key {
  kid: string;
  alg: string;
  state: 'next' | 'current' | 'retired' | 'revoked';
  created_at: number;
  activated_at: number | null;
  retired_at: number | null;
  remove_after: number | null;
}
interface Listing {
  keys: Key[];
  next_rotation_at: number | null;
}

/** Signing keys: their lifecycle on a timeline (announced, signing, retired, removed), rotate, revoke. */
export function Keys() {
  const { data, error, reload } = useLoad(() => api<Listing>('GET', '/admin/keys'));
  const action = useAction();
  const rotate = (now: boolean) =>
    action.run(async () => {
      const r = await api<Listing>('POST', '/admin/keys/rotate', { now });
      reload();
      const current = r.keys.find((k) => k.state === 'current');
      return now
        ? `Rotated: ${current?.kid ?? '?'} signs now.`
        : 'A next key is announced; it signs once the announce window has passed.';
    });
  const revoke = (kid: string) =>
    action.run(async () => {
      if (!confirm(`Revoke key ${kid}? Every token it signed stops working at once.`)) return;
      await api('POST', `/admin/keys/${encodeURIComponent(kid)}/revoke`);
      reload();
      return `Key ${kid} is revoked.`;
    });
  return (
    <Page
      title="Signing keys"
      actions={
        <>
          <button type="button" disabled={action.busy} onClick={() => rotate(false)}>
            Announce a next key
          </button>
          <button type="button" disabled={action.busy} onClick={() => rotate(true)}>
            Rotate now
          </button>
        </>
      }
    >
      <ErrorText error={error} />
      <Note note={action.note} />
      {data && (
        <>
          <p>
            Next scheduled rotation: <strong>{when(data.next_rotation_at)}</strong>
          </p>
          <Timeline keys={data.keys} next={data.next_rotation_at} />
          <table class="grid" aria-label="signing keys">
            <thead>
              <tr>
                <th scope="col">Key id</th>
                <th scope="col">Algorithm</th>
                <th scope="col">State</th>
                <th scope="col">Created</th>
                <th scope="col">Signing since</th>
                <th scope="col">Retired</th>
                <th scope="col">Removed after</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {data.keys.map((k) => (
                <tr key={k.kid} data-kid={k.kid} data-state={k.state}>
                  <td>
                    <code>{k.kid}</code>
                  </td>
                  <td>{k.alg}</td>
                  <td>
                    <span class={`badge ${k.state}`}>{k.state}</span>
                  </td>
                  <td>{when(k.created_at)}</td>
                  <td>{when(k.activated_at)}</td>
                  <td>{when(k.retired_at)}</td>
                  <td>{when(k.remove_after)}</td>
                  <td>
                    {k.state !== 'revoked' && (
                      <button type="button" class="danger small" disabled={action.busy} onClick={() => revoke(k.kid)}>
                        Revoke
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </Page>
  );
}

/**
 * One row per key: announced (created → signing), signing (→ retired), published while retired
 * (→ removal); a line marks now and a tick the next rotation. Drawn as SVG (no script or inline
 * style needed under the CSP).
 */
function Timeline({ keys, next }: { keys: Key[]; next: number | null }) {
  const now = Date.now() / 1000;
  const times = keys.flatMap((k) => [k.created_at, k.activated_at, k.retired_at, k.remove_after]);
  const start = Math.min(now, ...keys.map((k) => k.created_at));
  const end = Math.max(now, next ?? now, ...(times.filter((t) => t !== null) as number[])) + 60;
  const width = 900;
  const label = 170;
  const row = 26;
  const x = (t: number) => label + ((t - start) / (end - start)) * (width - label - 10);
  const phases = (k: Key) => {
    const out: { from: number; to: number; phase: string }[] = [];
    const signedFrom = k.activated_at ?? (k.state === 'next' ? null : k.created_at);
    out.push({ from: k.created_at, to: signedFrom ?? (k.state === 'next' ? (next ?? now) : now), phase: 'announced' });
    if (signedFrom !== null) out.push({ from: signedFrom, to: k.retired_at ?? now, phase: 'signing' });
    if (k.retired_at !== null)
      out.push({ from: k.retired_at, to: k.remove_after ?? now, phase: k.state === 'revoked' ? 'revoked' : 'retired' });
    return out.filter((p) => p.to >= p.from);
  };
  const height = keys.length * row + 40;
  return (
    <figure class="timeline" data-keys={keys.length}>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="timeline-title">
        <title id="timeline-title">
          Signing key lifecycle from {when(start)} to {when(end)}
        </title>
        {keys.map((k, i) => (
          <g key={k.kid} data-kid={k.kid}>
            <text x={4} y={i * row + 18} class="tl-label">
              {k.kid.slice(0, 20)} ({k.state})
            </text>
            {phases(k).map((p) => (
              <rect
                key={p.phase}
                class={`tl-${p.phase}`}
                x={x(p.from)}
                y={i * row + 6}
                width={Math.max(2, x(p.to) - x(p.from))}
                height={16}
              >
                <title>
                  {k.kid} {p.phase} {when(p.from)} – {when(p.to)}
                </title>
              </rect>
            ))}
          </g>
        ))}
        <line class="tl-now" x1={x(now)} x2={x(now)} y1={0} y2={height - 20} />
        <text class="tl-axis" x={x(now) + 3} y={height - 6}>
          now
        </text>
        {next !== null && (
          <>
            <line class="tl-next" x1={x(next)} x2={x(next)} y1={0} y2={height - 20} />
            <text class="tl-axis" x={x(next) + 3} y={height - 20}>
              next rotation
            </text>
          </>
        )}
      </svg>
      <figcaption>
        <span class="swatch tl-announced" aria-hidden="true" /> announced{' '}
        <span class="swatch tl-signing" aria-hidden="true" /> signing{' '}
        <span class="swatch tl-retired" aria-hidden="true" /> retired (still published){' '}
        <span class="swatch tl-revoked" aria-hidden="true" /> revoked
      </figcaption>
    </figure>
  );
}
