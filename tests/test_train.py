import csv
import json

import pytest
import torch

from saccadelib.datasets import twodigit as data
from saccadelib.config import apply_overrides
from saccadelib.model import ModelConfig, VariationalSaccading
from saccadelib.checkpoint import load_checkpoint
from saccadelib.evaluation import evaluate
from saccadelib.train import fit
from saccadelib.train_config import TrainConfig

TINY = dict(n_classes=19, glimpses=2, hidden=32, proxy_features=32, crop_features=32, latent_features=16,
            width=8, rnn_layers=1)
RUN = dict(task="sum", epochs=2, train_size=64, batch_size=32, val_size=100, eval_batch_size=100,
           progress="none", test=False, seed=3)
META = {"name": "saccade", "config": "tiny"}


def _fresh_model():
    torch.manual_seed(11)
    return VariationalSaccading(ModelConfig(**TINY))


def _weights(path):
    return load_checkpoint(path)["model"]


def test_resume_after_a_stop_gives_the_uninterrupted_weights(tmp_path, mnist_root):
    fit(_fresh_model(), TrainConfig(**RUN), tmp_path / "straight", META)
    fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 1}), tmp_path / "stopped", META)
    fit(_fresh_model(), TrainConfig(**RUN), tmp_path / "stopped", META)  # picks up last.pt
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "stopped" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_a_kill_mid_epoch_gives_the_uninterrupted_weights(tmp_path, mnist_root):
    fit(_fresh_model(), TrainConfig(**RUN), tmp_path / "straight", META)
    model = _fresh_model()
    calls = {"n": 0}
    real = model.training_loss

    def dies_in_epoch_two(batch):
        calls["n"] += 1
        if calls["n"] == 3:  # epoch 2's first batch (2 batches per epoch)
            raise KeyboardInterrupt("killed")
        return real(batch)

    model.training_loss = dies_in_epoch_two
    with pytest.raises(KeyboardInterrupt):
        fit(model, TrainConfig(**RUN), tmp_path / "killed", META)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 1
    fit(_fresh_model(), TrainConfig(**RUN), tmp_path / "killed", META)
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "killed" / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_model_or_config(tmp_path, mnist_root):
    fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 1}), tmp_path, META)
    with pytest.raises(ValueError, match="written by another model"):
        fit(_fresh_model(), TrainConfig(**RUN), tmp_path, {"name": "other"})
    with pytest.raises(ValueError, match="written by another model"):
        fit(_fresh_model(), TrainConfig(**{**RUN, "lr": 0.1}), tmp_path, META)


def test_resume_refuses_a_checkpoint_whose_model_settings_differ(tmp_path, mnist_root):
    meta = {"name": "saccade", "config": json.loads(json.dumps(ModelConfig(**TINY).to_dict()))}
    fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 1}), tmp_path, meta)
    assert fit(_fresh_model(), TrainConfig(**RUN), tmp_path, meta)["epochs_run"] == 2
    ckpt = load_checkpoint(tmp_path / "last.pt")
    del ckpt["model_meta"]["config"]["proxy_width"]  # any difference, a missing setting included, is refused
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(ValueError, match="written by another model"):
        fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 3}), tmp_path, meta)


def test_outputs_are_written_and_sane(tmp_path, mnist_root):
    summary = fit(_fresh_model(), TrainConfig(**{**RUN, "test": True}), tmp_path, META)
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_nll_class", "val_accuracy", "val_hit_rate", "elapsed_s", "val_s"} <= set(rows[0])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # validation time is recorded apart from training time (the cpu profile's budgets count both)
    assert all(float(r["val_s"]) > 0 for r in rows)
    assert metrics["val_s"] == pytest.approx(sum(float(r["val_s"]) for r in rows), abs=0.1)
    assert metrics["train_s"] == pytest.approx(float(rows[-1]["elapsed_s"]), abs=0.1)
    assert metrics == json.loads(json.dumps(summary))
    assert 0 <= metrics["test"]["accuracy"] <= 1 and metrics["test"]["n"] == 10_000
    assert len(metrics["test"]["step_accuracy"]) == 2 and len(metrics["test"]["hit_rate"]) == 2
    assert metrics["test_dataset"]["sha256"] == data.describe(data.eval_set("sum", "test"))["sha256"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["train"]["seed"] == 3 and config["model"] == META and "git_commit" in config["run"]
    assert "optimizer" not in torch.load(tmp_path / "best.pt", weights_only=True)


def test_a_task_read_at_a_large_side_trains_on_lazy_sources(tmp_path, mnist_root):
    from saccadelib.sources import UpsampledSource
    from saccadelib.tasks import get_task
    from saccadelib.evaluation import to_device

    task = get_task("sum", image_side=400)
    batch = to_device(task.evaluation_set("val").as_dict(0, 3), torch.device("cpu"))
    streamed = next(iter(task.training_stream(8, 4, seed=0)))
    for image in (batch["image"], streamed["image"]):
        assert isinstance(image, UpsampledSource) and (image.height, image.width, image.count) == (400, 400, image.count)
    assert batch["image"].base.shape == (3, 1, 100, 100)
    assert task.evaluation_set("val").describe()["image_side"] == 400
    assert "image_side" not in get_task("sum").evaluation_set("val").describe()  # the fixed set's card as recorded
    summary = fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 1, "image_side": 400}), tmp_path, META)
    config = json.loads((tmp_path / "config.json").read_text())
    assert summary["epochs_run"] == 1 and config["datasets"]["val"]["image_side"] == 400
    with pytest.raises(ValueError, match="fivek is read at its own size"):
        get_task("fivek", image_side=400)


