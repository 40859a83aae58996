"""UI under load: N browser sessions editing at once, through Gradio's Python client.

Starts ``explorer ui`` on a free 127.0.0.1 port (or uses ``--url``) and drives it with N
``gradio_client.Client`` objects, each its own browser session starting from AttendNeXt. A
session makes one-click mutations (the Design tab's mutation buttons: ``/on_mutate_<name>``,
cycling wider, deeper, kernel up, narrower, shallower, kernel down; each session at its own
block and offset in the cycle), one every ``interval`` seconds (0: the next as soon as the last
one is done), and waits for each before the next, as a person does. Each edit is timed twice:

- edit -> numbers: from the request to the reply of the edit's first phase (validate, count,
  the numbers bar and status: what the page shows first);
- edit + redraw: to the end of the chained second phase (``/flush_*``: charts, table, form),
  which the browser requests as soon as the first phase answers.

Scenarios: 1 session hammering, N sessions every 2 s (the goal of issue 10: p95 of edit ->
numbers <= 500 ms at 20 sessions), N sessions hammering; then the sustainable rate: the most
edits per second (N sessions, evenly spaced) whose edit -> numbers p95 stays <= 500 ms, found
by bisection between 0 and the hammering throughput. The load average before and after each
scenario is printed and written beside the table: other processes on the machine slow the
server, so numbers from a busy machine are pessimistic.

Writes the ``ui_load`` section of ``benchmarks/RESULTS.md`` (not with ``--url``, ``--no-write``).

    python benchmarks/ui_load.py [--sessions 20] [--duration 30] [--search-duration 20] [--search-steps 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import machine, markdown_table, write_section

#: one-click edits, cycling; each changes the selected block or its stage and the cycle roughly undoes itself
EDIT_CYCLE = ("wider", "deeper", "kernel_up", "narrower", "shallower", "kernel_down")
#: the blocks the sessions select (stage blocks of AttendNeXt; session i takes the i-th, cycling)
BLOCKS = ("1:1", "2:2", "3:2", "4:2", "5:2", "2:3", "3:3", "4:3", "5:3", "1:2", "3:4", "4:4")
#: the goal of issue 10, in ms of edit -> numbers at p95
P95_GOAL_MS = 500.0


@dataclass
class Run:
    """One scenario's samples: ms per edit (first phase, and with the redraw), failures, duration."""

    label: str
    sessions: int
    interval_s: float
    fast_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    refused: int = 0  # an edit the app answered with its error box (e.g. kernel up at the largest kernel)
    errors: list[str] = field(default_factory=list)  # a request that failed (timeout, server error)
    seconds: float = 0.0
    load: tuple[float, float] = (0.0, 0.0)
    server_cpu_s: float = float("nan")  # CPU seconds the server (and its workers) used during the run
    client_cpu_s: float = float("nan")  # CPU seconds this process (the gradio_client sessions) used

    @property
    def cpu_ms_per_edit(self) -> float:
        return self.server_cpu_s / len(self.fast_ms) * 1e3 if self.fast_ms else float("nan")

    @property
    def client_ms_per_edit(self) -> float:
        return self.client_cpu_s / len(self.fast_ms) * 1e3 if self.fast_ms else float("nan")

    @property
    def rate(self) -> float:
        """Edits done per second: those started in the window, over the time until the last one is done."""
        return len(self.fast_ms) / self.seconds if self.seconds else 0.0

    def p(self, q: float, which: str = "fast") -> float:
        values = self.fast_ms if which == "fast" else self.total_ms
        if not values:
            return float("nan")
        if len(values) == 1:
            return values[0]
        return float(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1])


