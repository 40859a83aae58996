"""``explorer search SPEC --objectives accuracy,latency …``: multi-objective, multi-fidelity design search.

::

    explorer search SPEC --objectives accuracy,latency [--dataset D --input S --train-steps N]
        [--max-params M --max-macs G --max-peak-mib X --max-latency MS --antialias --condensers-early]
        [--device PROFILE | --measure local | --remote URL --token T] [--steps N | --budget-minutes X]
        [--ray auto|HOST:PORT [--ray-cpus-per-trial C] [--ray-gpus-per-trial G]] [--batch N]
        [--resume ID] [--seed S] [--db PATH] [--json] [-o best.yaml]

Costs (params, MACs, peak memory, latency) are counted at the design's own input size; ``--input`` is
the proxy task's (training only). Every evaluation is committed to the store (``--db``) as it finishes;
``--resume ID`` continues a stopped or killed search with its stored settings, evaluating nothing
twice (``--steps``/``--budget-minutes`` may extend it; a board's ``--token`` must be given again).
``--json`` prints one object: ``search_id, objectives, candidates, pareto`` (candidate indices, best
first in the first objective) and a summary; each candidate has ``name, params, macs, latency_ms,
accuracy, fidelity_steps, feasible, reasons, spec_yaml``. ``-o`` writes the best design: the feasible
candidate best in the first objective (ties: the next ones), which is always on the front.

``--ray`` evaluates the candidates as Ray tasks (``explorer.search.ray_executor``): ``auto`` starts a
local Ray on 127.0.0.1 (or uses this process's), ``HOST:PORT`` joins a cluster. A generation then holds
``--batch`` evaluations (default: as many trials as the cluster runs at once); the same seed and the
same ``--batch`` give the same search in process and on Ray.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from ..design import load_design
from ..search import (
    OBJECTIVES,
    Constraints,
    LatencySettings,
    ProxyTask,
    SearchResult,
    parse_objectives,
    resume_search,
    search,
)
from ..search.ray_executor import RayExecutor
from ..store import Store
from .common import add_db_option

_TASK = ProxyTask()  # the defaults the help text shows

#: options that shape a search: with --resume the stored ones hold, so these are refused
_SHAPING = ("spec", "objectives", "objective", "dataset", "input", "train_steps", "eta", "rungs", "max_params",
            "max_macs", "max_peak_mib", "max_latency", "device", "measure", "remote", "seed", "population",
            "sample", "batch")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for designs that trade accuracy against cost, under budgets and rules")
    p.add_argument("spec", nargs="?", metavar="SPEC", help="the starting design: a preset name or a spec file")
    p.add_argument("--objectives", default=None, metavar="LIST",
                   help=f"two or three of {', '.join(OBJECTIVES)} (default accuracy,latency)")
    p.add_argument("--objective", default=None, help=argparse.SUPPRESS)  # the old single objective
    task = p.add_argument_group("proxy task (the accuracy objective)")
    task.add_argument("--dataset", default=None, metavar="D",
                      help=f"digits, shapes or a folder (default {_TASK.dataset})")
    task.add_argument("--input", type=int, default=None, metavar="S",
                      help=f"square input of the proxy training (default {_TASK.input_size}); "
                      "costs use the design's own")
    task.add_argument("--train-steps", type=int, default=None, metavar="N",
                      help=f"training steps of the cheapest rung (default {_TASK.steps})")
    task.add_argument("--eta", type=int, default=None, help=f"successive halving: top 1/eta go on, eta× longer "
                      f"(default {_TASK.eta})")
    task.add_argument("--rungs", type=int, default=None, help=f"training lengths (default {_TASK.rungs})")
    rules = p.add_argument_group("constraints")
    rules.add_argument("--max-params", type=float, default=None, metavar="M", help="budget in millions of parameters")
    rules.add_argument("--max-macs", type=float, default=None, metavar="G", help="budget in GMACs")
    rules.add_argument("--max-peak-mib", type=float, default=None, metavar="X", help="peak activation memory budget")
    rules.add_argument("--max-latency", type=float, default=None, metavar="MS", help="latency budget (as measured)")
    rules.add_argument("--antialias", action="store_true", help="require anti-aliased downsampling after the stem")
    rules.add_argument("--condensers-early", action="store_true",
                       help="require an attention condenser in the first half")
    lat = p.add_argument_group("latency").add_mutually_exclusive_group()
    lat.add_argument("--device", default=None, metavar="PROFILE", help="predict latency on this profile (default host)")
    lat.add_argument("--measure", choices=["local"], default=None, help="measure latency here in ONNX Runtime")
    lat.add_argument("--remote", default=None, metavar="URL", help="measure latency on a board's agent")
    p.add_argument("--token", default=None, metavar="T", help="the board agent's token (with --remote)")
    budget = p.add_argument_group("budget").add_mutually_exclusive_group()
    budget.add_argument("--steps", type=int, default=None, metavar="N", help="new candidates to evaluate (default 50)")
    budget.add_argument("--budget-minutes", type=float, default=None, metavar="X", help="stop after X minutes")
    p.add_argument("--population", type=int, default=None, help="population size (default 12)")
    p.add_argument("--sample", type=int, default=None, help="tournament size (default 4)")
    p.add_argument("--batch", type=int, default=None, metavar="N",
                   help="evaluations per generation, run at once on Ray (default 1; with --ray the trials the "
                   "cluster runs at once)")
    scale = p.add_argument_group("scale-out on Ray")
    scale.add_argument("--ray", default=None, metavar="ADDRESS",
                       help="evaluate on Ray: auto (a local Ray on 127.0.0.1) or a cluster's HOST:PORT")
    scale.add_argument("--ray-cpus-per-trial", type=float, default=None, metavar="C",
                       help="CPUs each evaluation reserves (default 1; also its torch threads)")
    scale.add_argument("--ray-gpus-per-trial", type=float, default=None, metavar="G",
                       help="GPUs each evaluation reserves (default 0); a trial given one trains on CUDA")
    p.add_argument("--resume", type=int, default=None, metavar="ID", help="continue stored search ID")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="seed (default 0)")
    add_db_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-o", "--output", type=Path, default=None, help="write the best design's YAML here")
    p.set_defaults(func=run)


def _positive(value: float | None, flag: str, what: str) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{flag} {value:g} must be above 0 ({what})")


def _constraints(args: argparse.Namespace) -> Constraints:
    _positive(args.max_params, "--max-params", "millions of parameters")
    _positive(args.max_macs, "--max-macs", "GMACs")
    _positive(args.max_peak_mib, "--max-peak-mib", "MiB")
    _positive(args.max_latency, "--max-latency", "milliseconds")
    return Constraints(
        max_params=round(args.max_params * 1e6) if args.max_params else None,
        max_macs=round(args.max_macs * 1e9) if args.max_macs else None,
        max_peak_activation_bytes=round(args.max_peak_mib * 2**20) if args.max_peak_mib else None,
        max_latency_ms=args.max_latency, device=args.device or "host", antialias_downsampling=args.antialias,
        condensers_early=args.condensers_early)


def _task(args: argparse.Namespace) -> ProxyTask:
    given = {"dataset": args.dataset, "input_size": args.input, "steps": args.train_steps, "eta": args.eta,
             "rungs": args.rungs}
    flags = {"dataset": "--dataset", "input_size": "--input", "steps": "--train-steps", "eta": "--eta",
             "rungs": "--rungs"}
    data = {k: v for k, v in given.items() if v is not None}
    for key, limits in (("input_size", (8, 512)), ("steps", (1, 1_000_000)), ("eta", (2, 10)), ("rungs", (1, 6))):
        if key in data and not limits[0] <= data[key] <= limits[1]:
            raise ValueError(f"{flags[key]} {data[key]} is out of range; use {limits[0]} to {limits[1]}")
    try:
        return ProxyTask(**data)
    except ValidationError as exc:  # pydantic's report -> its first message
        raise ValueError(f"proxy task: {str(exc.errors()[0]['msg']).removeprefix('Value error, ')}") from None


def _latency(args: argparse.Namespace) -> LatencySettings:
    if args.token is not None and not args.remote:
        raise ValueError("--token goes with --remote URL (the board's agent)")
    if args.remote:
        if not args.token:
            raise ValueError("--remote needs --token T: the token the board's agent was started with")
        from ..latency.client import board_url

        return LatencySettings(mode="remote", url=board_url(args.remote), token=args.token)
    if args.measure == "local":
        return LatencySettings(mode="local")
    return LatencySettings(device=args.device or "host")


def _executor(args: argparse.Namespace) -> RayExecutor | None:
    """The Ray executor of ``--ray`` (connected: a bad address fails here, before the store is written)."""
    for flag, value in (("--ray-cpus-per-trial", args.ray_cpus_per_trial),
                        ("--ray-gpus-per-trial", args.ray_gpus_per_trial)):
        if value is not None and args.ray is None:
            raise ValueError(f"{flag} goes with --ray auto|HOST:PORT")
    if args.ray is None:
        return None
    executor = RayExecutor(args.ray, cpus_per_trial=1.0 if args.ray_cpus_per_trial is None else args.ray_cpus_per_trial,
                           gpus_per_trial=args.ray_gpus_per_trial or 0.0)
    return executor.connect()


def _check_resume(args: argparse.Namespace) -> None:
    given = [name for name in _SHAPING if getattr(args, name) is not None]
    given += [f for f, on in (("antialias", args.antialias), ("condensers_early", args.condensers_early)) if on]
    if given:
        flags = ", ".join("SPEC" if g == "spec" else "--" + g.replace("_", "-") for g in given)
        raise ValueError(f"--resume continues search {args.resume} with its stored settings; drop {flags} "
                         "(only --steps, --budget-minutes, --token, --ray, --db, --json and -o go with it)")
    if args.db is not None and not Path(args.db).expanduser().exists():
        raise FileNotFoundError(f"no store at {args.db}; give the --db the search was run with")


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def _print(result: SearchResult, output: Path | None, db: Path) -> None:
    best = result.best
    print(f"search {result.search_id} {result.status}: {len(result.history)} candidates "
          f"({result.rejected} broke a constraint), {result.evaluations} evaluations"
          + (f" ({result.replayed} from the store)" if result.replayed else "")
          + f"; front of {len(result.pareto)}, hypervolume {result.hypervolume:.3f}")
    print(f"\n  {'#':>4s}  {'name':24s} {'params M':>9s} {'GMACs':>8s} {'lat. ms':>8s} {'accuracy':>9s} {'steps':>6s}")
    for i in result.pareto:
        c = result.history[i]
        print(f"  {c.index:4d}  {c.name[:24]:24s} {c.params / 1e6:9.3f} {c.macs / 1e9:8.3f} "
              f"{_fmt(c.latency_ms, '8.2f'):>8s} {_fmt(c.accuracy, '9.3f'):>9s} {c.fidelity_steps:6d}")
    print(f"\nbest in {result.objectives[0]}: #{best.index} {best.name} ({best.mutation})"
          + (f"; wrote {output}" if output else ""))
    if result.status == "stopped":
        print(f"resume with: explorer search --resume {result.search_id} --db {db}")


def run(args: argparse.Namespace) -> int:
    if args.resume is not None:
        _check_resume(args)
    elif args.spec is None:
        raise ValueError("give the starting design SPEC (a preset name or a spec file), or --resume ID")
    if args.steps is not None and not 1 <= args.steps <= 100_000:
        raise ValueError(f"--steps {args.steps} is out of range; use 1 to 100000")
    _positive(args.budget_minutes, "--budget-minutes", "minutes")
    for flag, value in (("--population", args.population), ("--sample", args.sample)):
        if value is not None and not 1 <= value <= 1000:
            raise ValueError(f"{flag} {value} is out of range; use 1 to 1000")
    if args.batch is not None and not 1 <= args.batch <= 1024:
        raise ValueError(f"--batch {args.batch} is out of range; use 1 to 1024")
    if args.seed is not None and not 0 <= args.seed <= 2**31 - 1:
        raise ValueError(f"--seed {args.seed} is out of range; use 0 to {2**31 - 1}")
    if args.objective is not None and args.objectives is not None:
        raise ValueError("give --objectives only (--objective is its old, single-name form)")
    show = not args.json and sys.stderr.isatty()
    total = args.steps or (round(args.budget_minutes * 60) if args.budget_minutes else 50)
    settings: dict[str, Any] = {}
    if args.resume is None:  # every argument is checked before Ray starts (a cluster takes seconds to join)
        population = args.population or 12
        settings = dict(
            objectives=parse_objectives(args.objectives or args.objective or "accuracy,latency"),
            latency=_latency(args), constraints=_constraints(args), task=_task(args), base=load_design(args.spec),
            steps=args.steps if args.steps is not None else (None if args.budget_minutes else 50),
            population=population, sample=args.sample or min(4, population), seed=args.seed or 0,
            budget_minutes=args.budget_minutes, batch=args.batch)
    executor = _executor(args)
    try:
        if args.resume is None and args.batch is None:  # on Ray, one generation fills the cluster
            settings["batch"] = min(1024, executor.slots()) if executor is not None else 1
        with Store(args.db) as store, tqdm(total=total, desc="searching",
                                           unit="cand" if not args.budget_minutes else "s", disable=not show,
                                           leave=False, dynamic_ncols=True) as bar:
            def progress(done: int, total: int, message: str) -> None:
                bar.total = total
                bar.update(done - bar.n)
                bar.set_postfix_str("front " + message.rpartition("front ")[2], refresh=False)

            if args.resume is not None:
                result = resume_search(store, args.resume, steps=args.steps, budget_minutes=args.budget_minutes,
                                       token=args.token or "", executor=executor, progress=progress)
            else:
                result = search(**settings, store=store, executor=executor, progress=progress)
            db = store.path
    finally:
        if executor is not None:
            executor.close()
    if args.output:
        args.output.write_text(result.best.spec_yaml)
    if args.json:
        print(json.dumps({**result.to_json(), "output": str(args.output) if args.output else None}))
    else:
        _print(result, args.output, db)
    return 0
