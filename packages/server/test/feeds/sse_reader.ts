import { Agent, fetch } from 'undici';

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/**
 * A minimal test-side SSE consumer over undici's fetch, so a test controls exactly when the
 * connection drops and which Last-Event-ID it resumes from. (Interop with a real EventSource
 * client is tested separately with the `eventsource` package.)
 */
export async function openSse(url: string, options: { ca?: string | undefined; headers: Record<string, string> }) {
  const controller = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', ...options.headers },
    signal: controller.signal,
    dispatcher: new Agent({ connect: options.ca ? { ca: options.ca } : {} }),
  });
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const waiters: (() => void)[] = [];
  let buffer = '';
  let ended = false;
  const done = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const ev: SseEvent = { data: '' };
          let isEvent = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) (ev.id = line.slice(4)), (isEvent = true);
            else if (line.startsWith('event: ')) (ev.event = line.slice(7)), (isEvent = true);
            else if (line.startsWith('data: ')) (ev.data += line.slice(6)), (isEvent = true);
          }
          if (isEvent) events.push(ev);
          waiters.splice(0).forEach((w) => w());
        }
      }
    } catch {
      /* aborted */
    }
    ended = true;
  })();
  return {
    status: res.status,
    headers: res.headers,
    events,
    comments,
    /** Settles when the server ends the stream (or it is closed here). */
    done,
    ended: () => ended,
    /** Waits until `n` events arrived (or throws after `ms`). */
    async waitFor(n: number, ms = 5000): Promise<SseEvent[]> {
      const deadline = Date.now() + ms;
      while (events.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${events.length} of ${n} events after ${ms} ms`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
      return events.slice(0, n);
    },
    close(): Promise<void> {
      controller.abort();
      return done;
    },
  };
}
