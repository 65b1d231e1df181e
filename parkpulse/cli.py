"""The ``parkpulse`` console script: one verb per job."""

from __future__ import annotations

import argparse
import asyncio
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
from rich.console import Console

from parkpulse.config import Settings
from parkpulse.deadletter_query import MAX_LIMIT, DeadLetterQuery, page_summary
from parkpulse.filters import FilterError
from parkpulse.logs import setup_logging
from parkpulse.schemas.envelope import ENVELOPE_MAX
from parkpulse.schemas.errors import REASONS

if TYPE_CHECKING:
    from parkpulse.producers.publish import Published
    from parkpulse.producers.verdict import Judge, Verdict

DEFAULT_WAIT = 10.0  # seconds `produce` waits for the worker's verdict (producers/verdict.py)

EXIT_REJECTED = 2
EXIT_NO_STACK = 3


class NoStack(RuntimeError):
    """No running parkpulse and no configured server to talk to."""


class QueryRefused(RuntimeError):
    """The running stack refused a query (its own words, one line)."""


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="state directory (default ./var)")
    parser.add_argument("--broker", help="kafka://host:port (default: embedded Tansu)")
    parser.add_argument(
        "--clickhouse", help="http(s)://user:pass@host:8123/db (default: embedded chdb)"
    )
    parser.add_argument(
        "--reference-dir", type=Path, help="extra zones.csv / indicators.csv to accept"
    )


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (what is wrong, where the help is), not the
    usage block and the error under it; exit status 2 as argparse's."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="parkpulse", description="High-tech zone metrics against their plan targets."
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    for verb, about, add_arguments in _VERBS:
        add_arguments(verbs.add_parser(verb, help=about))
    return parser


def _run_arguments(run: argparse.ArgumentParser) -> None:
    _common(run)
    run.add_argument("--no-demo", action="store_true", help="do not replay the demo feed")
    run.add_argument("--broker-port", type=int, help="embedded Tansu port (default 9092)")
    _listen_ports(run)
    run.add_argument("--no-scoreboard", action="store_true")


def _worker_arguments(worker: argparse.ArgumentParser) -> None:
    _common(worker)
    _listen_ports(worker)


def _produce_arguments(produce: argparse.ArgumentParser) -> None:
    _common(produce)
    produce.add_argument("files", nargs="*", type=Path)
    produce.add_argument(
        "--replay", action="store_true", help="re-publish every file kept under DATA_DIR/feeds"
    )
    produce.add_argument(
        "--envelope",
        type=_envelope_size,
        default=ENVELOPE_MAX,
        metavar="N",
        help=f"figures per Kafka message (default {ENVELOPE_MAX}; 1: one message per figure)",
    )
    produce.add_argument("--no-progress", action="store_true")
    produce.add_argument(
        "--registrations",
        action="store_true",
        help="FILE… are a register's export (统一社会信用代码, 成立日期 …; else known by header)",
    )
    _bureau_options(produce, plan=False)
    _verdict_options(
        produce,
        wait_help="how long to wait for the worker's verdict on the published rows (a conflict"
        " with a stored figure is only found there;"
        f" default {DEFAULT_WAIT:g}; 0: do not wait)",
    )


def _targets_arguments(targets: argparse.ArgumentParser) -> None:
    _common(targets)
    targets.add_argument("files", nargs="+", type=Path)
    targets.add_argument("--no-progress", action="store_true")
    _bureau_options(targets, plan=True)
    _verdict_options(targets)


def _status_arguments(status: argparse.ArgumentParser) -> None:
    _common(status)
    status.add_argument("--zone")
    status.add_argument("--indicator")
    status.add_argument("--plan")
    _format(status, "table", "json")
    status.add_argument(
        "--status", type=_status_list, help="only these statuses, e.g. behind,at_risk"
    )
    status.add_argument("--binding", action="store_true", help="only binding (约束性) targets")
    status.add_argument(
        "--sort", choices=("key", "attainment"), default="key", help="attainment: lowest first"
    )


def _explain_arguments(explain: argparse.ArgumentParser) -> None:
    _common(explain)
    explain.add_argument("zone")
    explain.add_argument("indicator")
    explain.add_argument("plan", nargs="?", help="needed when the indicator has several plans")
    explain.add_argument("--period", help="YYYY-MM (default: the latest month)")
    _format(explain, "table", "json")


