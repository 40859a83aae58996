"""Training on a CUDA GPU (skipped where PyTorch sees none; run on a GPU machine to check).

On CUDA the recipe switches on channels-last and bfloat16 autocast. These tests check that a run
there learns (well above chance), that its saved weights give the same predictions on the CPU
(the checkpoint is portable: evaluating on CPU in fp32 agrees with the GPU's bf16 evaluation on
nearly every image), and that the same seed gives the same curve twice on the GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from explorer.checkpoint import load_checkpoint
from explorer.data import load_dataset
from explorer.train import evaluate, make_config, train

from tiny_designs import tiny_design

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch")

TINY = tiny_design(width=24)


def test_a_run_on_cuda_learns_and_its_weights_load_on_cpu(tmp_path: Path) -> None:
    config = make_config(steps=150, input_size=16, batch_size=64, lr=1e-2, device="cuda",
                         weights_dir=str(tmp_path))
    result = train(TINY, config)
    assert result.device.startswith("cuda")
    assert result.val_accuracy is not None and result.val_accuracy > 0.5  # digits: chance is 0.1
    assert result.weights_path is not None
    _, model = load_checkpoint(result.weights_path)
    model = model.cpu().eval()
    data = load_dataset("digits", 16, 0)
    cpu_accuracy = evaluate(model, data.val_x, data.val_y)
    assert abs(cpu_accuracy - result.val_accuracy) <= 0.03


def test_the_same_seed_gives_the_same_curve_on_cuda() -> None:
    config = make_config(steps=40, input_size=16, batch_size=32, lr=1e-2, device="cuda", log_every=10)
    first, second = train(TINY, config), train(TINY, config)
    assert [p.train_loss for p in first.curve] == pytest.approx([p.train_loss for p in second.curve], abs=1e-3)