def test_the_test_set_is_scored_with_the_best_on_validation_weights_not_the_last(tmp_path, mnist_root, monkeypatch):
    from saccadelib import train

    scored = {}
    real = train.evaluate

    def validation_peaks_at_epoch_one(model, dataset, *args, **kwargs):
        if dataset.describe().get("split") == "test":
            scored["weights"] = {k: v.clone() for k, v in model.state_dict().items()}
            return real(model, dataset, *args, **kwargs)
        scored["val_calls"] = scored.get("val_calls", 0) + 1
        return {"n": 1, "accuracy": 0.9 if scored["val_calls"] == 1 else 0.1, "nll": 1.0}

    monkeypatch.setattr(train, "evaluate", validation_peaks_at_epoch_one)
    summary = fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 3, "test": True, "test_size": 50}), tmp_path, META)
    assert summary["best_epoch"] == 1 and summary["epochs_run"] == 3 and summary["test"]["n"] == 50
    best, last = _weights(tmp_path / "best.pt"), _weights(tmp_path / "last.pt")
    assert all(torch.equal(scored["weights"][k], best[k]) for k in best)
    assert not all(torch.equal(scored["weights"][k], last[k]) for k in last)


def test_a_run_stops_at_its_plateau_says_why_and_stays_stopped_on_resume(tmp_path, mnist_root, monkeypatch):
    from saccadelib import train

    accuracies = iter([0.3, 0.5, 0.505, 0.5, 0.49, 0.9, 0.9])  # flat after epoch 2 (margin 0.01)
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: {"n": 1, "accuracy": next(accuracies), "nll": 1.0})
    run = {**RUN, "epochs": 7, "plateau_epochs": 3, "plateau_margin": 0.01, "lr_schedule": "constant"}
    summary = fit(_fresh_model(), TrainConfig(**run), tmp_path, META)
    assert summary["epochs_run"] == 5 and summary["best_epoch"] == 3
    assert summary["stopped"]["reason"] == "plateau" and summary["stopped"]["after_epoch"] == 5
    assert json.loads((tmp_path / "metrics.json").read_text())["stopped"]["reason"] == "plateau"
    again = fit(_fresh_model(), TrainConfig(**{**run, "epochs": 9}), tmp_path, META)  # more epochs allowed
    assert again["epochs_run"] == 5  # the rule still holds on the same history: nothing more is trained
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: {"n": 1, "accuracy": 0.5, "nll": 1.0})
    done = fit(_fresh_model(), TrainConfig(**{**run, "plateau_epochs": None}), tmp_path / "all", META)
    assert done["stopped"] == {"reason": "epochs", "after_epoch": 7, "elapsed_s": done["stopped"]["elapsed_s"]}