def _report_arguments(report: argparse.ArgumentParser) -> None:
    _common(report)
    report.add_argument("--month", required=True, help="YYYY-MM: compared with the month before")
    report.add_argument("--zone", help="one zone (id or name); default every zone")
    _format(report, "html", "pdf")
    report.add_argument("--out", type=Path, help="default DATA_DIR/briefs/brief-YYYY-MM.<format>")


def _scorecard_arguments(scorecard: argparse.ArgumentParser) -> None:
    _common(scorecard)
    _format(scorecard, "table", "json")


def _deadletter_arguments(dead: argparse.ArgumentParser) -> None:
    _common(dead)
    dead.add_argument("--origin", help="only this file's (a file name, or a path to it)")
    dead.add_argument("--reason", choices=REASONS)
    dead.add_argument("--limit", type=_limit, default=200, help=f"rows shown (1..{MAX_LIMIT})")
    _format(dead, "table", "json")


def _suspect_arguments(suspect: argparse.ArgumentParser) -> None:
    _common(suspect)
    suspect.add_argument("--zone")
    _format(suspect, "table", "json")


def _simulate_arguments(simulate: argparse.ArgumentParser) -> None:
    _common(simulate)
    simulate.add_argument("--out", type=Path, help="output folder (default DATA_DIR/simulate)")
    simulate.add_argument("--zones", type=int, default=178)
    simulate.add_argument("--first-year", type=int, default=2016)
    simulate.add_argument("--years", type=int, default=10)
    simulate.add_argument("--seed", default="parkpulse-sim-v1")
    simulate.add_argument(
        "--registrations", type=int, default=0, help="registrations to write (or publish)"
    )
    simulate.add_argument("--batch-size", type=int, default=400, help="registrations/envelope")
    simulate.add_argument(
        "--publish",
        action="store_true",
        help="send the registrations to the broker instead of writing them",
    )
    simulate.add_argument(
        "--rate", type=float, default=0.0, help="events/s when publishing (0: as fast as possible)"
    )
    simulate.add_argument("--no-feeds", action="store_true", help="only the registrations")
    simulate.add_argument("--no-progress", action="store_true")


