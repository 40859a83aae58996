"""The compare panel's callbacks: pin a baseline, then every view shows the design against it.

A baseline is a plain mapping ``{"name": label, "yaml": the design's YAML}`` held in a
``gr.State`` (``baseline``). ``pin_design`` makes one from any design (a spec or its text): the
Design tab pins the current design or a preset with it, and any other tab (a stored design, a
search result, a run's design) can pin its design the same way by returning
``{"baseline": pin_design(spec, label)}`` to that state. ``on_compare_refresh`` runs after every
edit (chained after the redraw, see ``explorer.ui.app``): the numbers bar's line of changes
against the baseline, the per-stage chart (params, MACs and, when asked, predicted latency), and
the YAML diff.

Outputs (names): ``baseline`` (state), ``baseline_note`` (the line under the numbers bar),
``compare_chart``, ``compare_diff``, ``compare_status``.
"""

from __future__ import annotations

import html
from typing import Any

from ..analysis import Analysis
from ..charts import compare_stages_figure
from ..compare import Delta, stage_totals, total_deltas, yaml_diff
from ..design import load_preset
from ..spec import ArchitectureSpec, SpecError, dump_spec
from .state import design_from_text, load_state
from .worker import analyze_bounded

__all__ = ["NO_BASELINE", "PINNED", "on_clear_baseline", "on_compare_refresh", "on_pin_current", "on_pin_found",
           "on_pin_preset", "pin_design"]

NO_BASELINE = ("No baseline pinned: **Pin the current design** or a preset, and the numbers, the per-stage "
               "chart and the YAML diff compare against it.")


def pin_design(design: ArchitectureSpec | str, label: str | None = None) -> dict[str, str]:
    """A baseline from a design (a validated spec, or YAML/JSON text: validated here; ``SpecError`` if not)."""
    spec = design if isinstance(design, ArchitectureSpec) else design_from_text(design)
    return {"name": (label or spec.name).strip() or spec.name, "yaml": dump_spec(spec)}


def _valid(baseline: Any) -> dict[str, str] | None:
    if isinstance(baseline, dict) and isinstance(baseline.get("yaml"), str) and baseline.get("yaml"):
        return {"name": str(baseline.get("name") or "baseline"), "yaml": baseline["yaml"]}
    return None


def _fmt(d: Delta) -> tuple[str, str]:
    """(value shown, change shown) in the numbers bar's units."""
    if d.key == "params":
        scale, unit, digits = 1e6, "M", 3
    elif d.key == "macs":
        scale, unit, digits = 1e9, "G", 3
    else:
        scale, unit, digits = 2**20, "MiB", 2
    sign = "+" if d.change > 0 else ("−" if d.change < 0 else "±")
    share = f" ({d.share * 100:+.1f} %)" if d.share is not None and d.change else ""
    return f"{d.current / scale:,.{digits}f} {unit}", f"{sign}{abs(d.change) / scale:,.{digits}f} {unit}{share}"


def baseline_note(current: Analysis, baseline: Analysis, name: str) -> str:
    """The line under the numbers bar: every total's change against the baseline."""
    parts = []
    for d in total_deltas(current, baseline):
        _, change = _fmt(d)
        cls = "up" if d.change > 0 else ("down" if d.change < 0 else "same")
        parts.append(f'<span class="bdelta {cls}" id="baseline-delta-{d.key}" data-change="{d.change}">'
                     f'{d.label} <b>{change}</b></span>')
    return (f'<div class="baseline-note" data-baseline="{html.escape(name)}">vs baseline '
            f'<b>{html.escape(name)}</b>: {" · ".join(parts)}</div>')


def _unit_ms(spec: ArchitectureSpec, profile_name: str) -> dict[Any, float]:
    from ..latency.predictor import predict_units
    from ..latency.profiles import load_profile

    return {u.address: u.ms for u in predict_units(spec, load_profile(profile_name)) if u.address is not None}


