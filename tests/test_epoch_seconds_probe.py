"""scripts/probes/epoch_seconds.py: the seconds per epoch that turn the cpu profile's minutes into epochs."""
import importlib.util
import json

import pandas as pd
import pytest

from saccadelib.paths import REPO_ROOT


@pytest.fixture(scope="module")
def probe():
    spec = importlib.util.spec_from_file_location("epoch_seconds", REPO_ROOT / "scripts/probes/epoch_seconds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_epoch_seconds_probe_reads_finished_runs(probe, tmp_path):
    """scripts/probes/epoch_seconds.py --from-runs: mean seconds over every epoch of finished cpu runs,
    scaled to 20k training and 2k validation canvases; unfinished and GPU runs do not count."""

    def run(name, train_size, rows, device="cpu", finished=True, val_size=2000, image_side=None):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps({
            "train": {"task": "identification", "train_size": train_size, "val_size": val_size, "threads": 2,
                      "device": device, "image_side": image_side},
            "model": {"name": "saccade", "config": {}}}))
        pd.DataFrame(rows).to_csv(folder / "history.csv", index=False)
        if finished:
            (folder / "metrics.json").write_text("{}")
        return folder

    runs = [run("full", 20_000, {"train_s": [50.0, 60.0], "val_s": [3.0, 3.0]}),
            run("quarter", 5_000, {"train_s": [14.0, 16.0]}, val_size=1000),  # older: no val_s column
            run("large", 5_000, {"train_s": [50.0], "val_s": [5.0]}, val_size=1000, image_side=2528),
            run("gpu", 20_000, {"train_s": [1.0], "val_s": [0.1]}, device="cuda"),
            run("unfinished", 20_000, {"train_s": [999.0], "val_s": [99.0]}, finished=False)]
    measured = probe.from_runs(runs)
    assert set(measured) == {("identification", 100, "saccade"), ("identification", 2528, "saccade")}
    small = measured[("identification", 100, "saccade")]
    assert small["train"] == [50.0, 60.0, 56.0, 64.0] and small["val"] == [3.0, 3.0]
    assert measured[("identification", 2528, "saccade")] == {"train": [200.0], "val": [10.0],
                                                              "runs": [str(runs[2])]}


def test_epoch_seconds_probe_measures_again_when_its_epochs_disagree(probe):
    """A probe whose two epochs disagree (another job took the CPU) is probed again and recorded as
    discarded; one that never steadies stops with a message instead of sizing a budget from it."""
    answers = iter([[6.58, 11.59], [6.6, 6.8]])
    assert probe.steady_probe(lambda: next(answers)) == ([6.6, 6.8], [[6.58, 11.59]])
    assert probe.steady_probe(lambda: [7.0, 7.0]) == ([7.0, 7.0], [])
    with pytest.raises(RuntimeError, match="machine is busy"):
        probe.steady_probe(lambda: [5.0, 10.0], tries=2)


def test_epoch_seconds_probe_measures_every_06_run_and_ips_with_its_papers_encoder(probe):
    """06's probes are its runs by run name, and IPS with the paper's encoder beside them on fewer canvases,
    so that what that encoder costs on our cores is measured, not assumed."""
    from saccadelib import study

    config = study.resolution_study("smoke")
    probes = probe.resolution_probes(config)
    names = {(task, name): canvases for task, _, name, _, _, _, canvases in probes}
    runs = {(s.task, s.label.split("/")[1]) for s in study.resolution_runs(config)}
    assert runs <= set(names) and all(names[run] == probe.RESOLUTION_CANVASES for run in runs)
    paper = {key: canvases for key, canvases in names.items() if key[1] == "ips_resnet18_2stages"}
    assert set(paper) == {(task, "ips_resnet18_2stages") for task in config.tasks}
    assert set(paper.values()) == {probe.PAPER_IPS_CANVASES}
    settings = {name: s for _, _, name, _, s, _, _ in probes}
    assert settings["ips_resnet18_2stages"] == {"encoder": "resnet18_2stages"} and settings["ips_small"] == {"encoder": "small"}


def test_epoch_seconds_probe_puts_a_slower_day_on_the_stored_scale(probe):
    """--reference: stored pairs measured again give stored / measured per pair, training and validation
    apart; their geometric mean scales a new pair, whose raw seconds and the ratios are kept beside it."""
    stored = [{"task": "sum", "canvas": 100, "model": "saccade", "seconds_per_20k": 17.2, "val_seconds_per_2k": 0.86},
              {"task": "sum", "canvas": 100, "model": "proxy_cnn", "seconds_per_20k": 4.8, "val_seconds_per_2k": 0.26}]
    again = [{"task": "sum", "canvas": 100, "model": "saccade", "seconds_per_20k": 34.4, "val_seconds_per_2k": 1.72},
             {"task": "sum", "canvas": 100, "model": "proxy_cnn", "seconds_per_20k": 19.2, "val_seconds_per_2k": 0.52}]
    scale = probe.speed_ratios(stored, again)
    assert [r["train_ratio"] for r in scale["references"]] == [0.5, 0.25]
    assert scale["train_ratio"] == pytest.approx(0.354, abs=1e-3)  # sqrt(0.5 · 0.25), not their mean 0.375
    assert scale["val_ratio"] == 0.5 and scale["train_spread"] == [0.25, 0.5]
    new = probe.scaled({"task": "megapixel_majority", "canvas": 1500, "model": "ips_small",
                        "seconds_per_20k": 200.0, "val_seconds_per_2k": 10.0}, scale)
    assert (new["seconds_per_20k"], new["val_seconds_per_2k"]) == (70.8, 5.0)  # 200 × the recorded 0.354
    assert (new["measured_seconds_per_20k"], new["measured_val_seconds_per_2k"]) == (200.0, 10.0)
    with pytest.raises(SystemExit, match="no stored entry"):
        probe.speed_ratios(stored[:1], again)
    with pytest.raises(SystemExit, match="TASK:SIDE:NAME"):
        probe.parse_reference("sum:saccade")
    assert probe.parse_reference("megapixel_majority:1500:saccade_cells") == ("megapixel_majority", 1500, "saccade_cells")


def test_epoch_seconds_probe_refuses_a_reference_it_would_overwrite_or_runs_of_other_days(probe, monkeypatch, tmp_path):
    """A reference pair keeps its stored entry, so it may not also be among the pairs measured; and scaling
    is for today's measurements, so it does not mix with --from-runs. Both stop before anything is measured."""
    out = str(tmp_path / "epoch_seconds.json")
    monkeypatch.setattr("sys.argv", ["epoch_seconds.py", "--only", "sum", "--models", "saccade", "--sides", "100",
                                     "--reference", "sum:100:saccade", "--out", out])
    with pytest.raises(SystemExit, match="must keep its stored entry"):
        probe.main()
    monkeypatch.setattr("sys.argv", ["epoch_seconds.py", "--only", "identification", "--reference", "sum:100:saccade",
                                     "--from-runs", str(tmp_path), "--out", out])
    with pytest.raises(SystemExit, match="give one of them"):
        probe.main()
