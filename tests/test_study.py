"""The study's configs, runs, noisy proxy, slider callback and Table 1 (saccadelib.study, saccadelib.plots)."""
import dataclasses
import json
import re

import pandas as pd
import pytest
import torch

from saccadelib import study
from saccadelib.model import ModelConfig, VariationalSaccading
from saccadelib.draws import CanvasDraws
from saccadelib.sampler import noisy_proxy
from saccadelib.paths import REPO_ROOT
from saccadelib.settings import Resolved
from saccadelib.train_config import TrainConfig


# ------------------------------------------------------------------------------------ configs

def test_cpu_profile_sizes_epochs_from_the_measured_epoch_times(monkeypatch):
    monkeypatch.setitem(study.experiments.EPOCH_SECONDS, ("sum", 100, "saccade"), 34.0)
    monkeypatch.setitem(study.experiments.VAL_SECONDS, ("sum", 100, "saccade"), 2.0)
    monkeypatch.setitem(study.experiments.EPOCH_SECONDS, ("sum", 100, "resnet18"), 292.0)
    monkeypatch.setitem(study.experiments.VAL_SECONDS, ("sum", 100, "resnet18"), 13.0)
    config = study.task_study("sum", "cpu", budget_min=10, models=",".join(study.TaskStudy.models))
    assert config.training.budget_min == 10.0
    runs = {r.model: r for r in study.task_runs(config)}
    assert set(runs) == set(study.TaskStudy.models) and {"oracle_glimpses", "grid_glimpses"} <= set(runs)
    # the budget pays for validation too: 10 min / (34 + 2) s per epoch = 16.7 → 17 epochs (nearest);
    # ResNet-18 at 292 + 13 s: 1.97 → 2, not the 1 that flooring would leave it
    assert runs["saccade"].train_overrides["epochs"] == 17
    assert runs["resnet18"].train_overrides["epochs"] == 2
    # the epochs are the budget; the time cap only guards against a machine over three times as slow
    assert runs["saccade"].train_overrides["time_budget_s"] == 1800
    assert runs["saccade"].model_overrides["glimpses"] == 4 and runs["resnet18"].model_overrides == {}  # the recipe
    # ten times the validation canvases: only as many as a tenth of the epoch pays for (3.4 s of 2 s per
    # 2,000: 3,400), and they take their share of the budget: 600 / (34 + 3.4) s = 16.04 → 16
    (larger,) = study.task_runs(study.task_study("sum", "cpu", budget_min=10, models="saccade", val_size=20_000))
    assert larger.train_overrides["val_size"] == 3400 and larger.train_overrides["epochs"] == 16


def test_cpu_profile_seeds_the_claim_runs_and_fits_in_six_hours():
    """Three seeds where the study's claims are (identification 100², Megapixel MNIST: our model, random
    windows, the proxy-only CNN), one elsewhere, and the planned training and validation leave 40 minutes
    of the six for test scoring, the notebooks and the benchmarks (25 minutes in the last render,
    results/profile_time.md)."""
    seeds = lambda specs: {s.label: sorted(x.seed for x in specs if x.label == s.label) for s in specs}  # noqa: E731
    identification = seeds(study.task_runs(study.task_study("identification", "cpu")))
    assert identification["saccade"] == identification["random_glimpses"] == identification["proxy_cnn"] == [0, 1, 2]
    assert identification["oracle_glimpses"] == [0] and "resnet18" not in identification
    assert all(v == [0] for v in seeds(study.task_runs(study.task_study("sum", "cpu"))).values())
    resolution = study.resolution_runs(study.resolution_study("cpu"))
    by_label = seeds(resolution)
    assert by_label["megapixel/saccade_cells"] == by_label["megapixel/proxy_cnn"] == [0, 1, 2]
    assert by_label["id1000/saccade_cells"] == [0] and by_label["megapixel/proxy_cnn_32"] == [0]
    assert by_label["megapixel/saccade"] == by_label["id1000/saccade"] == [0]  # the paper's method, beside it
    # each task's own budget: native-size identification is solved sooner, so it gets fewer minutes
    epochs = {s.label: s.train_overrides["epochs"] for s in resolution}
    assert epochs["id1000/saccade_cells"] < epochs["megapixel/saccade_cells"]
    # a budget given by hand applies to both tasks
    given = {s.label: s for s in study.resolution_runs(study.resolution_study("cpu", budget_min=5))}
    assert (given["id1000/saccade_cells"].train_overrides["time_budget_s"]
            == given["megapixel/saccade_cells"].train_overrides["time_budget_s"] == 900)
    plan = study.progress.planned_minutes("cpu").set_index("experiment")
    assert plan.loc["total", "planned_min"] <= 320, plan
    assert plan.loc["02_two_digit_identification_100", "runs"] == 3 * 3 + 4
    assert plan.loc["total", "planned_min"] == pytest.approx(plan["planned_min"].drop("total").sum(), abs=0.2)


