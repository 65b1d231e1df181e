"""The ``/metrics`` endpoint, with the per-indicator families' text rendered once per change.

At national scale the per-indicator families are ~3,200 keys, ~40,000 sample lines (4.4 MB);
``prometheus_client.generate_latest`` checks and escapes every sample's name and labels at every
scrape: 1.2-1.4 s of CPU under the GIL the worker's loop needs, and 4-7 s for the scrape that
comes while a restarted worker is busy (timed scrapes of a worker holding the bench's
national history). Here those families
are rendered to the same text format by ``render_gauges`` when they change (at most once per
refresh, lazily on the first scrape after it), and a scrape joins that text to
``generate_latest`` of every other collector (counters, lag, names: a few hundred lines).

The endpoint always answers in Prometheus' text format 0.0.4 (every Prometheus reads it),
gzipped when the scraper accepts it, as prometheus_client's own handler does.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import generate_latest
from prometheus_client.core import Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
_HELP = str.maketrans({"\\": r"\\", "\n": r"\n"})
_VALUE = str.maketrans({"\\": r"\\", "\n": r"\n", '"': r"\""})


def render_gauges(families: Iterable[Metric]) -> bytes:
    """``families`` (gauges, no timestamps) in the text format, byte for byte what
    ``generate_latest`` writes for them, without its per-sample name checks: the names are the
    families' own, known valid; label values are escaped as it escapes them."""
    out: list[str] = []
    braces: dict[tuple[tuple[str, str], ...], str] = {}  # a key's labels recur in every family
    for family in families:
        if family.type != "gauge":
            raise ValueError(f"render_gauges takes gauges, not {family.type} ({family.name})")
        out.append(f"# HELP {family.name} {family.documentation.translate(_HELP)}\n")
        out.append(f"# TYPE {family.name} gauge\n")
        for sample in family.samples:
            items = tuple(sample.labels.items())
            labels = braces.get(items)
            if labels is None:
                labels = braces[items] = _braces(items)
            out.append(f"{sample.name}{labels} {floatToGoString(sample.value)}\n")
    return "".join(out).encode("utf-8")


def _braces(items: tuple[tuple[str, str], ...]) -> str:
    labels = ",".join(f'{k}="{v.translate(_VALUE)}"' for k, v in sorted(items))
    return f"{{{labels}}}" if labels else ""


class _Except:
    """The families of ``registry`` but those named in ``skip``."""

    def __init__(self, registry: Collector, skip: frozenset[str]) -> None:
        self.registry, self.skip = registry, skip

    def collect(self) -> Iterator[Metric]:
        return (family for family in self.registry.collect() if family.name not in self.skip)


def metrics_body(registry: Collector, rendered: frozenset[str], text: bytes) -> bytes:
    """The whole exposition: ``registry``'s families but those named in ``rendered`` through
    ``generate_latest``, then ``text`` (those families, already rendered)."""
    return generate_latest(_Except(registry, rendered)) + text  # type: ignore[arg-type]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (prometheus_client's handler does the same)."""


def serve_metrics(host: str, port: int, body: Callable[[], bytes]) -> WSGIServer:
    """Serve ``body()`` as the text exposition on every GET path, from a daemon thread."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["REQUEST_METHOD"] != "GET":
            start_response("405 Method Not Allowed", [("Allow", "GET")])
            return [b""]
        output, headers = body(), [("Content-Type", TEXT_0_0_4)]
        if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            output = gzip.compress(output, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [output]

    class Server(ThreadingWSGIServer):
        address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

    server = make_server(host, port, app, Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
    return server
