// Child process for the propagation benchmark: opens `count` SSE streams to the IdP's feed over
// raw node:tls sockets (an HTTP/1.1 GET written by hand: the cheapest reader Node has, so the
// readers' own parsing weighs as little as possible in what is measured) and stamps each
// revocation's arrival (epoch ms, sub-millisecond) per stream. Several of these share a fleet.
import { connect, type TLSSocket } from 'node:tls';

interface Start {
  kind: 'start';
  issuer: string;
  authorization: string;
  ca: string;
  count: number;
}

const arrivals = new Map<string, number[]>();
const sockets: TLSSocket[] = [];
const now = () => performance.timeOrigin + performance.now();
const MARK = Buffer.from('"ref":"');

function open(m: Start): Promise<void> {
  const url = new URL(`${m.issuer}/feeds/stream?streams=revocations`);
  return new Promise((resolve, reject) => {
    const s = connect({ host: url.hostname, port: Number(url.port), ca: m.ca, servername: url.hostname }, () => {
      s.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nauthorization: ${m.authorization}\r\naccept: text/event-stream\r\n\r\n`,
      );
    });
    let first = true;
    s.on('data', (chunk: Buffer) => {
      if (first) {
        first = false;
        if (!chunk.subarray(0, 12).toString('latin1').includes(' 200'))
          reject(new Error(chunk.toString('latin1', 0, 80)));
        else resolve();
      }
      const at = now();
      for (let i = chunk.indexOf(MARK); i >= 0; i = chunk.indexOf(MARK, i + MARK.length)) {
        const from = i + MARK.length;
        const ref = chunk.toString('latin1', from, chunk.indexOf(0x22, from));
        const list = arrivals.get(ref);
        if (list) list.push(at);
        else arrivals.set(ref, [at]);
      }
    });
    s.on('error', reject);
    sockets.push(s);
  });
}

process.on('message', async (m: Start | { kind: 'collect'; ref: string } | { kind: 'stop' }) => {
  if (m.kind === 'start') {
    for (let i = 0; i < m.count; i += 100)
      await Promise.all(Array.from({ length: Math.min(100, m.count - i) }, () => open(m)));
    process.send?.({ kind: 'opened' });
  } else if (m.kind === 'collect') {
    process.send?.({ kind: 'arrivals', times: arrivals.get(m.ref) ?? [] });
  } else {
    for (const s of sockets) s.destroy();
    process.exit(0);
  }
});