def test_measured_epoch_times_cover_every_cpu_profile_run(tmp_path):
    """The committed probe file (scripts/probes/epoch_seconds.py) sizes every run the cpu profile trains."""
    tasks = [study.task_study("sum", "cpu"), study.task_study("identification", "cpu"),
             study.task_study("identification", "cpu", image_side=2528)]
    needed = {(s.task, s.image_side, r.model) for s in tasks for r in study.task_runs(s)}
    needed |= {("identification", 100, r.model) for r in study.noise_runs(study.noise_study("cpu"))}
    assert needed <= set(study.experiments.EPOCH_SECONDS), needed - set(study.experiments.EPOCH_SECONDS)
    assert needed <= set(study.experiments.VAL_SECONDS), needed - set(study.experiments.VAL_SECONDS)
    probe = {"probes": [{"task": "sum", "canvas": 100, "model": "ram", "seconds_per_20k": 11.6,
                         "val_seconds_per_2k": 1.1}, {"task": "sum", "canvas": 100, "model": "saccade",
                                                      "seconds_per_20k": 23.0}]}  # an older file: no validation
    (tmp_path / "e.json").write_text(json.dumps(probe))
    assert study.experiments.load_calibration(tmp_path / "e.json") == {("sum", 100, "ram"): 11.6, ("sum", 100, "saccade"): 23.0}
    assert study.experiments.load_calibration(tmp_path / "e.json", "val_seconds_per_2k") == {("sum", 100, "ram"): 1.1}
    assert study.experiments.load_calibration(tmp_path / "missing.json") == {}


def test_quarter_size_epochs_get_nearly_four_times_the_epochs(monkeypatch):
    monkeypatch.setitem(study.experiments.EPOCH_SECONDS, ("identification", 100, "saccade"), 40.0)
    monkeypatch.setitem(study.experiments.VAL_SECONDS, ("identification", 100, "saccade"), 2.0)
    quarter = study.Training(budget_min=10, train={"train_size": 5000})
    full = study.Training(budget_min=10)
    # each epoch is validated (on at most a tenth of its time), so a quarter-size epoch costs more than a
    # quarter: 600/(10+1) against 600/(40+2)
    assert study.runs.epochs_for("identification", 100, "saccade", quarter) == 55
    assert study.runs.epochs_for("identification", 100, "saccade", full) == 14


def test_validation_costs_at_most_a_tenth_of_each_epoch():
    from saccadelib.study.experiments import EPOCH_SECONDS, VAL_SECONDS

    configs = [study.task_study(task, "cpu") for task in ("sum", "identification")]
    configs.append(study.task_study("identification", "cpu", image_side=2528))
    sizes = {}
    for config in configs:
        for run in study.task_runs(config):
            key = (config.task, config.image_side, run.model)
            train = run.train_overrides
            val_s = VAL_SECONDS[key] * train["val_size"] / 2000
            assert val_s <= 0.1 * EPOCH_SECONDS[key] * train["train_size"] / 20_000 or train["val_size"] == 100
            assert train["val_size"] % 100 == 0 and train["val_size"] <= 2000
            sizes[key] = train["val_size"]
    assert sizes[("identification", 100, "saccade")] == 2000 and sizes[("identification", 2528, "saccade")] < 2000
    assert study.task_runs(study.task_study("sum", "smoke"))[0].train_overrides["val_size"] == 200  # fixed epochs


def test_large_canvas_reads_the_lazy_upsample_in_64px_crops():
    config = study.task_study("identification", "cpu", image_side=2528)
    (run,) = study.task_runs(config)
    assert run.train_overrides["image_side"] == 2528 and run.model_overrides["crop_size"] == 64
    with pytest.raises(ValueError, match="05_efficiency"):
        study.task_study("identification", "cpu", image_side=2528, models="resnet18")