def test_the_plateau_schedule_divides_the_rate_at_each_plateau_then_stops(tmp_path, mnist_root, monkeypatch):
    from saccadelib import train
    from saccadelib.schedule import learning_rate, plateaus

    rows = lambda *accs: [{"val_accuracy": a} for a in accs]  # noqa: E731
    assert plateaus(rows(0.5, 0.6, 0.6, 0.6, 0.6, 0.6), 2, 0.0) == 2  # the count starts again after each
    assert plateaus(rows(0.5, 0.6, 0.6, 0.65, 0.6, 0.6), 2, 0.0) == 1  # against the best rise so far
    cfg = TrainConfig(**{**RUN, "lr": 1e-2, "lr_schedule": "plateau", "plateau_epochs": 2, "lr_decays": 2})
    history = rows(0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6)
    rates = [learning_rate(cfg, e, history) for e in (0, 3, 4, 5, 6, 8)]  # plateaus end at epochs 4 and 6
    assert rates == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3, 1e-4, 1e-4])

    accuracies = iter([0.3, 0.5, 0.5, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.9])  # plateaus end epochs 4, 7 and 9
    monkeypatch.setattr(train, "evaluate", lambda *a, **k: {"n": 1, "accuracy": next(accuracies), "nll": 1.0})
    run = {**RUN, "epochs": 20, "lr": 1e-2, "lr_schedule": "plateau", "plateau_epochs": 2, "plateau_margin": 0.01}
    summary = fit(_fresh_model(), TrainConfig(**run), tmp_path, META)
    assert summary["stopped"]["reason"] == "plateau" and summary["epochs_run"] == 9
    lrs = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "history.csv"))]
    assert lrs == pytest.approx([1e-2] * 4 + [1e-3] * 3 + [1e-4] * 2)
    with pytest.raises(ValueError, match="needs plateau_epochs"):
        TrainConfig(lr_schedule="plateau")


def test_a_frozen_policy_leaves_where_to_look_unchanged_while_the_reader_learns(tmp_path, mnist_root):
    from saccadelib import schedule

    model = _fresh_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, TrainConfig(**{**RUN, "epochs": 1, "policy_warmup_epochs": 1}), tmp_path, META)
    after = model.state_dict()
    reader = {f"classifier.{k}" for k, _ in model.classifier.named_parameters()}
    policy = [k for k, _ in model.named_parameters() if k not in reader]  # weights; batch norm's statistics move
    assert policy and all(torch.equal(before[k], after[k]) for k in policy)
    assert not all(torch.equal(before[k], after[k]) for k in reader)
    torch.manual_seed(11)
    frozen = VariationalSaccading(ModelConfig(**TINY, policy_lr_scale=0.0))  # the model's own rate per part
    fit(frozen, TrainConfig(**{**RUN, "epochs": 1}), tmp_path / "zero", META)
    assert all(torch.equal(before[k], _weights(tmp_path / "zero" / "last.pt")[k]) for k in policy)
    groups = schedule.parameter_groups(VariationalSaccading(ModelConfig(**TINY, reader_lr_scale=2.0)), TrainConfig(**RUN))
    assert [(g["part"], g["lr_scale"]) for g in groups] == [("reader", 2.0), ("policy", 1.0)]
    assert len(schedule.parameter_groups(_fresh_model(), TrainConfig(**RUN))) == 1  # no per-part rate: one group


def test_per_part_rates_on_a_model_without_parts_are_refused(tmp_path, mnist_root):
    from saccadelib.registry import build, config_for

    with pytest.raises(ValueError, match="no policy part"):
        fit(build("proxy_cnn", config_for("proxy_cnn", 19)), TrainConfig(**{**RUN, "policy_warmup_epochs": 1}),
            tmp_path, META)


def test_time_budget_stops_between_epochs(tmp_path, mnist_root):
    summary = fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 5, "time_budget_s": 1e-6}), tmp_path, META)
    assert summary["epochs_run"] == 1 and summary["stopped"]["reason"] == "time_budget"


def test_evaluate_counts_exactly(mnist_root):
    class Oracle(torch.nn.Module):
        def evaluate_batch(self, batch):
            logits = torch.nn.functional.one_hot(batch["label"], 19).float()
            logits[::2] = torch.roll(logits[::2], 1, -1)  # every other prediction wrong
            return {"logits": logits}

    result = evaluate(Oracle(), data.eval_set("sum", "val"), 300, limit=1000, per_canvas=True)
    assert result["n"] == 1000 and result["accuracy"] == 0.5
    assert result["correct"].tolist() == [False, True] * 500  # across batches of 300, in order


