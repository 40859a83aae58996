"""Callbacks of the search tab (and of the searches in the History tab): plain functions, no browser.

A search runs in the background (``explorer.ui.search_runner``): ``on_start_search`` checks the form,
starts it and returns at once with the charts cleared; the page then polls ``on_poll_search`` (a
``gr.Timer``), which returns the progress line (with an ETA) and, when new evaluations arrived, the
live front, the hypervolume curve and the front's table, all rebuilt from the store
(``explorer.search.view.stored_view``); it turns the timer off once the search has ended.
``on_stop_search`` stops after the evaluation under way; ``on_resume_search`` continues a stored
search (``explorer search --resume ID``: nothing stored is evaluated again). ``on_load_candidate``
puts a candidate's YAML into the Design tab's editor, whose change event validates and applies it
(the one way another tab sets the design, as "Load into editor" in History does).

Every callback returns ``{output name: value}``; names left out are left as they are. Bad input gives
one line in the progress/status box, never a traceback.
"""

from __future__ import annotations

import html
import math
from datetime import datetime
from typing import Any

from ..charts import front_axes, hypervolume_figure, objective_value, search_front_figure
from ..search import OBJECTIVES, Constraints, LatencySettings, ProxyTask, search_config
from ..search.view import SearchView, stored_view
from ..spec import SpecError
from ..store import Store
from . import search_runner as runner
from .state import load_state
from .training_callbacks import DATASETS, ui_store

__all__ = [
    "BOARD_PORT", "BUDGET_KINDS", "CANDIDATE_HEADERS", "FRONT_HEADERS", "LATENCY_SOURCES", "OBJECTIVE_CHOICES",
    "SEARCH_HEADERS", "candidate_choices", "check_board", "front_rows", "on_load_candidate", "on_pick_search",
    "on_pin_candidate", "on_poll_search", "on_refresh_searches", "on_resume_search", "on_start_search",
    "on_stop_search", "parse_settings", "progress_html",
]

OBJECTIVE_CHOICES = [("proxy accuracy (max)", "accuracy"), ("latency (min)", "latency"), ("MACs (min)", "macs"),
                     ("params (min)", "params"), ("peak activations (min)", "peak")]
LATENCY_SOURCES = [("predicted on a device profile", "predict"), ("measured here (ONNX Runtime, 1 thread)", "local"),
                   ("measured on the board (its agent)", "remote")]
BOARD_PORT = 8765  # the agent's default port
BUDGET_KINDS = [("candidates", "candidates"), ("minutes", "minutes")]
FRONT_HEADERS = ["#", "mutation", "accuracy (%)", "latency (ms)", "GMACs", "params (M)", "peak (MiB)",
                 "trained steps"]
SEARCH_HEADERS = ["search", "started", "status", "objectives", "candidates", "kept", "rejected", "evaluations",
                  "front", "hypervolume", "minutes"]
TASK = ProxyTask()  # the defaults the form shows
MAX_UI_CANDIDATES = 5000
MAX_UI_MINUTES = 24 * 60.0


# ----------------------------------------------------------------------------- the form


