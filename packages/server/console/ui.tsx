import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, type Problem } from './api.ts';

/** Loads something (again on `reload()` and whenever `deps` change); errors become text. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string>('');
  const [tick, setTick] = useState(0);
  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's
  useEffect(() => {
    let live = true;
    load().then(
      (d) => {
        if (!live) return;
        setData(d);
        setError('');
      },
      (err: unknown) => live && setError(describe(err)),
    );
    return () => {
      live = false;
    };
  }, [tick, ...deps]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, reload };
}

/** An error as one line: the admin API's code and description. */
export function describe(err: unknown): string {
  if (err instanceof ApiError) return `${err.message} (${err.code}, ${err.status})`;
  return err instanceof Error ? err.message : String(err);
}

/** Runs an action, keeping its outcome to show: success text or the error with its problems. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<{ ok: boolean; text: string; problems: Problem[] } | undefined>();
  const run = async (action: () => Promise<string | undefined>) => {
    setBusy(true);
    try {
      const text = await action();
      setNote(text ? { ok: true, text, problems: [] } : undefined);
    } catch (err) {
      setNote({ ok: false, text: describe(err), problems: err instanceof ApiError ? err.problems : [] });
    } finally {
      setBusy(false);
    }
  };
  return { busy, note, run, clear: () => setNote(undefined) };
}

export function Note({ note }: { note: { ok: boolean; text: string; problems: Problem[] } | undefined }) {
  if (!note) return null;
  return (
    <div class={note.ok ? 'note ok' : 'note bad'} role={note.ok ? 'status' : 'alert'}>
      <p>{note.text}</p>
      {note.problems.length > 0 && (
        <ul class="problems">
          {note.problems.map((p, i) => (
            <li key={i}>
              {p.source !== undefined && (
                <code class="where">
                  {p.source}
                  {p.line !== undefined ? `:${p.line}` : ''}
                  {p.column !== undefined ? `:${p.column}` : ''}
                </code>
              )}
              {p.path !== undefined && <code class="where">{p.path}</code>} {p.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function ErrorText({ error }: { error: string }) {
  return error ? (
    <p class="note bad" role="alert">
      {error}
    </p>
  ) : null;
}

export function Page(props: { title: string; actions?: ComponentChildren; children: ComponentChildren }) {
  return (
    <section class="page" aria-labelledby="page-title">
      <header class="page-head">
        <h1 id="page-title">{props.title}</h1>
        <div class="actions">{props.actions}</div>
      </header>
      {props.children}
    </section>
  );
}

/** Epoch seconds or an RFC 3339 string as local date and time; "—" for none. */
export function when(t: number | string | null | undefined): string {
  if (t === null || t === undefined) return '—';
  const d = typeof t === 'number' ? new Date(t * 1000) : new Date(t);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="empty">{children}</p>;
}

/** A data table: its column headings (`{ hidden }` for one only screen readers need) and rows. */
export function Grid(props: {
  label?: string;
  caption?: ComponentChildren;
  columns: (string | { hidden: string })[];
  children: ComponentChildren;
}) {
  return (
    <table class="grid" aria-label={props.label}>
      {props.caption && <caption>{props.caption}</caption>}
      <thead>
        <tr>
          {props.columns.map((c) => (
            <th scope="col" key={typeof c === 'string' ? c : c.hidden}>
              {typeof c === 'string' ? c : <span class="visually-hidden">{c.hidden}</span>}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>{props.children}</tbody>
    </table>
  );
}