def test_overrides_are_typed_and_checked():
    from saccadelib.registry import config_for

    def model_config_for(task, overrides):
        return config_for("saccade", data.task_spec(task).n_classes, overrides)

    cfg = model_config_for("sum", {"glimpses": "2", "loss.kl_weight": "5", "window.mode": "fixed",
                                   "classifier_reads": "crops+state"})
    assert cfg.n_classes == 19 and cfg.glimpses == 2 and cfg.loss.kl_weight == 5.0
    assert cfg.window.mode == "fixed" and cfg.classifier_reads == "crops+state"
    assert apply_overrides(TrainConfig(), {"image_side": "2528"}).image_side == 2528
    with pytest.raises(ValueError, match="image_side must be at least 8"):
        TrainConfig(image_side=4)
    assert apply_overrides(TrainConfig(), {"clip_norm": "none"}).clip_norm is None
    # a string setting keeps the word "none" (the progress mode), an optional one reads it as None
    assert apply_overrides(TrainConfig(), {"progress": "none", "test_size": "none"}).progress == "none"
    assert apply_overrides(TrainConfig(test_size=5), {"test_size": "none"}).test_size is None
    with pytest.raises(ValueError, match="unknown setting 'glimpse'.*glimpses"):
        model_config_for("sum", {"glimpse": "2"})
    with pytest.raises(ValueError, match="setting loss.kl_weight: expected float, got 'abc'"):
        model_config_for("sum", {"loss.kl_weight": "abc"})
    with pytest.raises(ValueError, match="setting lr: expected float"):
        apply_overrides(TrainConfig(), {"lr": "abc"})
    with pytest.raises(ValueError, match="unknown setting 'window.mod'"):
        model_config_for("sum", {"window.mod": "fixed"})
    # out-of-range settings are refused when the config is built, naming the setting and the range
    for setting, value, message in (("epochs", "-1", "epochs must be at least 1, got -1"),
                                    ("val_size", "0", "val_size must be at least 1, got 0"),
                                    ("lr", "0", "lr must be positive, got 0.0"),
                                    ("test_size", "0", "test_size must be at least 1 .or unset., got 0"),
                                    ("clip_norm", "-1", "clip_norm must be positive .or unset., got -1.0"),
                                    ("canvas_side", "10", "canvas_side must be at least 28, got 10")):
        with pytest.raises(ValueError, match=message):
            apply_overrides(TrainConfig(), {setting: value})


def test_cosine_schedule_and_its_resume(tmp_path, mnist_root):
    from saccadelib.schedule import learning_rate

    cfg = TrainConfig(**{**RUN, "lr": 1e-2, "lr_schedule": "cosine", "epochs": 4})
    rates = [learning_rate(cfg, e) for e in range(4)]
    assert rates[0] == 1e-2 and rates == sorted(rates, reverse=True) and rates[-1] > 1e-4
    fit(_fresh_model(), TrainConfig(**{**RUN, "lr_schedule": "cosine"}), tmp_path / "straight", META)
    fit(_fresh_model(), TrainConfig(**{**RUN, "lr_schedule": "cosine", "epochs": 1}), tmp_path / "other", META)
    with pytest.raises(ValueError, match="written by another model"):  # the schedule would change
        fit(_fresh_model(), TrainConfig(**{**RUN, "lr_schedule": "cosine"}), tmp_path / "other", META)
    rows = list(csv.DictReader(open(tmp_path / "straight" / "history.csv")))
    assert float(rows[0]["lr"]) > float(rows[1]["lr"])


def test_record_run_copies_the_small_outputs_and_the_command(tmp_path, mnist_root):
    from saccadelib.runinfo import record_run

    with pytest.raises(FileNotFoundError, match="has not finished"):
        record_run(tmp_path / "run", tmp_path / "record", ["python"])
    fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 1}), tmp_path / "run", META)
    record_run(tmp_path / "run", tmp_path / "record", ["python", "-m", "saccadelib", "train", "--set", "a=b c"])
    assert sorted(p.name for p in (tmp_path / "record").iterdir()) == ["command.txt", "config.json", "history.csv",
                                                                       "metrics.json"]
    assert (tmp_path / "record" / "command.txt").read_text().splitlines()[1] == \
        "python -m saccadelib train --set 'a=b c'"
    assert (tmp_path / "record" / "metrics.json").read_text() == (tmp_path / "run" / "metrics.json").read_text()


def test_device_and_precision_are_checked_and_recorded(tmp_path, mnist_root):
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        TrainConfig(device="gpu")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        TrainConfig(precision="fp16")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no GPU"):
            fit(_fresh_model(), TrainConfig(**{**RUN, "device": "cuda"}), tmp_path / "cuda", META)
    # "auto" takes the GPU when there is one
    summary = fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 1, "device": "auto", "precision": "bf16",
                                                 "test": True, "test_size": 150}), tmp_path / "auto", META)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert summary["run"]["device"] == expected and summary["test"]["n"] == 150
    config = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert config["train"]["device"] == "auto" and config["run"]["device"] == expected