def test_overrides_by_name_strings_and_lists():
    config = study.task_study("identification", "smoke", seeds="0, 2", models="saccade,ram", budget_min=None,
                              device="", lr=3e-3)
    assert config.training.seeds == (0, 2) and config.models == ("saccade", "ram")
    assert config.training.config().lr == 3e-3 and config.training.config().device == "cpu"  # "" keeps the profile's
    assert config.training.train["lr"] == 3e-3 and "device" not in config.training.train
    assert len(study.task_runs(config)) == 4
    # a budget given to a fixed-epoch profile replaces its epochs, and the other way round
    assert study.task_study("sum", "smoke", budget_min=5).training.epochs is None
    assert study.task_study("sum", "cpu", epochs=7).training.budget_min is None
    with pytest.raises(ValueError, match="unknown setting 'sedes'"):
        study.task_study("sum", "cpu", sedes="1")
    with pytest.raises(ValueError, match="unknown profile"):
        study.task_study("sum", "laptop")
    with pytest.raises(ValueError, match="either budget_min"):
        study.Training(budget_min=5, epochs=3)
    with pytest.raises(ValueError, match="unknown setting 'bach_size' for TrainConfig"):
        study.Training(train={"bach_size": 3})
    with pytest.raises(ValueError, match="no measured epoch time"):
        study.runs.epochs_for("sum", 100, "resnet18_tiles", study.Training())


def test_run_folders_change_with_any_setting_and_only_then():
    a = study.task_runs(study.task_study("sum", "cpu"))
    b = study.task_runs(study.task_study("sum", "cpu"))
    c = study.task_runs(study.task_study("sum", "cpu", budget_min=25))
    d = study.task_runs(study.task_study("sum", "cpu", seeds="1"))
    assert [r.folder() for r in a] == [r.folder() for r in b]
    assert all(x.folder() != y.folder() for x, y in zip(a, c))
    assert all(x.folder() != y.folder() for x, y in zip(a, d))



def test_plateau_run_folders_keep_their_names():
    # A plateau run trains for hours over several sittings and resumes from its folder, which is named by a
    # hash of its resolved settings: a change to defaults that renames these folders restarts every run. A
    # setting added later needs its neutral value in saccadelib.settings.NEUTRAL_SETTINGS to
    # leave them alone; a deliberate change of a plateau run's settings updates this list.
    folders = {exp: [spec.folder() for spec in specs] for exp, specs in study.runs.experiment_runs("plateau").items()}
    assert folders == {
        "01_two_digit_sum": ["saccade_s0_86aee8ce90", "ram_s0_22a6287d58", "oracle_glimpses_s0_238082b004",
                             "proxy_cnn_s0_0322983b6a"],
        "02_two_digit_identification_100": ["saccade_s0_c040d4aa5f", "saccade_s1_fdcad0de30", "saccade_s2_74c2bd4b1f",
                                            "ram_s0_e7e2b71823", "oracle_glimpses_s0_de7cbce342", "proxy_cnn_s0_db011dde48"],
        "02_two_digit_identification_2528": ["saccade_s0_e9761da481"],
    }


def test_every_committed_run_folder_is_named_by_its_recorded_settings():
    # A run folder's name ends in the hash of its settings' identity (settings.Resolved.key): recomputed from
    # the settings each committed run recorded (its config.json), today's code must give the same name,
    # whatever the study plans now, or a resumed run would start over and a committed one not read back.
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    checked = 0
    for folder in sorted(REPO_ROOT.glob("results/**/runs/*")):
        named = re.fullmatch(r".+_s\d+_([0-9a-f]{10})", folder.name)
        if not named:
            continue
        recorded = json.loads((folder / "config.json").read_text())
        assert set(recorded["train"]) <= fields, (folder, set(recorded["train"]) - fields)
        train = TrainConfig(**recorded["train"])
        assert Resolved(None, recorded["model"], train).key() == named.group(1), folder
        checked += 1
    assert checked >= 40  # the cpu profile's and the plateau profile's


