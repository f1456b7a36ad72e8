"""Billing, the demo's service in another language: Python's standard library only, no Latchkey code.

The Latchkey sidecar in front of it verifies the caller's token and Transaction Token, decides with
Cedar and forwards the identity as X-Latchkey-* headers, which it removes from outside requests,
so billing can trust them. It answers with what it was told.
Usage: python3 billing.py <port>; prints "listening <port>" when ready.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "invoices":
            return self.answer(404, {"error": "not_found"})
        act = self.headers.get("X-Latchkey-Act")
        self.answer(200, {
            "invoice": parts[1],
            "amount_eur": 42.00,
            "for_user": self.headers.get("X-Latchkey-Sub"),
            "caller": self.headers.get("X-Latchkey-Client-Id"),
            "act": json.loads(act) if act else None,
            "peer": self.headers.get("X-Latchkey-Peer"),
            "txn": self.headers.get("X-Latchkey-Txn"),
            "saw_authorization_header": "Authorization" in self.headers,
        })

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