def _bench_arguments(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--work-dir", type=Path, default=Path("var/bench"))
    bench.add_argument("--out", type=Path, default=Path("bench/results.json"))
    bench.add_argument("--registrations", type=int, default=1_000_000)
    bench.add_argument("--batch-size", type=int, default=400)
    bench.add_argument("--live-rate", type=float, default=20_000)
    bench.add_argument("--live-seconds", type=float, default=15)
    bench.add_argument(
        "--live-flush", type=float, default=0.5, help="seconds a zone's envelope may fill"
    )
    bench.add_argument("--zones", type=int, default=178)
    bench.add_argument("--years", type=int, default=10)
    bench.add_argument("--partitions", type=int, default=4)
    bench.add_argument("--no-backfill", action="store_true")
    bench.add_argument(
        "--no-registrations", action="store_true", help="skip the registrations phases"
    )
    bench.add_argument(
        "--clickhouse-url",
        help="measure against this ClickHouse server (an empty database) instead of chdb; "
        "never read from PARKPULSE_CLICKHOUSE_URL, so a bench cannot write into production",
    )


# Each verb: its name, its one-line help, and what adds its arguments (in `parkpulse -h` order).
_VERBS: tuple[tuple[str, str, Callable[[argparse.ArgumentParser], None]], ...] = (
    ("run", "the embedded stack: broker, worker, ClickHouse, demo", _run_arguments),
    ("worker", "a Faust worker against configured services", _worker_arguments),
    ("produce", "publish bureau feeds (CSV / JSON Lines)", _produce_arguments),
    ("targets", "publish plan targets (plan_targets.csv columns)", _targets_arguments),
    ("status", "latest status of each (zone, indicator, plan)", _status_arguments),
    (
        "explain",
        "one status row: its inputs and every formula with its numbers",
        _explain_arguments,
    ),
    ("report", "the monthly brief per zone (HTML, or PDF)", _report_arguments),
    ("scorecard", "the per-zone roll-up", _scorecard_arguments),
    ("deadletter", "rejected inputs with their reasons", _deadletter_arguments),
    ("suspect", "figures accepted but flagged implausible", _suspect_arguments),
    (
        "simulate",
        "deterministic national-scale data: zones, feeds, targets, registrations",
        _simulate_arguments,
    ),
    ("bench", "measure registrations, backfill and memory", _bench_arguments),
)


def _listen_ports(parser: argparse.ArgumentParser) -> None:
    """Where a worker serves its HTTP API and its /metrics."""
    parser.add_argument("--api-port", type=int)
    parser.add_argument("--metrics-port", type=int)


def _format(parser: argparse.ArgumentParser, default: str, *others: str) -> None:
    """``--format``: how the answer is written, ``default`` unless asked otherwise."""
    parser.add_argument("--format", choices=(default, *others), default=default)


def _verdict_options(parser: argparse.ArgumentParser, wait_help: str | None = None) -> None:
    """How long a publisher waits for the worker's verdict, and which worker API it asks."""
    parser.add_argument(
        "--wait", type=_seconds, default=DEFAULT_WAIT, metavar="SECONDS", help=wait_help
    )
    parser.add_argument("--api", metavar="URL", help="the worker API to ask for the verdict")


def _bureau_options(parser: argparse.ArgumentParser, *, plan: bool) -> None:
    """What a bureau's own table may need; each wins over what the file's title says."""
    if plan:
        parser.add_argument("--plan", help="plan id of a plan table (e.g. 14th-fyp)")
    parser.add_argument("--zone", help="zone (id or name, e.g. 济南高新区) of a bureau table")
    if not plan:
        parser.add_argument("--period", help="period of a bulletin sheet (2024-06, 1-6月, 上半年)")


def _status_list(text: str) -> list[str]:
    from parkpulse.schemas.records import STATUSES

    codes = [c.strip() for c in text.split(",") if c.strip()]
    unknown = [c for c in codes if c not in STATUSES]
    if unknown or not codes:
        raise argparse.ArgumentTypeError(
            f"unknown status {', '.join(unknown) or text!r}; one or more of {', '.join(STATUSES)}"
        )
    return codes


def _catalogue(settings: Settings) -> Any:
    from parkpulse.schemas.catalogue import load_catalogue

    return load_catalogue(settings.reference_dir)


def _envelope_size(text: str) -> int:
    size = int(text)
    if not 1 <= size <= ENVELOPE_MAX:
        raise argparse.ArgumentTypeError(f"must be 1..{ENVELOPE_MAX}")
    return size


def _seconds(text: str) -> float:
    seconds = float(text)
    if not 0 <= seconds <= 3600:
        raise argparse.ArgumentTypeError("must be 0..3600 seconds")
    return seconds


def _limit(text: str) -> int:
    limit = int(text)
    if not 1 <= limit <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be 1..{MAX_LIMIT}")
    return limit


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env().with_overrides(
        data_dir=getattr(args, "data_dir", None),
        broker=getattr(args, "broker", None),
        clickhouse_url=getattr(args, "clickhouse", None),
        broker_port=getattr(args, "broker_port", None),
        api_port=getattr(args, "api_port", None),
        metrics_port=getattr(args, "metrics_port", None),
        reference_dir=getattr(args, "reference_dir", None),
    )


def running_stack(settings: Settings) -> dict[str, Any] | None:
    """The run.json of a parkpulse that is up, or None."""
    try:
        info = orjson.loads(settings.run_file.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    try:
        with urllib.request.urlopen(f"{info['api']}/api/health", timeout=2) as resp:
            return info if resp.status == 200 else None
    except (urllib.error.URLError, OSError, KeyError):
        return None


def broker_settings(settings: Settings) -> Settings:
    """Settings pointing at the broker to publish to: explicit, or the running stack's."""
    if settings.broker is not None:
        return settings
    info = running_stack(settings)
    if info is None:
        raise NoStack(
            f"no running parkpulse found via {settings.run_file}; start `parkpulse run`"
            " or pass --broker kafka://host:port"
        )
    return settings.with_overrides(broker=info["broker"], broker_epoch=info.get("broker_epoch"))


def query(
    settings: Settings, path: str, params: dict[str, Any], method: str | Callable[..., Any]
) -> Any:
    """Ask the running stack's API, or a ClickHouse server, or the embedded store directly
    (``method``: a store method's name, or a function of the store and the params)."""
    info = None if settings.clickhouse_url else running_stack(settings)
    if info is not None:
        try:
            return api_get(info["api"], path, params)
        except urllib.error.HTTPError as exc:
            raise QueryRefused(_refusal(exc)) from None
    from parkpulse.sinks.clickhouse import ClickHouseStore

    if settings.clickhouse_url is None and not settings.clickhouse.embedded_path.exists():  # type: ignore[union-attr]
        raise NoStack(f"no data under {settings.data_dir}; run `parkpulse run` first")
    store = ClickHouseStore.open(settings.clickhouse)
    try:
        if isinstance(method, str):
            return store.run(getattr(store, method), *params.values())
        return store.run(method, store, *params.values())
    finally:
        store.close()


def _refusal(exc: urllib.error.HTTPError) -> str:
    """The error an HTTP answer carries (``{"error": …}``), or its status line."""
    try:
        return str(orjson.loads(exc.read())["error"])
    except (orjson.JSONDecodeError, KeyError, TypeError, OSError):
        return f"the stack answered HTTP {exc.code} {exc.reason}"


def api_get(api: str, path: str, params: dict[str, Any]) -> Any:
    """GET a worker API's ``path`` (None parameters left out)."""
    qs = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    with urllib.request.urlopen(f"{api.rstrip('/')}{path}?{qs}", timeout=30) as resp:
        return orjson.loads(resp.read())


def _print(console: Console, fmt: str, data: Any, table: Any) -> None:
    if fmt == "json":
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:  # bad PARKPULSE_* values: a line each, naming the variable
        for line in str(exc).splitlines():
            print(f"parkpulse: {line}", file=sys.stderr)
        return 1
    setup_logging(settings.log_level)
    # Piped output gets a wide table rather than rich's 80-column default.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    try:
        return _dispatch(args, settings, console)
    except NoStack as exc:
        print(f"parkpulse: {exc}", file=sys.stderr)
        return EXIT_NO_STACK
    except (QueryRefused, FilterError) as exc:
        print(f"parkpulse: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from parkpulse import scoreboard

    if args.verb in ("run", "worker"):
        from parkpulse.stack import serve

        demo = args.verb == "run" and not args.no_demo
        show = args.verb == "run" and not args.no_scoreboard
        return serve(settings, demo=demo, scoreboard=show, console=console)
    if args.verb in ("produce", "targets"):
        return _publish(args, settings)
    if args.verb == "simulate":
        return _simulate(args, settings, console)
    if args.verb == "bench":
        return _bench(args, console)
    if args.verb == "status":
        rows = _status(args, settings)
        rows = scoreboard.select_status(rows, args.status, args.binding, args.sort)
        table = scoreboard.status_table(rows, lang=settings.lang, catalogue=_catalogue(settings))
        _print(console, args.format, scoreboard.status_json(rows), table)
        return 0
    if args.verb == "explain":
        return _explain(args, settings, console)
    if args.verb == "report":
        return _report(args, settings)
    if args.verb == "scorecard":
        rows = query(settings, "/api/scorecard", {}, "scorecards")
        table = scoreboard.scorecard_table(rows, settings.lang, _catalogue(settings))
        _print(console, args.format, rows, table)
        return 0
    if args.verb == "deadletter":
        origin = args.origin
        if origin and Path(origin).is_file():  # a path to the file: its dead letters carry its name
            origin = Path(origin).name
        try:
            asked = DeadLetterQuery(args.limit, origin, args.reason)
        except ValueError as exc:
            print(f"parkpulse: {exc}", file=sys.stderr)
            return 1
        page = query(settings, "/api/deadletter", asked.params(), "deadletter_page")
        _print(console, args.format, page, scoreboard.deadletter_table(page["rows"], settings.lang))
        if args.format == "table":
            console.print(page_summary(page))
        return 0
    if args.verb == "suspect":
        rows = _filtered(settings, "/api/suspect", "suspect_figures", {"zone": args.zone})
        table = scoreboard.suspect_table(rows, settings.lang, _catalogue(settings))
        _print(console, args.format, rows, table)
        return 0
    raise AssertionError(args.verb)  # argparse only lets known verbs through


def _status(args: argparse.Namespace, settings: Settings) -> list[dict[str, Any]]:
    """The status rows the filters (ids or names) select; FilterError when one names nothing."""
    given = {"zone": args.zone, "indicator": args.indicator, "plan": args.plan}
    return _filtered(settings, "/api/status", "latest_status", given)


def _filtered(
    settings: Settings, path: str, method: str, given: dict[str, str | None]
) -> list[dict[str, Any]]:
    """The rows of ``path`` the filters (ids or names) select; FilterError when one names
    nothing."""
    from parkpulse.filters import answer_error, resolve_filters, unknown_plan, unmatched
    from parkpulse.schemas.catalogue import load_catalogue

    catalogue = load_catalogue(settings.reference_dir)
    params = resolve_filters(given, catalogue)
    try:
        rows: list[dict[str, Any]] = query(settings, path, params, method)
    except QueryRefused as exc:
        raise FilterError(answer_error(params, catalogue, str(exc))) from None
    problem = unmatched(params, catalogue) if not rows else None
    if problem is None and not rows and params.get("plan") is not None:
        stored = query(settings, "/api/status", {}, "latest_status")
        problem = unknown_plan(params["plan"], (r["plan"] for r in stored))
    if problem is not None:
        raise problem
    return rows


def _publish(args: argparse.Namespace, settings: Settings) -> int:
    """``produce`` / ``targets``: publish the files, wait for the worker's verdict, say per file
    what came of it."""
    from parkpulse.producers.publish import publish
    from parkpulse.producers.read_options import ReadOptions
    from parkpulse.schemas.catalogue import load_catalogue

    files = _files_to_publish(args, settings)
    if files is None:
        return 1
    target = broker_settings(settings)
    judge = _judge(target, args.wait, args.api)
    judge.before(path for path, _ in files)
    results = asyncio.run(
        publish(
            target,
            files,
            load_catalogue(settings.reference_dir),
            progress=not args.no_progress and sys.stderr.isatty(),
            keep=True,  # a replayed kept copy stays where it is; its ledger entry is renewed
            envelope=getattr(args, "envelope", ENVELOPE_MAX),
            options=ReadOptions(
                plan=getattr(args, "plan", None),
                zone=args.zone,
                period=getattr(args, "period", None),
            ),
        )
    )
    return _tell_published(results, judge.verdict(results, args.wait))


def _files_to_publish(
    args: argparse.Namespace, settings: Settings
) -> list[tuple[Path, str]] | None:
    """The (file, kind) pairs to publish; None once it has said why there is nothing to send
    (no file, a missing one, or only files that are no feed and leave no dead letter)."""
    from parkpulse.producers.kept import archived
    from parkpulse.producers.publish import refusal
    from parkpulse.producers.read_options import ReadOptions, option_problem

    kind = "targets" if args.verb == "targets" else "observations"
    if getattr(args, "registrations", False):
        kind = "registrations"
    files = [(path, kind) for path in args.files]
    if getattr(args, "replay", False):
        files = archived(settings) + files
    if not files:
        print("parkpulse: nothing to publish (give FILE… or --replay)", file=sys.stderr)
        return None
    for path, _ in files:
        if not path.exists():
            print(f"parkpulse: no such file: {path}", file=sys.stderr)
            return None
    options = ReadOptions(zone=args.zone, period=getattr(args, "period", None))
    if (problem := option_problem(options, _catalogue(settings))) is not None:
        print(f"parkpulse: {problem}; nothing published", file=sys.stderr)
        return None
    refused = [r for r in (refusal(path, kind) for path, kind in files) if r is not None]
    if len(refused) == len(files) and all(r.dead_letter is None for r in refused):
        for item in refused:  # nothing to send: no broker needed to say so
            print(f"parkpulse: {item.path} {item.what}; nothing published", file=sys.stderr)
        return None
    return files


def _tell_published(results: Sequence[Published], verdict: Verdict) -> int:
    """A line per file on stdout (its rejects explained on stderr); the exit code they make:
    1 when a file was refused, EXIT_REJECTED when a row was rejected, else 0."""
    from parkpulse.producers.feed import format_summary
    from parkpulse.producers.kept import origin_of
    from parkpulse.producers.verdict import merge_rejects

    rejected = refused_files = 0
    for item in results:
        if item.refused is not None:
            kept = "one dead letter for the file" if item.refused.dead_letter else "nothing sent"
            print(f"parkpulse: {item.path} {item.refused.what}; {kept}", file=sys.stderr)
            refused_files += 1
            continue
        s = item.summary
        by_worker = merge_rejects(item, verdict.rejects.pop(origin_of(item.path), []))
        worker = f" ({by_worker} by the worker)" if by_worker else ""
        revised = f", {s.revised} revised" if s.revised else ""
        revised += f", {s.duplicates} duplicates" if s.duplicates else ""
        print(
            f"{origin_of(item.path)}: {s.accepted} published, {s.rejected} rejected{worker}"
            f"{revised}"
        )
        if s.rejected:
            print(format_summary(s, item.path), file=sys.stderr)
        rejected += s.rejected
    if verdict.missing:
        names = sorted({origin_of(item.path) for item in results if item.refused is None})
        print(
            f"parkpulse: {verdict.missing}; rejects may still come"
            f" (parkpulse deadletter --origin {names[0] if len(names) == 1 else 'FILE'})",
            file=sys.stderr,
        )
    return 1 if refused_files else EXIT_REJECTED if rejected else 0


def _judge(target: Settings, wait: float, api: str | None) -> Judge:
    """Who gives the worker's verdict (producers/verdict.py): the worker API given, the running
    stack's, or ClickHouse when one is configured; ``wait`` 0 asks no one."""
    from parkpulse.producers.verdict import Judge

    if wait <= 0:
        return Judge(target, None)
    info = running_stack(target)
    ours = info is not None and info.get("broker") == target.broker
    if api is None and target.clickhouse_url is None and not ours:
        return Judge(target, None, "no verdict: no worker API (--api URL) nor ClickHouse to ask")

    def fetch(origin: str) -> Any:
        asked = DeadLetterQuery(MAX_LIMIT, origin).params()
        if api is not None:
            return api_get(api, "/api/deadletter", asked)
        return query(target, "/api/deadletter", asked, "deadletter_page")

    return Judge(target, fetch)


def _explain(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from functools import partial

    from parkpulse.explain import ExplainError, check_request, explanation_doc, run_explain
    from parkpulse.schemas.names import plan_id

    catalogue = _catalogue(settings)
    plan = args.plan and plan_id(args.plan.strip())

    def fetch() -> Any:
        zone, indicator = check_request(catalogue, args.zone, args.indicator, args.period)
        params = {"zone": zone, "indicator": indicator, "plan": plan, "period": args.period}
        try:
            return query(settings, "/api/explain", params, partial(explanation_doc, catalogue))
        except urllib.error.HTTPError as exc:  # the API says why in its JSON body
            return orjson.loads(exc.read() or b"{}") or None

    try:
        code, error = run_explain(fetch, args.format, settings.lang, catalogue, console)
    except ExplainError as exc:
        code, error = 1, str(exc)
    if error:
        print(f"parkpulse explain: {error}", file=sys.stderr)
    return code


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from parkpulse.brief import BriefError
    from parkpulse.brief_page import default_out, make_brief
    from parkpulse.chromium import ChromiumFailed, ChromiumMissing
    from parkpulse.filters import answer_error, resolve_filters, unmatched

    catalogue = _catalogue(settings)
    zone = resolve_filters({"zone": args.zone}, catalogue)["zone"]

    def fetch(zone: str | None) -> list[dict[str, Any]]:
        try:
            rows = query(settings, "/api/status/history", {"zone": zone}, "status_rows")
        except QueryRefused as exc:  # a name the API refuses as an id: say what it names
            raise FilterError(answer_error({"zone": zone}, catalogue, str(exc))) from None
        problem = unmatched({"zone": zone}, catalogue) if not rows else None
        if problem is not None:
            raise problem
        return rows

    out = args.out or default_out(settings.data_dir, args.month, zone, args.format)
    try:
        path = make_brief(fetch, args.month, zone, args.format, out, catalogue, settings.lang)
    except (BriefError, ChromiumMissing, ChromiumFailed) as exc:
        print(f"parkpulse report: {exc}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _simulate(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    from parkpulse.producers.simulate import run_simulate

    return run_simulate(
        out=args.out or settings.data_dir / "simulate",
        zones=args.zones,
        first_year=args.first_year,
        years=args.years,
        seed=args.seed,
        registrations=args.registrations,
        batch_size=args.batch_size,
        feeds=not args.no_feeds,
        publish_to=broker_settings(settings) if args.publish else None,
        rate=args.rate,
        progress=not args.no_progress and sys.stderr.isatty(),
        console=console,
    )


def _bench(args: argparse.Namespace, console: Console) -> int:
    from parkpulse.bench import BenchError, BenchOptions, results_table, run_bench

    options = BenchOptions(
        work_dir=args.work_dir,
        results=args.out,
        registrations=args.registrations,
        batch_size=args.batch_size,
        live_rate=args.live_rate,
        live_seconds=args.live_seconds,
        live_flush=args.live_flush,
        zones=args.zones,
        years=args.years,
        partitions=args.partitions,
        backfill=not args.no_backfill,
        registrations_phase=not args.no_registrations,
        clickhouse_url=args.clickhouse_url,
    )
    err = Console(stderr=True)
    try:
        results = run_bench(options, err)
    except BenchError as exc:
        print(f"parkpulse bench: {exc}", file=sys.stderr)
        return 1
    console.print(results_table(results))
    console.print(f"written to {args.out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