def on_compare_refresh(spec_yaml: str, baseline: Any, with_latency: bool = False,
                       profile: str | None = None) -> dict[str, Any]:
    """Every compare view of the current design against ``baseline`` (nothing pinned: they are cleared)."""
    base = _valid(baseline)
    if base is None:
        return {"baseline_note": "", "compare_chart": None, "compare_diff": "", "compare_status": NO_BASELINE}
    try:
        spec, base_spec = load_state(spec_yaml), load_state(base["yaml"])
        current, reference = analyze_bounded(spec), analyze_bounded(base_spec)
        latency_note = ""
        cur_ms = base_ms = None
        if with_latency:
            if not profile:
                raise SpecError("pick a device profile for the predicted latency")
            cur_ms, base_ms = _unit_ms(spec, profile), _unit_ms(base_spec, profile)
            latency_note = f" Latency: per-unit prediction for **{html.escape(profile)}** (explorer.latency)."
    except (SpecError, ValueError, OSError) as exc:
        message = exc.errors[0] if isinstance(exc, SpecError) else str(exc)
        return {"compare_status": f"Compare failed: {html.escape(message)}"}
    name = base["name"]
    figure = compare_stages_figure(stage_totals(current, cur_ms), stage_totals(reference, base_ms), spec.name, name)
    diff = yaml_diff(base["yaml"], spec_yaml, f"baseline: {name}", f"design: {spec.name}")
    same = "" if diff else " The design is the baseline (no difference yet)."
    return {
        "baseline_note": baseline_note(current, reference, name),
        "compare_chart": figure,
        "compare_diff": diff or "# the design is the same as the baseline",
        "compare_status": f"Baseline: **{html.escape(name)}**.{same}{latency_note}",
    }


def on_pin_current(spec_yaml: str, with_latency: bool = False, profile: str | None = None) -> dict[str, Any]:
    """Pin the design on screen as the baseline."""
    try:
        baseline = pin_design(load_state(spec_yaml), f"{load_state(spec_yaml).name} (pinned)")
    except SpecError as exc:
        return {"compare_status": f"Not pinned: {html.escape(exc.errors[0])}"}
    return {"baseline": baseline, **on_compare_refresh(spec_yaml, baseline, with_latency, profile)}


def on_pin_preset(name: str | None, spec_yaml: str, with_latency: bool = False,
                  profile: str | None = None) -> dict[str, Any]:
    """Pin preset ``name`` as the baseline."""
    if not name:
        return {"compare_status": "Pick a preset to pin first."}
    try:
        baseline = pin_design(load_preset(name), name)
    except SpecError as exc:
        return {"compare_status": f"Not pinned: {html.escape(exc.errors[0])}"}
    return {"baseline": baseline, **on_compare_refresh(spec_yaml, baseline, with_latency, profile)}


#: what a tab says once its design is pinned (the numbers bar and the Compare panel are on the Design tab)
PINNED = ("Pinned **{label}** as the baseline: the numbers bar shows every change against it, and the Design "
          "tab's Compare panel compares stage by stage.")


def on_pin_found(found: dict[str, Any], spec_yaml: str, with_latency: bool = False,
                 profile: str | None = None) -> dict[str, Any]:
    """Pin the design another tab found (a stored design, a search candidate, a run's design).

    ``found`` is that tab's answer: ``{"status": what to say}`` alone when there is nothing to pin,
    or with ``"pin_yaml"`` (the design's text) and ``"pin_label"`` (the baseline's name). Returns
    ``{"status": the tab's line}`` and, once pinned, the compare views (as ``on_compare_refresh``).
    """
    text = found.get("pin_yaml")
    if not isinstance(text, str) or not text:
        return {"status": str(found.get("status") or "Nothing to pin: pick a design first.")}
    try:
        baseline = pin_design(text, found.get("pin_label"))
    except SpecError as exc:
        return {"status": f"**Not pinned:** {html.escape(exc.errors[0])}"}
    shown = on_compare_refresh(spec_yaml, baseline, with_latency, profile)
    if "baseline_note" not in shown:  # the refresh failed: say why where the user clicked
        return {"status": f"**Not pinned:** {shown.get('compare_status', 'the baseline could not be counted')}"}
    return {"status": PINNED.format(label=html.escape(baseline["name"])), "baseline": baseline, **shown}


def on_clear_baseline() -> dict[str, Any]:
    """Unpin the baseline: the compare views are cleared."""
    return {"baseline": None, **on_compare_refresh("", None)}