def test_the_cpu_profile_plans_exactly_the_committed_run_folders():
    # The committed cpu results are what the cpu profile trains today: every run folder under
    # results/<experiment>/runs is one it plans, and the reverse. A deliberate change of a run's settings
    # fails this until the profile is rendered again with it.
    planned = {exp: {spec.folder() for spec in specs} for exp, specs in study.runs.experiment_runs("cpu").items()}
    checked = 0
    for runs in sorted(REPO_ROOT.glob("results/0*/runs")):
        committed = {p.name for p in runs.iterdir() if re.fullmatch(r".+_s\d+_[0-9a-f]{10}", p.name)}
        if committed:
            assert committed == planned[runs.parent.name], runs.parent.name
            checked += len(committed)
    assert checked >= 30

def test_noise_study_levels_follow_study_md():
    config = study.noise_study("paper")
    assert config.levels() == [(0.0, 1.0), (0.1, 1.0), (0.25, 1.0), (0.5, 1.0), (1.0, 1.0),
                               (0.0, 0.5), (0.0, 0.25), (0.0, 0.1)]
    runs = study.noise_runs(study.noise_study("paper", seeds="0"))
    assert [(r.model_overrides["proxy_noise"], r.model_overrides["proxy_keep"]) for r in runs] == config.levels()
    # the cpu profile trains the noise-free level and the two strongest noises, three seeds each
    cpu = study.noise_runs(study.noise_study("cpu"))
    assert [(r.model_overrides["proxy_noise"], r.model_overrides["proxy_keep"], r.seed) for r in cpu[::3]] == \
        [(0.0, 1.0, 0), (1.0, 1.0, 0), (0.0, 0.1, 0)] and len(cpu) == 9
    assert len({r.folder() for r in runs}) == len(runs)


# -------------------------------------------------------------------------------- noisy proxy

def test_noisy_proxy_knobs():
    proxy = torch.full((4, 1, 32, 32), 0.5)
    assert torch.equal(noisy_proxy(proxy), proxy)
    noisy = noisy_proxy(proxy, sigma=1.0, draws=CanvasDraws(torch.arange(len(proxy))))
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, proxy)
    assert noisy.std() > 0.3  # σ = 1 around 0.5, clipped: far from the clean proxy
    kept = noisy_proxy(torch.ones(8, 3, 32, 32), keep=0.25, draws=CanvasDraws(torch.arange(8)))
    assert kept.mean() == pytest.approx(0.25, abs=0.02)
    assert torch.equal(kept[:, 0], kept[:, 2])  # one mask per pixel for all channels
    for bad in ({"sigma": -0.1}, {"keep": 0.0}, {"keep": 1.5}):
        with pytest.raises(ValueError, match="proxy noise"):
            noisy_proxy(proxy, **bad)


def test_model_shows_the_noisy_proxy_and_never_noises_the_crops():
    torch.manual_seed(0)
    images = torch.rand(3, 1, 100, 100)
    clean = VariationalSaccading(ModelConfig(n_classes=5, glimpses=2, policy="grid")).eval()
    noisy = VariationalSaccading(ModelConfig(n_classes=5, glimpses=2, policy="grid", proxy_noise=0.5,
                                             proxy_keep=0.5)).eval()
    a, b, b2 = clean(images), noisy(images), noisy(images)
    assert not torch.equal(a.proxy, b.proxy)
    assert torch.equal(b.proxy, b2.proxy)  # evaluation: a fixed noise stream, so scores repeat
    assert torch.equal(a.crops, b.crops)
    noisy.train()
    assert not torch.equal(noisy(images).proxy, noisy(images).proxy)  # training: fresh noise
    with pytest.raises(ValueError, match="proxy_noise"):
        ModelConfig(proxy_keep=0)


# ------------------------------------------------------------------------- runs and results

def tiny_specs(tmp_path):
    config = study.task_study("sum", "smoke", models="proxy_cnn,saccade", train_size=64, batch_size=32,
                              val_size=50, test_size=50)
    return config, study.task_runs(config)