def cpu_seconds(pid: int | None) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its living children (the analysis workers)."""
    if pid is None:
        return float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _endpoints(client: Any) -> dict[str, tuple[str, str]]:
    """Mutation name -> (its endpoint, the ``/flush_*`` endpoint chained after it: the next one in the API listing).

    The endpoint is ``/on_mutate_<name>`` (``/mutate_<name>`` in versions before the UI split, so that
    an older checkout served with ``--url`` can be measured the same way).
    """
    names = list(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    chained = {}
    for i, name in enumerate(names[:-1]):
        for mutation in EDIT_CYCLE:
            if name in (f"/on_mutate_{mutation}", f"/mutate_{mutation}") and names[i + 1].startswith("/flush"):
                chained[mutation] = (name, names[i + 1])
    missing = [n for n in (*EDIT_CYCLE, "kernel_down") if n not in chained]
    if missing:
        raise SystemExit(f"the app has no mutation endpoints for {missing}; is this the explorer's UI?")
    return chained


def _refused(reply: Any) -> bool:
    """The first phase's reply shows the red cross of a refused edit in its status line."""
    values = reply if isinstance(reply, (list, tuple)) else [reply]
    return any(isinstance(v, str) and "✗" in v for v in values)


def _session(client: Any, chained: dict[str, tuple[str, str]], index: int, n: int, interval: float, start: float,
             stop: float, run: Run, lock: threading.Lock) -> None:
    block = BLOCKS[index % len(BLOCKS)]
    k = index
    next_at = start + (interval * index / n if interval else 0.0)  # sessions evenly spread over an interval
    while True:
        if next_at >= stop:  # the next edit would start after the window: this session is done
            return
        now = time.monotonic()
        if next_at > now:
            time.sleep(next_at - now)
        api, flush = chained[EDIT_CYCLE[k % len(EDIT_CYCLE)]]
        k += 1
        t0 = time.perf_counter()
        try:
            reply = client.predict(block, api_name=api)
            t1 = time.perf_counter()
            client.predict(api_name=flush)
            t2 = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - a failed request is counted and reported, never hidden
            with lock:
                run.errors.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")
            next_at = max(next_at + interval, time.monotonic()) if interval else time.monotonic()
            continue
        with lock:
            run.fast_ms.append((t1 - t0) * 1e3)
            run.total_ms.append((t2 - t0) * 1e3)
            run.refused += _refused(reply)
        next_at = next_at + interval if interval else time.monotonic()


