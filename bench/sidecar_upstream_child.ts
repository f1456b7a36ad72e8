// The protected service of the sidecar benchmark: plain node:http answering a small JSON body.
import { createServer } from 'node:http';

const body = JSON.stringify({ ok: true, service: 'orders' });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
// Longer than the proxies' idle keep-alive, so a proxy never reuses a connection the upstream is closing.
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ kind: 'ready', port: (server.address() as { port: number }).port });
});
process.on('message', (m: { kind: string }) => {
  if (m.kind === 'stop') server.close(() => process.exit(0));
});
