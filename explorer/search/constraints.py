"""Hard constraints of a search: budgets and the paper's best-practice rules.

A design that breaks one is *infeasible*: it is recorded with the reasons and never joins the
population, whatever its objectives. ``violations`` lists the reasons; ``violation_amount`` says by
how much (for walking out of an infeasible start, Deb's rule: less violation is better).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..analysis import Analysis
from ..spec import ArchitectureSpec, ParallelSpec

__all__ = ["Constraints", "latency_violations", "violation_amount", "violations"]


class Constraints(BaseModel):
    """Budgets (``None`` = no limit) and best-practice rules a design must meet.

    ``device`` names the profile the latency budget is predicted on when latency is predicted
    (a search that measures latency checks the budget against the measurement).
    """

    model_config = ConfigDict(extra="forbid")

    max_params: int | None = Field(None, gt=0)
    max_macs: int | None = Field(None, gt=0)
    max_peak_activation_bytes: int | None = Field(None, gt=0)
    max_latency_ms: float | None = Field(None, gt=0)
    device: str = "host"
    antialias_downsampling: bool = False
    condensers_early: bool = False


def _stride2_units_after_stem(spec: ArchitectureSpec) -> list[tuple[str, dict]]:
    out = []
    for s, stage in enumerate(spec.stages, 1):
        for b, entry in enumerate(stage.blocks, 1):
            blocks = [x for branch in entry.branches for x in branch] if isinstance(entry, ParallelSpec) else [entry]
            for block in blocks:
                params = block.params
                if int(params.get("stride", 1)) == 2:
                    out.append((f"stage {s}, block {b}", {"type": block.type, **params}))
    return out


def violations(spec: ArchitectureSpec, analysis: Analysis, constraints: Constraints,
               latency_ms: float | None = None, latency_source: str | None = None) -> list[str]:
    """Why ``spec`` breaks ``constraints`` (empty when it meets them all).

    The latency budget is checked only when ``latency_ms`` is given; ``latency_source`` says where
    the number came from (default: ``predicted on <constraints.device>``).
    """
    c, out = constraints, []
    if c.max_params and analysis.params > c.max_params:
        out.append(f"params {analysis.params / 1e6:.3f} M > {c.max_params / 1e6:.3f} M")
    if c.max_macs and analysis.macs > c.max_macs:
        out.append(f"MACs {analysis.macs / 1e9:.3f} G > {c.max_macs / 1e9:.3f} G")
    if c.max_peak_activation_bytes and analysis.peak_activation_bytes > c.max_peak_activation_bytes:
        out.append(f"peak activations {analysis.peak_activation_bytes / 2**20:.2f} MiB > "
                   f"{c.max_peak_activation_bytes / 2**20:.2f} MiB")
    out += latency_violations(latency_ms, c, latency_source)
    if c.antialias_downsampling:
        for place, block in _stride2_units_after_stem(spec):
            if block["type"] != "blurpool" and not block.get("anti_alias", False):
                out.append(f"{place}: stride-2 {block['type']} without anti-aliasing")
    if c.condensers_early:
        half = spec.stages[: max(1, len(spec.stages) // 2)]
        if not any(getattr(e, "type", None) == "attention_condenser" for st in half for e in st.blocks):
            out.append("no attention condenser in the first half of the stages")
    return out


def latency_violations(latency_ms: float | None, constraints: Constraints,
                       latency_source: str | None = None) -> list[str]:
    """The latency budget's reason, if ``latency_ms`` breaks it (``[]`` without a number or a budget)."""
    c = constraints
    if c.max_latency_ms is None or latency_ms is None or latency_ms <= c.max_latency_ms:
        return []
    source = latency_source or f"predicted on {c.device}"
    return [f"latency {latency_ms:.2f} ms > {c.max_latency_ms:.2f} ms ({source})"]


def violation_amount(params: int, macs: int, peak_activation_bytes: int, latency_ms: float | None,
                     reasons: list[str], constraints: Constraints) -> float:
    """How far a design is from feasible: Σ over budgets of max(0, value / budget − 1), plus 1 per broken rule.

    0 for a feasible design. A rule (anti-aliasing, condensers early) is 1 per reason that is not a budget.
    """
    c = constraints
    pairs = [(params, c.max_params), (macs, c.max_macs), (peak_activation_bytes, c.max_peak_activation_bytes),
             (latency_ms, c.max_latency_ms)]
    excess = sum(max(0.0, float(v) / float(b) - 1.0) for v, b in pairs if v is not None and b)
    budget_words = ("params ", "MACs ", "peak activations ", "latency ")
    rules = sum(1 for r in reasons if not r.startswith(budget_words))
    return excess + rules
