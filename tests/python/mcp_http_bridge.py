"""A small Streamable HTTP ↔ stdio bridge for MCP, so HTTP-only clients (the
conformance suite) can test `logai serve`, which speaks stdio only.

Each MCP session (an `initialize` POST without `Mcp-Session-Id`) gets its own
`logai serve` child process, exactly like one SSH session gets one process;
the bridge answers with an `Mcp-Session-Id` header that routes the session's
later POSTs to the same child. A request POST is answered with a
`text/event-stream` that carries the progress notifications for that
request's `progressToken` and ends with its response (JSON when the client
does not accept SSE). Notification and response POSTs get 202. GET (the
optional standalone SSE stream) gets 405, which the spec allows. DELETE ends
the session (stdin closed: the child exits 0).

Usage: python mcp_http_bridge.py --port N -- /path/to/logai serve --config X
Listens on 127.0.0.1 only. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import queue
import signal
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_BODY = 16 * 1024 * 1024
RESPONSE_TIMEOUT = 120.0


class Child:
    """One `logai serve` process and the routing of its stdout."""

    def __init__(self, argv: list[str]):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.lock = threading.Lock()
        self.waiters: dict[str, queue.Queue] = {}  # JSON text of a request id -> its queue
        self.progress: dict[str, queue.Queue] = {}  # JSON text of a progress token -> queue
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
            except ValueError:
                print(f"bridge: child wrote a non-JSON line: {raw[:200]!r}", file=sys.stderr)
                continue
            with self.lock:
                if "method" in msg and "id" not in msg:
                    token = json.dumps((msg.get("params") or {}).get("progressToken"))
                    q = self.progress.get(token)
                else:
                    q = self.waiters.pop(json.dumps(msg.get("id")), None)
            if q is not None:
                q.put(msg)
            else:
                print(f"bridge: unrouted message from child: {str(msg)[:200]}", file=sys.stderr)
        with self.lock:
            for q in list(self.waiters.values()) + list(self.progress.values()):
                q.put(None)
            self.waiters.clear()

    def send(self, msg: dict) -> None:
        assert self.proc.stdin is not None
        with self.lock:
            self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
            self.proc.stdin.flush()

    def request(self, msg: dict) -> tuple[queue.Queue, str | None]:
        q: queue.Queue = queue.Queue()
        token = ((msg.get("params") or {}).get("_meta") or {}).get("progressToken")
        token_key = json.dumps(token) if token is not None else None
        with self.lock:
            self.waiters[json.dumps(msg["id"])] = q
            if token_key is not None:
                self.progress[token_key] = q
        self.send(msg)
        return q, token_key

    def done(self, token_key: str | None) -> None:
        if token_key is not None:
            with self.lock:
                self.progress.pop(token_key, None)

    def close(self) -> None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()


class Bridge(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, argv: list[str]):
        super().__init__(addr, Handler)
        self.argv = argv
        self.sessions: dict[str, Child] = {}
        self.lock = threading.Lock()

    def shutdown_children(self) -> None:
        with self.lock:
            children = list(self.sessions.values())
            self.sessions.clear()
        for c in children:
            c.close()


class Handler(BaseHTTPRequestHandler):
    server: Bridge
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet; errors go through stderr prints
        pass

    def _plain(self, status: int, text: str = "", headers: dict[str, str] | None = None) -> None:
        body = text.encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self._plain(405, "no standalone SSE stream: this server sends nothing unsolicited", {"Allow": "POST, DELETE"})

    def do_DELETE(self):
        sid = self.headers.get("Mcp-Session-Id")
        with self.server.lock:
            child = self.server.sessions.pop(sid, None) if sid else None
        if child is None:
            return self._plain(404, "unknown session")
        child.close()
        self._plain(200)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._plain(413, "body too large")
        try:
            msg = json.loads(self.rfile.read(length))
        except ValueError as e:
            return self._json(400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": f"Parse error: {e}"}})
        if not isinstance(msg, dict):
            return self._json(400, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}})
        sid = self.headers.get("Mcp-Session-Id")
        headers: dict[str, str] = {}
        ephemeral = False
        if msg.get("method") == "initialize" and not sid:
            sid = uuid.uuid4().hex
            child = Child(self.server.argv)
            with self.server.lock:
                self.server.sessions[sid] = child
        else:
            with self.server.lock:
                child = self.server.sessions.get(sid) if sid else None
            if child is None:
                if sid:
                    return self._plain(404, "unknown or ended session")
                # No session: a stateless (2026-07-28) or sessionless client
                # gets a child for this one message.
                child = Child(self.server.argv)
                ephemeral = True
        if sid:
            headers["Mcp-Session-Id"] = sid
        if "id" not in msg or "method" not in msg:
            child.send(msg)  # notification or a response to the server
            if ephemeral:
                child.close()
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        q, token_key = child.request(msg)
        try:
            sse = "text/event-stream" in (self.headers.get("Accept") or "")
            if not sse:
                while True:
                    out = q.get(timeout=RESPONSE_TIMEOUT)
                    if out is None:
                        return self._plain(502, "the logai process ended")
                    if "method" not in out:
                        return self._json(200, out, headers)
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            while True:
                out = q.get(timeout=RESPONSE_TIMEOUT)
                if out is None:
                    break
                self.wfile.write(b"event: message\ndata: " + json.dumps(out).encode() + b"\n\n")
                self.wfile.flush()
                if "method" not in out:
                    break
            self.close_connection = True
        finally:
            child.done(token_key)
            if ephemeral:
                child.close()


def _terminate(*_):
    raise KeyboardInterrupt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("argv", nargs=argparse.REMAINDER, help="-- logai serve --config ...")
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        ap.error("the logai command is missing (after --)")
    signal.signal(signal.SIGTERM, _terminate)
    bridge = Bridge(("127.0.0.1", args.port), argv)
    print(f"bridge: listening on http://127.0.0.1:{args.port}/mcp", file=sys.stderr, flush=True)
    try:
        bridge.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        bridge.shutdown_children()


if __name__ == "__main__":
    main()