def run_scenario(url: str, label: str, sessions: int, interval: float, duration: float,
                 server_pid: int | None = None) -> Run:
    """``sessions`` fresh sessions, each editing every ``interval`` s (0: back to back) for ``duration`` s."""
    from gradio_client import Client

    # plain http: no certificate to check, so no CA bundle to load (gradio_client builds an SSL context
    # for every request; loading $SSL_CERT_FILE each time cost ~100 ms of CPU per edit on the clients' side)
    plain = url.startswith("http://")
    clients = [Client(url, verbose=False, download_files=False, ssl_verify=not plain) for _ in range(sessions)]
    chained = _endpoints(clients[0])
    for i, c in enumerate(clients):  # a first edit per session, not counted: its state and API info exist
        c.predict(BLOCKS[i % len(BLOCKS)], api_name=chained["kernel_down"][0])
    run = Run(label, sessions, interval)
    lock = threading.Lock()
    load0 = os.getloadavg()[0]
    cpu0, client0 = cpu_seconds(server_pid), time.process_time()
    start = time.monotonic()
    stop = start + duration
    threads = [threading.Thread(target=_session, args=(c, chained, i, sessions, interval, start, stop, run, lock),
                                daemon=True) for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.seconds = time.monotonic() - start  # until the last edit started in the window is done
    run.load = (load0, os.getloadavg()[0])
    run.server_cpu_s = cpu_seconds(server_pid) - cpu0
    run.client_cpu_s = time.process_time() - client0
    for c in clients:
        with contextlib.suppress(Exception):  # an already closed client
            c.close()
    print(f"  {label:42s} {len(run.fast_ms):5d} edits {run.rate:6.2f}/s  edit->numbers p50 {run.p(50):7.0f} "
          f"p95 {run.p(95):7.0f}  +redraw p95 {run.p(95, 'total'):7.0f} ms  refused {run.refused} "
          f"errors {len(run.errors)}  CPU/edit server {run.cpu_ms_per_edit:.0f} "
          f"client {run.client_ms_per_edit:.0f} ms  load {run.load[0]:.2f}->{run.load[1]:.2f}", flush=True)
    return run


def sustainable(url: str, sessions: int, ceiling: float, duration: float, steps: int,
                known: list[Run], server_pid: int | None = None) -> tuple[Run | None, list[Run]]:
    """The highest offered rate (edits/s over ``sessions``) whose edit -> numbers p95 <= the goal; by bisection."""
    passing = [r for r in known if r.sessions == sessions and r.p(95) <= P95_GOAL_MS and r.interval_s]
    lo = max((r.rate for r in passing), default=0.0)
    best = max(passing, key=lambda r: r.rate, default=None)
    hi = ceiling
    tried = []
    for _ in range(steps):
        if hi - lo < 0.25:
            break
        rate = (lo + hi) / 2
        run = run_scenario(url, f"{sessions} sessions, offered {rate:.1f} edits/s", sessions, sessions / rate,
                           duration, server_pid)
        tried.append(run)
        if run.p(95) <= P95_GOAL_MS and not run.errors:
            lo = rate
            best = run if best is None or run.rate > best.rate else best
        else:
            hi = rate
    return best, tried


def _row(run: Run) -> list[object]:
    interval = "back to back" if not run.interval_s else f"every {run.interval_s:.2f} s"
    return [run.label, run.sessions, interval, len(run.fast_ms), f"{run.rate:.2f}", f"{run.p(50):.0f}",
            f"{run.p(95):.0f}", f"{run.p(50, 'total'):.0f}", f"{run.p(95, 'total'):.0f}", run.refused,
            len(run.errors), f"{run.cpu_ms_per_edit:.0f}", f"{run.client_ms_per_edit:.0f}",
            f"{run.load[0]:.2f} → {run.load[1]:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent sessions (default 20)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per scenario (default 30)")
    parser.add_argument("--search-duration", type=float, default=20.0,
                        help="seconds per step of the sustainable-rate search (default 20)")
    parser.add_argument("--search-steps", type=int, default=3, help="bisection steps (default 3; 0 skips)")
    parser.add_argument("--url", help="an explorer UI already running (default: start one on a free port)")
    parser.add_argument("--server-pid", type=int, help="with --url: the server's process id, for its CPU time")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    parser.add_argument("--goal-only", action="store_true",
                        help="only the goal's scenario (N sessions every 2 s), printed, not written: a quick check")
    args = parser.parse_args()
    if args.sessions < 1 or args.duration <= 0:
        raise SystemExit("--sessions must be at least 1 and --duration positive")

    from explorer.ui.browser_tools import free_port, serve_subprocess

    proc = None
    url = args.url
    if url is None:
        port = free_port()
        log = Path(tempfile.mkdtemp()) / "ui.log"
        print(f"starting explorer ui on 127.0.0.1:{port} (log {log})", flush=True)
        proc = serve_subprocess(port, log=log)
        url = f"http://127.0.0.1:{port}/"
    load_start = os.getloadavg()
    try:
        pid = proc.pid if proc is not None else args.server_pid
        if args.goal_only:
            goal = run_scenario(url, f"{args.sessions} sessions every 2 s", args.sessions, 2.0, args.duration, pid)
            verdict = "meets" if goal.p(95) <= P95_GOAL_MS and not goal.errors else "MISSES"
            print(f"goal: {verdict} (p95 {goal.p(95):.0f} ms; not written to RESULTS.md with --goal-only)")
            return
        runs = [
            run_scenario(url, "1 session hammering", 1, 0.0, args.duration, pid),
            run_scenario(url, f"{args.sessions} sessions every 2 s", args.sessions, 2.0, args.duration, pid),
            run_scenario(url, f"{args.sessions} sessions hammering", args.sessions, 0.0, args.duration, pid),
        ]
        best, tried = (None, []) if args.search_steps <= 0 else sustainable(
            url, args.sessions, max(runs[2].rate, 0.5), args.search_duration, args.search_steps, runs, pid)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    load_end = os.getloadavg()

    headers = ["scenario", "sessions", "each edits", "edits", "edits/s", "edit → numbers p50 ms", "p95 ms",
               "edit + redraw p50 ms", "p95 ms", "refused", "errors", "server CPU ms/edit", "client CPU ms/edit",
               "load (1 min) before → after"]
    table = markdown_table(headers, [_row(r) for r in [*runs, *tried]])
    goal = runs[1]
    verdict = "meets" if goal.p(95) <= P95_GOAL_MS and not goal.errors else "MISSES"
    sustained = (f"**{best.rate:.1f} edits/s** ({best.label}: p95 {best.p(95):.0f} ms)" if best is not None
                 else f"none of the rates tried kept p95 ≤ {P95_GOAL_MS:.0f} ms")
    before = load_start[0]
    peak = max(load_end[0], *(r.load[1] for r in [*runs, *tried]))
    cores = os.cpu_count() or 1
    note = (f"1-minute load average before the run {before:.2f} (other processes), up to {peak:.2f} during it (this "
            f"benchmark's server and clients included) on {cores} cores"
            + (": the machine was busy, so these numbers are pessimistic." if before > 0.5 * cores else "."))
    hammer = runs[2]
    capacity = (f" At {hammer.cpu_ms_per_edit:.0f} ms of server CPU per edit (20 sessions hammering), one core "
                f"serves about {1000 / hammer.cpu_ms_per_edit:.1f} edits/s: the server's Python process (one GIL; "
                "the counts run in its worker processes) is the bound." if hammer.cpu_ms_per_edit > 0 else "")
    errors = sorted({e for r in [*runs, *tried] for e in r.errors})
    body = (
        f"{args.sessions} sessions of `gradio_client` against `explorer ui` on 127.0.0.1 (server and clients on "
        f"the same machine: {machine()}); {args.duration:.0f} s per scenario, {args.search_duration:.0f} s per "
        f"search step. A session applies one-click mutations ({', '.join(EDIT_CYCLE)}, cycling) to its own "
        "block of AttendNeXt and waits for each edit (numbers, then the chained redraw) before the next. "
        "The cycle comes back to earlier designs, so after a session's first round most edits are answered from "
        "the app's caches (whole analyses by design, unit counts and size probes by unit); an edit that makes a "
        "unit the server has never seen also pays its size probe on the server and its count in a worker. "
        "CPU per edit (both phases): user + system time of the server process and its analysis workers, and "
        "of the benchmark's own process (the clients, on the same cores).\n\n"
        f"{table}\n\n"
        f"Goal (issue 10): {goal.label}, p95 of edit → numbers ≤ {P95_GOAL_MS:.0f} ms: {verdict} "
        f"({goal.p(95):.0f} ms). Sustained with p95 ≤ {P95_GOAL_MS:.0f} ms: {sustained}.{capacity}\n\n{note}\n"
        "Refused edits (the app's own error box, such as kernel up at the largest kernel) are timed like the "
        "others; errors are failed requests"
        + (f": {'; '.join(errors[:5])}.\n" if errors else " (none).\n")
    )
    print(table)
    print(f"goal: {verdict}; sustained: {sustained};{capacity} {note}")
    if args.url is None and not args.no_write:
        write_section("ui_load", "UI under load: concurrent sessions (`python benchmarks/ui_load.py`)", body)


if __name__ == "__main__":
    main()
