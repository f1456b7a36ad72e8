// The physical ceiling of a proxy in Node: plain node:http in, node:http out over a keep-alive
// agent, the response piped back. No checks, no header rewriting beyond dropping hop-by-hop ones.
import { Agent, createServer, request } from 'node:http';

const target = new URL(process.argv[2] as string);
const agent = new Agent({ keepAlive: true, maxSockets: 64 });
const server = createServer((req, res) => {
  const headers = { ...req.headers };
  delete headers.connection;
  delete headers['keep-alive'];
  const up = request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent },
    (upRes) => {
      const out = { ...upRes.headers };
      delete out.connection;
      delete out['keep-alive'];
      res.writeHead(upRes.statusCode ?? 502, out);
      upRes.pipe(res);
    },
  );
  up.on('error', () => {
    res.writeHead(502).end();
  });
  req.pipe(up);
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ kind: 'ready', port: (server.address() as { port: number }).port });
});
process.on('message', (m: { kind: string }) => {
  if (m.kind === 'stop') server.close(() => process.exit(0));
});
