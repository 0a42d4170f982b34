"""Training on many processes: torchrun with two gloo processes on the CPU."""
import json
import os
import subprocess
import sys
import textwrap

import torch

from saccadelib.loss import LossConfig
from saccadelib.model import ModelConfig, VariationalSaccading
from saccadelib.tasks import get_task
from saccadelib.checkpoint import load_checkpoint
from saccadelib.train import _clip
from saccadelib.train_config import TrainConfig

# Deterministic given the weights (no z samples, per-sample GroupNorm, no free bits: a loss that is a mean
# over the batch), so two half-batches with averaged gradients must equal one step on the whole batch. No
# decoder: parameters without a gradient must not stall the processes (and Adam would turn the decoder's
# last bias, whose gradient GroupNorm all but cancels, from rounding noise into full-size steps).
MODEL = dict(n_classes=19, glimpses=2, hidden=32, proxy_features=32, crop_features=32, latent_features=16, width=8,
             rnn_layers=1, norm="group", train_sample=False, loss=LossConfig(reconstruction_weight=0.0))
RUN = dict(task="sum", epochs=1, train_size=64, batch_size=32, val_size=50, eval_batch_size=50, progress="none",
           test=False, seed=5, lr=3e-3)


def _torchrun(args: list[str], cwd) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *args]
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_processes_keep_identical_weights_equal_to_one_process_on_the_global_batch(tmp_path, mnist_root):
    script = tmp_path / "rank.py"
    script.write_text(textwrap.dedent(f"""
        import os, torch
        from saccadelib.loss import LossConfig
        from saccadelib.model import ModelConfig, VariationalSaccading
        from saccadelib.train import fit
        from saccadelib.train_config import TrainConfig
        torch.manual_seed(0)
        model = VariationalSaccading(ModelConfig(**{MODEL!r}))
        fit(model, TrainConfig(**{RUN!r}, threads=1), {str(tmp_path / "run")!r}, {{"name": "saccade"}})
        torch.save(model.state_dict(), {str(tmp_path)!r} + f"/rank{{os.environ['RANK']}}.pt")
    """))
    _torchrun([str(script)], tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]

    torch.manual_seed(0)
    model = VariationalSaccading(ModelConfig(**MODEL)).train()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=RUN["lr"])
    task = get_task("sum")
    streams = [task.training_stream(RUN["train_size"], RUN["batch_size"], RUN["seed"], rank, 2) for rank in (0, 1)]
    assert len(streams[0]) == 2 and streams[0].batch(0)["label"].shape == (16,)
    assert not torch.equal(streams[0].batch(0)["image"], streams[1].batch(0)["image"])  # each rank its own canvases
    for b in range(2):
        halves = [s.batch(b) for s in streams]
        batch = {k: torch.cat([h[k] for h in halves]) for k in halves[0]}
        loss, _ = model.training_loss(batch)
        optimizer.zero_grad()
        loss.backward()
        _clip(model, TrainConfig())
        optimizer.step()
    for name, value in model.state_dict().items():
        assert torch.equal(ranks[0][name], ranks[1][name]), f"ranks differ in {name}"
        if value.is_floating_point():
            # within 2% of one Adam step (lr): rounding in a near-zero gradient is amplified by Adam's scaling
            difference = (ranks[0][name] - value).abs()
            assert difference.max() < 0.02 * RUN["lr"] and difference.mean() < 1e-6, name
    assert not torch.equal(ranks[0]["classifier.head.2.weight"], initial["classifier.head.2.weight"])  # it trained


def test_torchrun_trains_from_the_command_line_and_resumes(tmp_path, mnist_root):
    out = tmp_path / "run"
    args = ["-m", "saccadelib", "train", "--task", "sum", "--out", str(out),
            "--set", "glimpses=1", "--set", "hidden=16", "--set", "width=8", "--set", "rnn_layers=1",
            "--train", "train_size=64", "--train", "batch_size=32", "--train", "val_size=64",
            "--train", "test_size=64", "--train", "threads=1"]
    first = _torchrun([*args, "--train", "epochs=1"], tmp_path)
    assert first.stdout.count("epoch   1") == 1  # rank 0 alone logs
    _torchrun([*args, "--train", "epochs=2"], tmp_path)  # a constant-rate run may be extended: it resumes
    metrics = json.loads((out / "metrics.json").read_text())
    history = load_checkpoint(out / "last.pt")["history"]
    assert metrics["epochs_run"] == 2 and [row["epoch"] for row in history] == [1, 2]
    assert metrics["run"]["processes"] == 2 and metrics["test"]["n"] == 64
    assert json.loads((out / "config.json").read_text())["processes"] == 2
