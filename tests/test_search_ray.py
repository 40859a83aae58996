"""The search on Ray (``explorer search … --ray``): one local Ray on 127.0.0.1 with 2 CPUs for the module.

Checked: the same seed gives the same candidates and the same front in process and on Ray; a worker
killed mid-evaluation is retried once (and then succeeds), a candidate whose every attempt dies is
marked infeasible ("worker died: …") and the search completes, with the driver alone writing the store;
the command's ``--ray`` joins the running Ray, and a bad or unreachable address is one line, exit 2.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from explorer.cli import main
from explorer.design import load_design
from explorer.search import Constraints, ProxyTask, evaluate_candidate, search
from explorer.search.ray_executor import RayExecutor, RayUnavailableError, parse_address
from explorer.spec import ArchitectureSpec, dump_spec
from explorer.store import Store

from tiny_designs import tiny_design

ray = pytest.importorskip("ray")

#: everything a candidate records that does not depend on where or how fast it ran
SAME = ("index", "step", "parent", "mutation", "name", "params", "macs", "peak_activation_bytes", "latency_ms",
        "accuracy", "fidelity_steps", "accuracies", "feasible", "reasons", "seed", "spec_yaml")
# the tests run in this order: the command reuses the workers the first search warmed up (a new worker
# imports torch: seconds on a busy 2-core machine), and the kills, which start new workers, come last


@pytest.fixture(scope="module")
def local_ray() -> Iterator[RayExecutor]:
    """A local Ray with 2 CPUs on 127.0.0.1, started once and shut down after the module's tests."""
    if ray.is_initialized():
        pytest.skip("Ray already runs in this process: these tests start their own")
    executor = RayExecutor("auto", num_cpus=2).connect()
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the dying test hook travels by value
    try:
        yield executor
    finally:
        executor.close()
        assert not ray.is_initialized()


@pytest.fixture(scope="module")
def tiny() -> ArchitectureSpec:
    return load_design(tiny_design(stem_stride=2))


def dying_evaluate(marker_dir: str, die_once: frozenset[int], die_always: frozenset[int],
                   job: dict[str, Any]) -> dict[str, Any]:
    """``evaluate_candidate``, except that the worker SIGKILLs itself mid-task (after evaluating, before the
    result is returned) for job ``seq`` in ``die_always``, and on the first attempt for ``seq`` in ``die_once``.
    Every attempt appends a line to ``marker_dir/seq<N>``."""
    result = evaluate_candidate(job)
    seq = job["seq"]
    if seq in die_once or seq in die_always:
        marker = Path(marker_dir) / f"seq{seq}"
        with marker.open("a") as f:
            f.write(f"{os.getpid()}\n")
        if seq in die_always or len(marker.read_text().splitlines()) == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    return result


@pytest.mark.slow
def test_the_local_ray_listens_on_loopback_only(local_ray: RayExecutor) -> None:
    assert [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]] == ["127.0.0.1"]
    assert ray.cluster_resources()["CPU"] == 2 and local_ray.slots() == 2


@pytest.mark.slow
def test_same_seed_same_candidates_and_front_in_process_and_on_ray(local_ray: RayExecutor,
                                                                   tiny: ArchitectureSpec) -> None:
    task = ProxyTask(input_size=16, steps=2, eta=2, rungs=2, batch_size=16)
    kwargs: dict[str, Any] = dict(constraints=Constraints(), objectives="accuracy,params", steps=5, population=3,
                                  sample=2, seed=3, task=task, batch=2)
    here = search(tiny, **kwargs)
    there = search(tiny, **kwargs, executor=local_ray)
    assert there.evaluations == here.evaluations > 6  # promotions ran too
    assert [c.model_dump(include=set(SAME)) for c in there.history] == \
        [c.model_dump(include=set(SAME)) for c in here.history]
    assert there.pareto == here.pareto and [f.model_dump() for f in there.fronts] == \
        [f.model_dump() for f in here.fronts]
    assert all(c.worker.startswith("ray 127.0.0.1 ") for c in there.history)
    assert {c.worker for c in there.history}.isdisjoint(c.worker for c in here.history)
    assert all(c.accuracy is not None for c in there.history)


