"""A ClickHouse server for the fault tests: chdb behind enough of ClickHouse's HTTP interface.

There is no clickhouse-server on the development machines, and chdb cannot listen. The tests that
take ClickHouse away and bring it back need a server a worker reaches over HTTP exactly as it
would reach a real one: this process forwards each request clickhouse-connect sends (queries with
``param_*`` bindings, DDL, Native inserts streamed with chunked encoding and lz4) to chdb and
answers as ClickHouse does (result bytes, ``X-ClickHouse-*`` headers, errors as HTTP 500 with an
exception code). Stopping it and starting it again on the same port is an outage and a recovery.

Run: ``python tests/chdb_http_shim.py --port 18123 --path DIR`` (prints ``listening`` when up).
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

INSERT = re.compile(rb"^\s*INSERT\s+INTO\s+(.+?)\s+FORMAT\s+(\w+)[ \t]*\r?\n?", re.I | re.S)
TRAILING_FORMAT = re.compile(rb"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
ERROR_CODE = re.compile(r"Code:\s*(\d+)")


def _decompress(data: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if not encoding or encoding == "identity":
        return data
    if encoding == "lz4":
        import lz4.frame

        # clickhouse-connect compresses a big insert block by block: one frame after another
        frames, at, view = [], 0, memoryview(data)
        while at < len(data):
            frame, used = lz4.frame.decompress(view[at:], return_bytes_read=True)
            frames.append(frame)
            at += used
        return b"".join(frames)
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "deflate":
        return zlib.decompress(data)
    if encoding == "zstd":
        from backports import zstd  # type: ignore[import-not-found]

        return zstd.decompress(data)
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ChdbServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/ping" or (parts.path == "/" and not parts.query):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain"})
            return
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(chunks)
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decompress(data, self.headers.get("Content-Encoding", ""))

    def _handle(self) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        try:
            body = self._body()
        except Exception as exc:
            self._error(f"Code: 27. DB::Exception: cannot read the request: {exc}")
            return
        query = params.get("query")
        sql, data = (query.encode(), body) if query is not None else (body, b"")
        bindings = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        try:
            out, fmt = self.server.execute(sql, data, bindings)
        except Exception as exc:
            self._error(str(exc))
            return
        headers = {
            "Content-Type": "application/octet-stream",
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Query-Id": params.get("query_id", ""),
            "X-ClickHouse-Summary": '{"read_rows":"0","written_rows":"0"}',
        }
        self._reply(200, out, headers)

    def _error(self, message: str) -> None:
        if "DB::Exception" not in message:
            message = f"Code: 1000. DB::Exception: {message}"
        code = ERROR_CODE.search(message)
        self._reply(
            500,
            message.encode("utf-8", "replace"),
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": code.group(1) if code else "1000",
            },
        )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ChdbServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, path: Path) -> None:
        import chdb

        super().__init__(("127.0.0.1", port), Handler)
        path.mkdir(parents=True, exist_ok=True)
        self.conn = chdb.connect(str(path))
        self.lock = threading.Lock()
        self.scratch = Path(tempfile.mkdtemp(prefix="chdb-shim-"))

    def execute(self, sql: bytes, data: bytes, bindings: dict[str, str]) -> tuple[bytes, str]:
        """Run one request on chdb: (response body, its format)."""
        insert = INSERT.match(sql)
        with self.lock:
            if insert is not None:
                rest = sql[insert.end() :] + data
                infile = self.scratch / "insert.bin"
                infile.write_bytes(rest)
                target, fmt = insert.group(1).decode(), insert.group(2).decode()
                self.conn.query(
                    f"INSERT INTO {target} FROM INFILE '{infile}' FORMAT {fmt}", "TabSeparated"
                )
                return b"", "TabSeparated"
            found = TRAILING_FORMAT.search(sql)
            fmt = found.group(1).decode() if found else "TabSeparated"
            result = self.conn.query(sql.decode("utf-8"), fmt, params=bindings)
            return result.bytes() or b"", fmt


class ClickHouseShim:
    """The shim as a child process the tests start, stop (an outage) and start again."""

    def __init__(self, port: int, path: Path, log: Path | None = None) -> None:
        self.port = port
        self.path = path
        self.log = log
        self.proc: subprocess.Popen[str] | None = None

    def url(self, password: str = "") -> str:
        auth = f"default:{password}@" if password else "default@"
        return f"http://{auth}127.0.0.1:{self.port}/parkpulse"

    def start(self, timeout: float = 30.0) -> ClickHouseShim:
        out = open(self.log, "a") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--port", str(self.port), "--path", str(self.path)],
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "listening" in line:
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"chdb HTTP shim did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def query(self, sql: str) -> list[list[str]]:
        """Rows of ``sql`` (TabSeparated, as strings) from the running shim."""
        return [line.split("\t") for line in self.query_text(sql).splitlines()]

    def rows(self, sql: str) -> list[dict[str, object]]:
        """Rows of ``sql`` as dicts (JSONEachRow) from the running shim."""
        import orjson

        text = self.query_text(f"{sql} FORMAT JSONEachRow")
        return [orjson.loads(line) for line in text.split("\n") if line.strip()]

    def query_text(self, sql: str) -> str:
        import urllib.parse
        import urllib.request

        url = f"http://127.0.0.1:{self.port}/?" + urllib.parse.urlencode({"query": sql})
        with urllib.request.urlopen(url, timeout=30) as resp:
            return str(resp.read().decode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", type=Path, required=True)
    args = parser.parse_args()
    server = ChdbServer(args.port, args.path)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("listening", args.port, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        server.conn.close()
        os._exit(0)


if __name__ == "__main__":
    main()
