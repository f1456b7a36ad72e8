import type { ServerResponse } from 'node:http';

/**
 * Starts a Server-Sent Events response (WHATWG HTML §9.2) on a hijacked reply: no caching, no
 * proxy buffering (nginx's `X-Accel-Buffering`), `retry` for EventSource clients, and a first
 * comment naming the cursor the stream starts after, which opens it at once.
 */
export function openEventStream(res: ServerResponse, cursor: number): void {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-content-type-options': 'nosniff',
  });
  res.write(`retry: 2000\n: cursor ${cursor}\n\n`);
}
