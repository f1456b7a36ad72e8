import { api } from '../api.ts';
import { ErrorText, Note, Page, useAction, useLoad, when, Grid } from '../ui.tsx';

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
          <Grid
            label="signing keys"
            columns={[
              'Key id',
              'Algorithm',
              'State',
              'Created',
              'Signing since',
              'Retired',
              'Removed after',
              { hidden: 'Actions' },
            ]}
          >
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
          </Grid>
        </>
      )}
    </Page>
  );
}

/**
 * One row per key: announced (created → signing), signing (→ retired; for the current key, until
 * the next rotation, drawn lighter), published while retired (→ removal). The window runs from the
 * oldest key's creation to the last removal (or now), so the recent past stays readable when the
 * next rotation is a day away; what runs past the window ends in an arrow. Drawn as SVG: nothing
 * inline that the CSP would refuse.
 */
function Timeline({ keys, next }: { keys: Key[]; next: number | null }) {
  const now = Date.now() / 1000;
  const ends = keys.flatMap((k) => [k.remove_after ?? 0, k.retired_at ?? 0]);
  const start = Math.min(now, ...keys.map((k) => k.created_at));
  const end = Math.max(now + 60, ...ends) + (Math.max(now + 60, ...ends) - start) * 0.08;
  const width = 1000;
  const label = 230;
  const row = 28;
  const plot = width - label - 20;
  const x = (t: number) => label + ((Math.min(Math.max(t, start), end) - start) / (end - start)) * plot;
  const phases = (k: Key) => {
    const out: { from: number; to: number; phase: string; planned?: boolean }[] = [];
    if (k.state === 'next') {
      out.push({ from: k.created_at, to: next ?? end, phase: 'announced' });
      if (next !== null) out.push({ from: next, to: end, phase: 'signing', planned: true });
      return out;
    }
    const signedFrom = k.activated_at ?? k.created_at;
    if (signedFrom > k.created_at) out.push({ from: k.created_at, to: signedFrom, phase: 'announced' });
    if (k.state === 'current') {
      out.push({ from: signedFrom, to: now, phase: 'signing' });
      out.push({ from: now, to: next ?? end, phase: 'signing', planned: true });
    } else {
      const stopped = k.retired_at ?? now;
      out.push({ from: signedFrom, to: stopped, phase: 'signing' });
      out.push({ from: stopped, to: k.remove_after ?? end, phase: k.state === 'revoked' ? 'revoked' : 'retired' });
    }
    return out;
  };
  const ticks = Array.from({ length: 5 }, (_, i) => start + ((end - start) * i) / 4);
  const height = keys.length * row + 44;
  const axis = keys.length * row + 8;
  return (
    <figure class="timeline" data-keys={keys.length}>
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="timeline-title">
        <title id="timeline-title">
          Signing keys from {when(start)} to {when(end)}: {keys.map((k) => `${k.kid} ${k.state}`).join(', ')}
        </title>
        {ticks.map((t, i) => (
          <g key={t}>
            <line class="tl-grid" x1={x(t)} x2={x(t)} y1={0} y2={axis} />
            <text class="tl-axis" x={x(t)} y={axis + 16} text-anchor={i === ticks.length - 1 ? 'end' : 'middle'}>
              {new Date(t * 1000).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}
            </text>
          </g>
        ))}
        {keys.map((k, i) => (
          <g key={k.kid} data-kid={k.kid}>
            <text x={4} y={i * row + 19} class="tl-label">
              {k.kid.slice(0, 18)} · {k.state}
            </text>
            {phases(k)
              .filter((p) => p.to > p.from)
              .map((p) => (
                <rect
                  key={`${p.phase}${p.planned ? '-planned' : ''}`}
                  class={`tl-${p.phase}${p.planned ? ' tl-planned' : ''}`}
                  x={x(p.from)}
                  y={i * row + 6}
                  width={Math.max(2, x(p.to) - x(p.from))}
                  height={18}
                >
                  <title>
                    {k.kid} {p.planned ? 'to sign' : p.phase} {when(p.from)} – {when(p.to)}
                  </title>
                </rect>
              ))}
          </g>
        ))}
        <line class="tl-now" x1={x(now)} x2={x(now)} y1={0} y2={axis} />
        <text class="tl-axis tl-now-label" x={x(now) + 4} y={10}>
          now
        </text>
        {next !== null && next <= end && <line class="tl-next" x1={x(next)} x2={x(next)} y1={0} y2={axis} />}
      </svg>
      <figcaption>
        <span class="swatch tl-announced" aria-hidden="true" /> announced (published, not signing){' '}
        <span class="swatch tl-signing" aria-hidden="true" /> signing{' '}
        <span class="swatch tl-signing tl-planned" aria-hidden="true" /> to sign until the next rotation{' '}
        <span class="swatch tl-retired" aria-hidden="true" /> retired (published until its tokens expire){' '}
        <span class="swatch tl-revoked" aria-hidden="true" /> revoked
        {next !== null && next > end && <> · next rotation {when(next)} →</>}
      </figcaption>
    </figure>
  );
}