def _number(value: Any, label: str, lo: float, hi: float, *, whole: bool = False, optional: bool = False,
            above: bool = False) -> float | None:
    """A form number checked against its range; ``None`` for an empty optional one; one-line ``ValueError``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise ValueError(f"{label} is empty; give a number from {lo:g} to {hi:g}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label} {value!r} is not a number; give one from {lo:g} to {hi:g}") from None
    empty_hint = "; leave it empty for no limit" if optional else ""
    if not math.isfinite(x) or (x <= lo if above else x < lo) or x > hi:
        low = f"above {lo:g}" if above else f"from {lo:g}"
        raise ValueError(f"{label} {x:g} is out of range; use a number {low} to {hi:g}{empty_hint}")
    if whole and x != int(x):
        raise ValueError(f"{label} {x:g} must be a whole number")
    return x


def parse_settings(
    objectives: Any, max_params_m: Any = None, max_gmacs: Any = None, max_peak_mib: Any = None,
    max_latency_ms: Any = None, latency_source: str = "predict", device: str = "host", antialias: bool = False,
    condensers_early: bool = False, dataset: str = TASK.dataset, input_size: Any = TASK.input_size,
    train_steps: Any = TASK.steps, rungs: Any = TASK.rungs, eta: Any = TASK.eta, budget_kind: str = "candidates",
    budget: Any = 30, seed: Any = 0, presets: bool = True, board_host: str = "", board_port: Any = BOARD_PORT,
    board_token: str = "",
) -> runner.SearchSettings:
    """The form's values -> ``SearchSettings``; ``ValueError`` with one line naming the field and the fix.

    An empty budget (params, MACs, peak, latency) means no limit; 0 or a negative one is refused. Latency
    measured on the board (``remote``) goes only to a board the person running the server allows (the
    Latency tab's "Measure on board" rule, ``latency.client.allowed_board_url``), decided from the address
    alone before any connection; ``check_board`` then asks it for ``/health``.
    """
    names = [str(n) for n in (objectives or [])]
    if not 2 <= len(names) <= 3:
        raise ValueError(f"{len(names)} objective(s) ticked; tick two or three (e.g. proxy accuracy and latency)")
    unknown = [n for n in names if n not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective {unknown[0]!r}; use two or three of {', '.join(OBJECTIVES)}")
    params = _number(max_params_m, "max params (M)", 0, 10_000, optional=True, above=True)
    gmacs = _number(max_gmacs, "max GMACs", 0, 10_000, optional=True, above=True)
    peak = _number(max_peak_mib, "max peak activations (MiB)", 0, 1_000_000, optional=True, above=True)
    lat = _number(max_latency_ms, "max latency (ms)", 0, 1_000_000, optional=True, above=True)
    if latency_source not in ("predict", "local", "remote"):
        raise ValueError(f"latency source {latency_source!r}: pick predicted, measured here or measured on the board")
    url, token = None, ""
    if latency_source == "remote":
        from ..latency.client import allowed_board_url

        if not str(board_host or "").strip():
            raise ValueError("latency on the board: no board configured; give the board's address (its agent's "
                             "host) and token, or pick predicted or measured here")
        port = int(_number(board_port, "board port", 1, 65535, whole=True) or BOARD_PORT)
        url = allowed_board_url(str(board_host).strip(), port)  # RemoteError (a ValueError): not allowed here
        token = str(board_token or "").strip()
        if not token:
            raise ValueError("latency on the board: enter the agent's token (the --token it was started with)")
    if dataset not in DATASETS:
        raise ValueError(f"proxy dataset {dataset!r}: pick one of {', '.join(DATASETS)}")
    size = int(_number(input_size, "proxy input size", 8, 512, whole=True) or 0)
    steps = int(_number(train_steps, "training steps (cheapest rung)", 1, 100_000, whole=True) or 0)
    n_rungs = int(_number(rungs, "rungs", 1, 6, whole=True) or 0)
    eta_ = int(_number(eta, "eta", 2, 10, whole=True) or 0)
    seed_ = int(_number(seed, "seed", 0, 2**31 - 1, whole=True) or 0)
    if budget_kind == "minutes":
        n, minutes = None, _number(budget, "budget (minutes)", 0, MAX_UI_MINUTES, above=True)
    elif budget_kind == "candidates":
        n, minutes = int(_number(budget, "budget (candidates)", 1, MAX_UI_CANDIDATES, whole=True) or 0), None
    else:
        raise ValueError(f"budget kind {budget_kind!r}: pick candidates or minutes")
    device = device or "host"
    try:
        task = ProxyTask(dataset=dataset, input_size=size, steps=steps, rungs=n_rungs, eta=eta_)
        latency = LatencySettings(mode=latency_source, device=device, url=url, token=token)
        constraints = Constraints(
            max_params=round(params * 1e6) if params else None, max_macs=round(gmacs * 1e9) if gmacs else None,
            max_peak_activation_bytes=round(peak * 2**20) if peak else None, max_latency_ms=lat, device=device,
            antialias_downsampling=bool(antialias), condensers_early=bool(condensers_early))
    except ValueError as exc:  # pydantic's report -> its first message
        errors = getattr(exc, "errors", None)
        raise ValueError(str(errors()[0]["msg"]).removeprefix("Value error, ") if errors else str(exc)) from None
    return runner.SearchSettings(objectives=tuple(names), constraints=constraints, task=task, latency=latency,
                                 steps=n, budget_minutes=minutes, seed=seed_, presets=bool(presets))


# ----------------------------------------------------------------------------- what the page shows


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def progress_html(job: runner.SearchJob | None, view: SearchView | None = None) -> str:
    """The progress line: a bar, candidates (or minutes) done of the budget, elapsed, ETA, what happens."""
    if job is None:
        return ("<div class='search-progress idle'>No search yet: set the objectives and budgets, then "
                "<b>Search</b>.</div>")
    ident = f"search #{job.search_id}" if job.search_id is not None else "search"
    if job.phase == "failed":
        return _failed(f"{ident} failed" if job.search_id is not None else "Search not run", job.error or "")
    frac = min(1.0, job.done / job.total) if job.total else 0.0
    if job.running:
        unit = "s of the budget" if job.minutes else "candidates"
        if job.phase == "presets":
            state, bits = "computing the presets' reference points", []
        else:
            state = "stopping…" if job.cancel.is_set() else "running"
            bits = [f"{job.done} / {job.total} {unit}"]
        bits += [f"elapsed {_clock(job.elapsed_s())}", f"ETA {_clock(job.eta_s())}"]
        detail = _esc(job.message)
    else:
        r = job.result
        state = job.phase
        bits = [f"{len(r.history)} candidates ({r.rejected} rejected)",
                f"{r.evaluations} evaluations" + (f" ({r.replayed} from the store)" if r.replayed else ""),
                f"front of {len(r.pareto)}, hypervolume {r.hypervolume:.3f}"] if r is not None else []
        bits.append(f"took {_clock(job.elapsed_s())}")
        detail = ("Stopped: <b>Resume</b> continues it and evaluates nothing twice." if job.phase == "stopped"
                  else "Click a point or a row of the front (or pick a candidate) to load it into the editor.")
        frac = 1.0 if job.phase == "finished" else frac
    colour = {"finished": "#059669", "stopped": "#b45309"}.get(job.phase, "#2563eb")
    return (f"<div class='search-progress {job.phase}' style='font-size:13px'><div class='bar' style='height:8px;"
            f"background:#e5e7eb;border-radius:4px;overflow:hidden;margin:2px 0 6px'><div style='width:"
            f"{100 * frac:.1f}%;height:100%;background:{colour}'></div></div><b>{ident}</b> {state} · "
            f"{' · '.join(bits)}<div class='detail' style='color:#6b7280'>{detail}</div></div>")


def _esc(text: str) -> str:
    return html.escape(text)


def _failed(head: str, message: str) -> str:
    """One line in red: what did not happen, and why (the message names the field and the fix)."""
    return f"<div class='search-progress failed' style='color:#991b1b'><b>{_esc(head)}:</b> {_esc(message)}</div>"


def _fmt(value: float | None, digits: int) -> Any:
    return round(value, digits) if value is not None else ""


def _sig(value: float | None, digits: int = 4) -> Any:
    """``digits`` significant digits (a tiny design's 0.000123 GMACs is not 0), or "" for none."""
    return float(f"{value:.{digits}g}") if value is not None else ""


def front_rows(view: SearchView) -> list[list[Any]]:
    """The front's table, best in the first objective first."""
    rows = []
    for i in view.front:
        c = view.candidate(i)
        if c is None:
            continue
        rows.append([c.index, c.mutation, _fmt(objective_value("accuracy", c), 2), _sig(c.latency_ms),
                     _sig(c.macs / 1e9), _sig(c.params / 1e6), _sig(c.peak_activation_bytes / 2**20),
                     c.fidelity_steps or ""])
    return rows


def candidate_choices(view: SearchView) -> list[tuple[str, int]]:
    """(label, candidate index) for the candidate picker: the front first (best first), then the other kept ones."""
    x_name, y_name = front_axes(view.objectives)

    def label(i: int, on_front: bool) -> str:
        c = view.candidate(i)
        assert c is not None
        vals = []
        for n in (y_name, x_name):
            v = objective_value(n, c)
            if v is not None:
                vals.append(f"{v:.2f} %" if n == "accuracy" else f"{v:.3g} {OBJECTIVES[n].unit}")
        return f"#{i} " + " · ".join(vals) + (" (front)" if on_front else "") + f" — {c.mutation[:48]}"

    others = [c.index for c in view.candidates if c.feasible and c.index not in set(view.front)]
    return [(label(i, True), i) for i in view.front] + [(label(i, False), i) for i in others]


def _figures(view: SearchView, references: list[runner.PresetReference]) -> dict[str, Any]:
    refs = [(r.name, r.record) for r in references]
    return {"front_chart": search_front_figure(view.candidates, view.front, view.objectives, refs),
            "hv_chart": hypervolume_figure(view.hypervolume), "front_table": front_rows(view),
            "pick": {"choices": candidate_choices(view), "value": view.front[0] if view.front else None}}


def _cleared(objectives: list[str] | tuple[str, ...] = ("accuracy", "latency")) -> dict[str, Any]:
    """Empty charts and table (a new search never shows the last one's front)."""
    return {"front_chart": search_front_figure([], [], list(objectives)), "hv_chart": hypervolume_figure([]),
            "front_table": [], "pick": {"choices": [], "value": None}}


# ----------------------------------------------------------------------------- start, poll, stop, resume


def check_board(settings: runner.SearchSettings, timeout: float = 5.0) -> None:
    """For latency measured on the board: the agent answers ``/health`` with the token, else one-line ``ValueError``.

    Nothing is asked when the search needs no latency (neither an objective nor a budget).
    """
    latency = settings.latency
    if latency.mode != "remote" or not ("latency" in settings.objectives
                                        or settings.constraints.max_latency_ms is not None):
        return
    from ..latency.client import RemoteError, health

    try:
        health(str(latency.url), latency.token, timeout=timeout)
    except RemoteError as exc:
        raise ValueError(f"latency on the board: {exc}") from None


def on_start_search(spec_yaml: str, *form: Any, session: str = "local", store: Store | None = None) -> dict[str, Any]:
    """Check the form (``parse_settings``' arguments, in order) and start the search in the background.

    ``{progress, front_chart, hv_chart, front_table, pick, search_id, polling}``: the charts are cleared (a
    new search never shows the last one's front); ``polling`` turns the page's timer on.
    """
    try:
        spec = load_state(spec_yaml)
        settings = parse_settings(*form)
        check_board(settings)
        search_config(spec, settings.objectives, constraints=settings.constraints, task=settings.task,
                      latency=settings.latency, steps=settings.steps, budget_minutes=settings.budget_minutes,
                      seed=settings.seed)  # every setting checked before the thread starts
        job = runner.start(session, spec, settings, store if store is not None else ui_store())
    except (SpecError, ValueError) as exc:
        message = "; ".join(exc.errors) if isinstance(exc, SpecError) else str(exc)
        return {"progress": _failed("Search not started", message), "polling": False}
    return {**_cleared(settings.objectives), "progress": progress_html(job), "polling": True, "search_id": None}


def on_poll_search(session: str = "local", store: Store | None = None) -> dict[str, Any]:
    """The session's search now: the progress line, and the charts when new evaluations arrived.

    ``polling`` is False once the search has ended (and its last state is drawn).
    """
    job = runner.current(session)
    if job is None:
        return {"progress": progress_html(None), "polling": False}
    out: dict[str, Any] = {"progress": progress_html(job), "polling": job.running}
    if job.search_id is None:
        return out
    out["search_id"] = job.search_id
    try:
        view = stored_view(store if store is not None else ui_store(), job.search_id)
    except ValueError:
        return out
    if view.evaluations != job.rendered:  # new evaluations (or a page that has drawn nothing yet)
        out.update(_figures(view, job.references))
        job.rendered = view.evaluations
    return out


def on_stop_search(session: str = "local") -> dict[str, Any]:
    """Stop the session's search after the evaluation under way (it stays resumable)."""
    job = runner.stop(session)
    if job is None:
        return {"progress": progress_html(runner.current(session))}
    return {"progress": progress_html(job)}


def on_resume_search(search_id: Any, budget_kind: str = "candidates", budget: Any = None, session: str = "local",
                     store: Store | None = None) -> dict[str, Any]:
    """Continue stored search ``search_id`` in the background (``explorer search --resume``).

    A stopped or interrupted search goes on to its own budget; a finished one is extended to the form's
    budget (candidates in all, or minutes in all; one no larger than it had adds nothing).
    """
    store = store if store is not None else ui_store()
    try:
        sid = int(_number(search_id, "search id", 1, 2**62, whole=True) or 0)
        steps = minutes = None
        if store.get_search(sid)["status"] == "finished":
            if budget_kind == "minutes":
                minutes = _number(budget, "budget (minutes)", 0, MAX_UI_MINUTES, above=True)
            else:
                steps = int(_number(budget, "budget (candidates)", 1, MAX_UI_CANDIDATES, whole=True) or 0)
        job = runner.resume(session, sid, store, steps=steps, budget_minutes=minutes)
    except ValueError as exc:
        return {"progress": _failed("Not resumed", str(exc)), "polling": False}
    return {**_cleared(), "progress": progress_html(job), "polling": True, "search_id": sid}


def on_load_candidate(search_id: Any, index: Any, store: Store | None = None) -> dict[str, Any]:
    """``{status, editor}``: candidate ``index`` of search ``search_id`` for the Design tab's editor."""
    store = store if store is not None else ui_store()
    if search_id in (None, "") or index in (None, ""):
        return {"status": "Pick a candidate first (run a search, or pick one in the list)."}
    try:
        sid, i = int(search_id), int(index)
        rows = [r for r in store.search_evaluations(sid) if int(r["candidate"]) == i]
        if not rows or rows[0].get("design_id") is None:
            return {"status": f"search {sid} has no candidate #{i}; pick one from the list"}
        design = store.get_design(int(rows[0]["design_id"]))
    except (TypeError, ValueError) as exc:
        return {"status": f"**Cannot load:** {exc}"}
    return {"status": f"Loaded candidate #{i} of search {sid} (**{design.name}**) into the editor; Undo brings "
                      "the old design back.", "editor": design.spec_yaml}


def on_pin_candidate(search_id: Any, index: Any, store: Store | None = None) -> dict[str, Any]:
    """Candidate ``index`` of search ``search_id`` to pin as the baseline (``compare_callbacks.on_pin_found``)."""
    out = on_load_candidate(search_id, index, store)
    if "editor" not in out:
        return {"status": out["status"]}
    return {"status": "", "pin_yaml": out["editor"], "pin_label": f"search {search_id}, candidate #{index}"}


# ----------------------------------------------------------------------------- History: stored searches


def _when(t: float | None) -> str:
    return datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S") if t else ""


def on_refresh_searches(store: Store | None = None, limit: int = 100) -> dict[str, Any]:
    """``{searches_table, search_choices}``: the stored searches, newest first, with their counts."""
    store = store if store is not None else ui_store()
    table, choices = [], []
    for s in store.list_searches(limit=limit):
        c = s["counts"]
        front: Any = ""
        hv: Any = ""
        try:
            view = stored_view(store, int(s["id"]))
            front, hv = len(view.front), (round(view.hypervolume[-1], 4) if view.hypervolume else "")
        except (ValueError, KeyError):
            pass
        table.append([s["id"], _when(s["started_at"]), s["status"], s["objectives"], c["candidates"], c["feasible"],
                      c["rejected"], c["evaluations"], front, hv, round(float(s["elapsed_s"] or 0) / 60, 2)])
        choices.append((f"#{s['id']} {s['objectives']} · {s['status']} · {_when(s['started_at'])}", int(s["id"])))
    return {"searches_table": table, "search_choices": choices}


def on_pick_search(search_id: Any, store: Store | None = None) -> dict[str, Any]:
    """``{status, front_chart, hv_chart, candidates_table, pick}`` of one stored search (empty for none)."""
    store = store if store is not None else ui_store()
    if search_id in (None, ""):
        return {"status": "Pick a search.", **_cleared()}
    try:
        view = stored_view(store, int(search_id))
    except (TypeError, ValueError) as exc:
        return {"status": f"**Cannot show it:** {exc}", **_cleared()}
    figures = _figures(view, runner.preset_references_cached(view.config) if view.config else [])
    on_front = set(view.front)
    table = [[c.index, c.kind, c.mutation, "yes" if c.feasible else "no", "yes" if c.index in on_front else "",
              _fmt(objective_value("accuracy", c), 2), _sig(c.latency_ms), _sig(c.macs / 1e9), _sig(c.params / 1e6),
              c.fidelity_steps or "", "; ".join(c.reasons)] for c in view.candidates]
    status = (f"Search #{view.search_id} ({', '.join(view.objectives)}), {view.status}: {len(view.candidates)} "
              f"candidates, {view.rejected} rejected, front of {len(view.front)}"
              + (f", hypervolume {view.hypervolume[-1]:.3f}" if view.hypervolume else "") + ".")
    if view.status in ("stopped", "interrupted"):
        status += f" Resume it in the Search tab (search id {view.search_id})."
    return {**figures, "status": status, "candidates_table": table}


CANDIDATE_HEADERS = ["#", "kind", "mutation", "kept", "front", "accuracy (%)", "latency (ms)", "GMACs", "params (M)",
                     "trained steps", "why rejected"]