@pytest.mark.slow
def test_the_command_runs_on_ray_and_fills_the_cluster(local_ray: RayExecutor, tiny: ArchitectureSpec,
                                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_file, db = tmp_path / "tiny.yaml", tmp_path / "s.sqlite"
    spec_file.write_text(dump_spec(tiny))
    assert main(["search", str(spec_file), "--objectives", "macs,params", "--steps", "3", "--population", "2",
                 "--ray", "auto", "--ray-cpus-per-trial", "1", "--db", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["candidates"]) == 4 and all(c["worker"].startswith("ray ") for c in out["candidates"])
    with Store(db) as store:
        assert store.get_search(out["search_id"])["config"]["batch"] == 2  # 2 CPUs / 1 CPU per trial
    assert ray.is_initialized()  # --ray auto used this process's Ray and left it running


@pytest.mark.slow
def test_a_killed_worker_is_retried_once_then_the_candidate_fails(local_ray: RayExecutor, tiny: ArchitectureSpec,
                                                                   tmp_path: Path) -> None:
    hook = functools.partial(dying_evaluate, str(tmp_path), frozenset({1}), frozenset({2}))
    dying = RayExecutor("auto", cpus_per_trial=1, evaluate=hook).connect()
    with Store(tmp_path / "s.sqlite") as store:
        result = search(tiny, Constraints(), "macs,params", steps=4, population=3, sample=2, seed=0, batch=2,
                        executor=dying, store=store)
        assert result.search_id is not None
        rows = store.search_evaluations(result.search_id)
    assert result.status == "finished" and len(result.history) == 5  # the search completed
    assert len((tmp_path / "seq1").read_text().splitlines()) == 2  # died once, retried once
    assert len((tmp_path / "seq2").read_text().splitlines()) == 2  # died twice: no third attempt
    once, always = result.history[1], result.history[2]
    assert once.feasible and once.worker.startswith("ray 127.0.0.1 ")
    assert not always.feasible and always.reasons[0].startswith("worker died: ")
    assert always.params > 0 and always.worker == "ray (died)"  # its free signals were counted by the driver
    stored = {int(r["seq"]): r for r in rows}
    assert sorted(stored) == [0, 1, 2, 3, 4]  # every evaluation committed by the driver, the dead one too
    assert stored[2]["result"]["reasons"] == always.reasons and stored[1]["result"]["feasible"]
    assert dying.started is False  # it used the module's Ray, which it leaves running
    dying.close()
    assert ray.is_initialized()


@pytest.mark.parametrize("args,message", [
    (["--ray", "127.0.0.1:9"], "--ray 127.0.0.1:9: no Ray cluster answers there"),
    (["--ray", "head-without-port"], "give auto (a local Ray on this machine) or the head's HOST:PORT"),
    (["--ray", "10.0.0.5:99999"], "give auto"),
    (["--ray-cpus-per-trial", "2"], "--ray-cpus-per-trial goes with --ray"),
    (["--ray", "auto", "--ray-cpus-per-trial", "0"], "--ray-cpus-per-trial 0 must be above 0"),
    (["--ray", "auto", "--ray-gpus-per-trial", "1.5"], "give a whole number of GPUs"),
    (["--batch", "0"], "--batch 0 is out of range"),
])
def test_bad_ray_arguments_are_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.sqlite"
    assert main(["search", "attendnext", "--objectives", "macs,params", "--steps", "2", *args, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not db.exists()  # refused before the store was opened


def test_addresses_are_parsed() -> None:
    assert parse_address("auto") is None
    assert parse_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert parse_address("ray://head.local:10001") == ("head.local", 10001)
    assert parse_address("[::1]:6379") == ("::1", 6379)
    with pytest.raises(RayUnavailableError, match="give auto"):
        parse_address("10.0.0.5")