def test_train_all_trains_once_then_reuses_and_collects(tmp_path):
    config, specs = tiny_specs(tmp_path)
    lines = []
    first = study.train_all(specs, tmp_path / "runs", log=lines.append)
    assert all("training" in line for line in lines)
    lines.clear()
    again = study.train_all(specs, tmp_path / "runs", log=lines.append)
    assert all("finished earlier" in line for line in lines)
    assert [s["test"]["accuracy"] for s in first] == [s["test"]["accuracy"] for s in again]
    frame = study.collect(specs, tmp_path / "runs", tmp_path / "out")
    assert list(frame["label"]) == ["proxy_cnn", "saccade"]
    assert frame["test_accuracy"].between(0, 1).all() and (frame["test_n"] == 50).all()
    assert frame["parameters"].gt(1000).all() and frame["epochs_run"].eq(1).all()
    assert len(json.loads(frame.loc[1, "hit_rate"])) == 4 and frame.loc[0, "hit_rate"] == ""  # T=4; no glimpses
    # the glimpse model's windows as measured on the test set; none for the proxy CNN
    assert 0.2 * 100 <= frame.loc[1, "window_side_px"] <= 0.45 * 100 and pd.isna(frame.loc[0, "window_side_px"])
    assert frame.loc[1, "window_detail"] == pytest.approx(32 / frame.loc[1, "window_side_px"], rel=0.2)
    assert len(json.loads(frame.loc[1, "window_side_px_per_step"])) == 4
    assert pd.read_csv(tmp_path / "out" / "runs.csv").shape == frame.shape
    assert (tmp_path / "out" / "runs" / specs[1].folder() / "history.csv").exists()
    table = study.summarize(frame)
    assert table["seeds"].tolist() == [1, 1]
    # scored again by digit overlap, every run reads its test canvases as it did when it finished
    overlap = study.accuracy_by_digit_overlap(specs, tmp_path / "runs", config.evaluation_set("test"))
    every = overlap[overlap["overlap"] == "all"]
    assert every["accuracy"].tolist() == frame["test_accuracy"].tolist() and (every["canvases"] == 50).all()
    assert overlap[overlap["overlap"] != "all"].groupby("label")["canvases"].sum().eq(50).all()


def test_accuracy_by_digit_overlap_files_each_canvas_in_its_band(tmp_path, monkeypatch):
    """A reader right exactly where the digits are apart scores 1 there, 0 in every overlapping band."""
    from saccadelib import inference
    from saccadelib.datasets.twodigit import digit_overlap

    class ReadsOnlyDigitsApart(torch.nn.Module):
        def evaluate_batch(self, batch):
            logits = torch.nn.functional.one_hot(batch["label"], 19).float()
            overlapping = digit_overlap(batch["boxes"]) > 0
            logits[overlapping] = torch.roll(logits[overlapping], 1, -1)
            return {"logits": logits}

    monkeypatch.setattr(inference, "load", lambda path: ReadsOnlyDigitsApart())
    config, specs = tiny_specs(tmp_path)
    test = config.evaluation_set("test")
    scores = study.accuracy_by_digit_overlap(specs[:1], tmp_path / "runs", test).set_index("overlap")
    apart = (digit_overlap(test.boxes[:50]) == 0).sum().item()
    assert 0 < apart < 50 and scores.loc["apart", "canvases"] == apart
    assert scores.loc["all", "accuracy"] == apart / 50 and scores.loc["apart", "accuracy"] == 1.0
    assert scores.drop(["all", "apart"]).query("canvases > 0")["accuracy"].eq(0).all()
    summary = study.overlap_summary(scores.reset_index())
    assert summary.loc[0, f"apart ({apart * 2:.0f}% of canvases)"] == "100.0"


def test_a_changed_default_trains_a_new_run_and_leaves_the_old_one(tmp_path, monkeypatch):
    """Run folders hash the resolved settings, defaults included: no run trained under other defaults is
    reused, and nothing already trained is deleted."""
    from saccadelib import registry

    _, specs = tiny_specs(tmp_path)
    specs = specs[:1]  # the proxy CNN run
    study.train_all(specs, tmp_path / "runs")
    old = study.run_folder(tmp_path / "runs", specs[0])
    entry = registry.REGISTRY["proxy_cnn"]
    monkeypatch.setitem(registry.REGISTRY, "proxy_cnn", registry.ModelSpec(entry.config, entry.build,
                                                                           {"features": 64}, entry.about))
    new = study.run_folder(tmp_path / "runs", specs[0])
    assert new != old
    lines = []
    study.train_all(specs, tmp_path / "runs", log=lines.append)
    assert "training" in lines[0] and (old / "metrics.json").exists() and (new / "metrics.json").exists()
    assert json.loads((new / "config.json").read_text())["model"]["config"]["features"] == 64
