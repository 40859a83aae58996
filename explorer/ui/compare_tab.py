"""The Design tab's "Compare" panel: pin a baseline; the per-stage chart and the YAML diff against it.

Only lays out components and wires them to ``explorer.ui.compare_callbacks``. ``build_compare_tab``
returns a ``CompareWiring``: its ``baseline`` state, ``pin_from(...)`` (another tab's "Pin as
baseline" button: My designs, Search, History) and ``chain(event)``, which refreshes every compare
view after ``event`` (the app chains it after every edit).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from ..latency.profiles import list_profiles
from ..presets import list_presets
from . import compare_callbacks as cc

__all__ = ["COMPARE_CSS", "CompareWiring", "build_compare_tab"]

COMPARE_CSS = """
.baseline-note {font-size: 13px; margin-top: 4px; font-variant-numeric: tabular-nums;}
.baseline-note .bdelta {white-space: nowrap;}
.baseline-note .bdelta.up b {color: #b45309;} .baseline-note .bdelta.down b {color: #047857;}
"""


@dataclass
class CompareWiring:
    """The compare panel's state and the refresh to chain after any event that changes the design."""

    baseline: Any
    inputs: list[Any]
    outputs: dict[str, Any]

    def _apply(self, result: dict[str, Any]) -> dict[Any, Any]:
        """A callback's ``{name: value}`` as ``{component: value}``; names it leaves out stay as they are."""
        return {c: result[k] if k in result else gr.skip() for k, c in self.outputs.items()}

    def chain(self, event: Any) -> Any:
        """``event.then(refresh)``: the compare views follow the design (a quick no-op while nothing is pinned)."""

        def on_compare_refresh(spec_yaml: str, baseline: Any, with_latency: bool, profile: str | None) -> dict:
            if not baseline:  # nothing pinned: every compare view stays as it is
                return {c: gr.skip() for c in self.outputs.values()}
            return self._apply(cc.on_compare_refresh(spec_yaml, baseline, with_latency, profile))

        return event.then(on_compare_refresh, self.inputs, list(self.outputs.values()), show_progress="hidden",
                          concurrency_id="compare", concurrency_limit=4)

    def pin_from(self, trigger: Callable[..., Any], find: Callable[..., dict[str, Any]], inputs: list[Any],
                 status: Any) -> Any:
        """Wire "Pin as baseline" in another tab: ``find(*inputs)`` names the design (see ``cc.on_pin_found``).

        ``status`` is that tab's status line; the baseline, the numbers bar's changes and the compare
        views follow as after a pin in the Compare panel. The handler bears ``find``'s name (its endpoint).
        """
        spec_yaml, _, with_latency, profile = self.inputs
        n = len(inputs)

        def handler(*args: Any) -> dict[Any, Any]:
            result = cc.on_pin_found(find(*args[:n]), *args[n:])
            return {status: result["status"], **self._apply(result)}

        handler.__name__ = getattr(find, "__name__", "on_pin")
        handler.__doc__ = find.__doc__
        return trigger(handler, [*inputs, spec_yaml, with_latency, profile], [status, *self.outputs.values()],
                       concurrency_id="compare", concurrency_limit=4, show_progress="minimal")

    def handler(self, fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[Any, Any]]:
        def run(*args: Any) -> dict[Any, Any]:
            return self._apply(fn(*args))

        run.__name__ = fn.__name__
        run.__doc__ = fn.__doc__
        return run


def build_compare_tab(spec_yaml: Any, note: Any) -> CompareWiring:
    """The panel's components (inside the current layout context); ``note`` is the line under the numbers."""
    baseline = gr.State(None)
    gr.Markdown("**Compare** the design against a pinned baseline: the numbers bar shows the changes, the "
                "chart compares stage by stage, the YAML diff is below.")
    with gr.Row(equal_height=True):
        pin_btn = gr.Button("Pin the current design", size="sm", elem_id="pin-current", variant="primary")
        clear_btn = gr.Button("Clear", size="sm", elem_id="clear-baseline", scale=0, min_width=80)
    with gr.Row(equal_height=True):
        presets = list_presets()
        preset = gr.Dropdown(presets, value=presets[0] if presets else None, label="or a preset",
                             elem_id="pin-preset-choice", scale=3, interactive=True)
        pin_preset_btn = gr.Button("Pin preset", size="sm", elem_id="pin-preset", scale=1)
    with gr.Row(equal_height=True):
        profiles = list_profiles()
        with_latency = gr.Checkbox(False, label="with predicted latency", elem_id="compare-latency", scale=1)
        profile = gr.Dropdown(profiles, value=profiles[0] if profiles else None, label="device profile",
                              elem_id="compare-profile", scale=1, interactive=True)
    status = gr.Markdown(cc.NO_BASELINE, elem_id="compare-status")
    chart = gr.Plot(None, label="Per stage: design against baseline", elem_id="compare-chart")
    with gr.Accordion("YAML diff against the baseline", open=False, elem_id="compare-diff-box"):
        diff = gr.Code("", language=None, elem_id="compare-diff", interactive=False, lines=12, max_lines=40)
    wiring = CompareWiring(
        baseline=baseline,
        inputs=[spec_yaml, baseline, with_latency, profile],
        outputs={"baseline": baseline, "baseline_note": note, "compare_chart": chart, "compare_diff": diff,
                 "compare_status": status},
    )
    outs = list(wiring.outputs.values())
    queue: dict[str, Any] = dict(concurrency_id="compare", concurrency_limit=4, show_progress="minimal")
    pin_btn.click(wiring.handler(cc.on_pin_current), [spec_yaml, with_latency, profile], outs, **queue)
    pin_preset_btn.click(wiring.handler(cc.on_pin_preset), [preset, spec_yaml, with_latency, profile], outs,
                         **queue)
    clear_btn.click(wiring.handler(cc.on_clear_baseline), None, outs, **queue)
    for trigger in (with_latency.input, profile.input):
        wiring.chain(trigger(lambda: None, None, None, queue=False, show_progress="hidden"))
    return wiring