def test_learning_curve_reads_a_runs_history(tmp_path, mnist_root):
    from saccadelib.plots import learning_curve, read_history

    fit(_fresh_model(), TrainConfig(**RUN), tmp_path / "run", META)
    rows = read_history(tmp_path / "run" / "history.csv")
    assert [r["epoch"] for r in rows] == [1.0, 2.0] and len(rows[0]["val_hit_rate"]) == TINY["glimpses"]
    learning_curve(tmp_path / "run" / "history.csv", tmp_path / "curve.png", "tiny")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,val_accuracy\n")
    with pytest.raises(ValueError, match="holds no epochs"):
        read_history(empty)


def test_execution_settings_keep_the_loss_within_tolerance(mnist_root):
    """channels_last is a layout (same loss to rounding); bf16 autocast rounds matmuls and convs to 8 bits
    of mantissa (within 2% here); both train."""
    from saccadelib.evaluation import autocast
    from saccadelib.train import prepare_model

    batch = data.make_two_digit("sum", "train", 32, 0)
    losses = {}
    for name, settings in {"fp32": {"channels_last": False}, "nhwc": {"channels_last": True},
                           "bf16": {"precision": "bf16"}}.items():
        cfg = TrainConfig(**settings)
        model = prepare_model(_fresh_model(), cfg, torch.device("cpu"))
        torch.manual_seed(0)
        with autocast(torch.device("cpu"), cfg.precision):
            loss, _ = model.training_loss(batch)
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        losses[name] = loss.item()
    assert losses["nhwc"] == pytest.approx(losses["fp32"], rel=1e-4)
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=2e-2)


def test_settings_added_later_leave_a_runs_identity_alone_at_their_neutral_value():
    from saccadelib.config import to_dict
    from saccadelib.settings import model_identity

    now = {"name": "saccade", "config": to_dict(ModelConfig(**TINY))}
    before = {"name": "saccade", "config": {k: v for k, v in now["config"].items()
                                            if k not in ("reader_lr_scale", "policy_lr_scale")}}
    assert model_identity(now) == model_identity(before)  # a checkpoint written before these existed resumes
    faster = {"name": "saccade", "config": to_dict(ModelConfig(**TINY, reader_lr_scale=2.0))}
    assert model_identity(faster) != model_identity(before)


def test_adamw_decays_the_weights_apart_from_the_gradient(tmp_path, mnist_root):
    from saccadelib.settings import resumable_settings
    from saccadelib.train import OPTIMIZER_CLASSES
    from saccadelib.train_config import OPTIMIZERS

    assert set(OPTIMIZER_CLASSES) == set(OPTIMIZERS)  # every optimizer a config accepts, the loop builds

    weights = {}
    for name, optimizer, decay in (("adam", "adam", 0.0), ("adamw_plain", "adamw", 0.0), ("adamw", "adamw", 10.0),
                                     ("adam_l2", "adam", 10.0)):
        fit(_fresh_model(), TrainConfig(**{**RUN, "epochs": 1, "optimizer": optimizer, "weight_decay": decay}),
            tmp_path / name, META)
        weights[name] = _weights(tmp_path / name / "last.pt")

    def squared_norm(state):
        return sum(float(v.norm()) ** 2 for k, v in state.items() if v.is_floating_point() and "running" not in k)

    # without decay AdamW takes Adam's steps; with it the weights shrink towards zero as they learn
    assert all(torch.allclose(weights["adam"][k], weights["adamw_plain"][k], atol=1e-6) for k in weights["adam"])
    assert squared_norm(weights["adamw"]) < 0.99 * squared_norm(weights["adamw_plain"])
    # and that decay is AdamW's own, not Adam's L2 term in the gradient
    assert not all(torch.allclose(weights["adamw"][k], weights["adam_l2"][k], atol=1e-4) for k in weights["adamw"])
    # Adam stays out of a run's identity (runs made before the setting existed keep their names); AdamW names it
    assert "optimizer" not in resumable_settings(TrainConfig(**RUN))
    assert resumable_settings(TrainConfig(**RUN, optimizer="adamw"))["optimizer"] == "adamw"
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'; valid: adam, adamw"):
        TrainConfig(**RUN, optimizer="sgd")
