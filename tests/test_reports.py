"""Reading the study's runs back: means over seeds, the noise sliders, Table 1, the profile's time and the
cost curves, the runner's clocks."""
import json

import pandas as pd
import pytest
import torch

from saccadelib import study
from saccadelib.schedule import curve_slope
from saccadelib.model import ModelConfig, VariationalSaccading


def test_summarize_gives_mean_and_std_over_seeds():
    frame = pd.DataFrame({"label": ["a", "a", "a", "b"], "test_accuracy": [0.8, 0.9, 1.0, 0.5],
                          "train_min": [1, 1, 1, 2], "epochs_run": [3, 3, 3, 4], "s_per_epoch": [1, 1, 1, 1],
                          "parameters": [10, 10, 10, 20]})
    table = study.summarize(frame)
    assert table.loc[0, "test_exact_match_%"] == "90.0 ± 10.0" and table.loc[1, "test_exact_match_%"] == "50.0"


def test_label_table_puts_each_models_labels_side_by_side():
    frame = pd.DataFrame({"label": ["megapixel/saccade_cells", "megapixel/ips_small", "megapixel_max/saccade_cells",
                                    "megapixel_multi/saccade_cells", "megapixel_multi/ips_small", "id1000/saccade_cells"],
                          "test_accuracy": [0.9, 0.8, 0.7, 0.6, 0.5, 0.1], "train_min": 1, "epochs_run": 1,
                          "s_per_epoch": 1, "parameters": 1})
    config = study.ResolutionStudy(labels=("max", "multi"), profile="smoke")
    table = study.label_table(study.summarize(frame), config).set_index("model")
    assert table.loc["saccade_cells"].tolist() == ["90.0", "70.0", "60.0"]
    assert table.loc["ips_small", "majority"] == "80.0" and pd.isna(table.loc["ips_small", "max"])  # not trained on max


def test_policy_over_prior_sets_the_learnt_policy_beside_its_prior_per_data_set():
    labels = ["megapixel/saccade_cells", "megapixel/saccade_cells", "megapixel/salient_glimpses",
              "megapixel/oracle_glimpses", "megapixel_blobs/saccade_cells", "megapixel_blobs/salient_glimpses",
              "id1000/saccade_cells"]
    frame = pd.DataFrame({"label": labels, "test_accuracy": [0.9, 0.8, 0.7, 0.99, 0.6, 0.2, 0.5], "train_min": 1,
                          "epochs_run": 1, "s_per_epoch": 1, "parameters": 1,
                          "windows_on_digit": [0.8, 0.6, 0.5, 1.0, 0.6, 0.1, 0.3],
                          "windows_on_decoy": [None, None, None, None, 0.3, 0.9, None]})
    config = study.ResolutionStudy(tasks=("megapixel_majority", "megapixel_blobs_majority", "identification"))
    table = study.policy_over_prior(study.summarize(frame), config).set_index("data set")
    assert list(table.index) == ["megapixel", "megapixel_blobs"]  # id1000 has no prior run here
    plain, blobs = table.loc["megapixel"], table.loc["megapixel_blobs"]
    assert plain["learnt_%"] == "85.0 ± 7.1" and plain["prior_%"] == "70.0" and plain["learnt_minus_prior_points"] == 15.0
    assert plain["oracle_%"] == "99.0" and plain["random_%"] is None
    assert (plain["learnt_on_digit_%"], plain["prior_on_digit_%"]) == (70.0, 50.0) and pd.isna(plain["learnt_on_decoy_%"])
    assert blobs["learnt_minus_prior_points"] == 40.0 and (blobs["learnt_on_decoy_%"], blobs["prior_on_decoy_%"]) == (30.0, 90.0)


def test_proxy_sweep_gives_every_run_of_a_panel_its_own_colour():
    from saccadelib import plots

    runs = ["saccade_cells", "saccade", "random_glimpses", "salient_glimpses", "oracle_glimpses", "attention_sampling",
            "ips", "proxy_cnn", "proxy_cnn_32"]
    table = pd.DataFrame({"label": [f"megapixel/{r}" for r in runs], "mean": range(10, 10 + len(runs)), "std": 1.0})
    figure = plots.proxy_sweep(table, {"proxy_cnn": 128, "proxy_cnn_32": 32})
    lines = [line for line in figure.axes[0].get_lines() if line.get_linestyle() == "--"]
    assert len(lines) == 7 and len({line.get_color() if isinstance(line.get_color(), str) else
                                    tuple(line.get_color()) for line in lines}) == 7


def test_robustness_summary_pairs_each_level_with_the_same_seeds_noise_free_score():
    # seed 0 reaches 60% without noise, seed 1 80%: spread 14 points; each loses exactly 10 at σ 1, which
    # the paired change shows as 10 ± 0 where the unpaired means (60 ± 14 against 70 ± 14) overlap
    robustness = pd.DataFrame({"seed": [0, 0, 1, 1], "sigma": [0.0, 1.0, 0.0, 1.0], "keep": [1.0] * 4,
                               "test_accuracy": [0.6, 0.5, 0.8, 0.7]})
    table = study.robustness_summary(robustness).set_index("sigma")
    assert table.loc[1.0, "test_exact_match_%"] == "60.0 ± 14.1"
    assert table.loc[1.0, "change_from_noise_free_points"] == "-10.0 ± 0.0"
    assert table.loc[1.0, "seeds_that_lost"] == 2 and table.loc[0.0, "seeds_that_lost"] == 0


def test_noise_explorer_is_a_slider_callback(tmp_path, capsys):
    ipywidgets = pytest.importorskip("ipywidgets")
    from saccadelib.datasets import twodigit as data

    torch.manual_seed(0)
    models = {(0.0, 1.0): VariationalSaccading(ModelConfig(n_classes=55)).eval(),
              (1.0, 1.0): VariationalSaccading(ModelConfig(n_classes=55)).eval()}
    test_set = data.generate("identification", "test", 4, seed=1)
    explorer = study.NoiseExplorer(models, test_set, data.class_names("identification"))
    ui = ipywidgets.interactive(explorer.show, sigma=ipywidgets.FloatSlider(value=0.0, min=0, max=1, step=0.05),
                                keep=ipywidgets.FloatSlider(value=1.0, min=0.05, max=1, step=0.05),
                                index=ipywidgets.IntSlider(value=0, min=0, max=3), display=ipywidgets.fixed(False))
    ui.update()
    first = capsys.readouterr().out
    assert "σ=0 keep=1, model trained at σ=0" in first
    ui.children[0].value = 0.9  # moving σ redraws with the model trained nearest to it
    moved = capsys.readouterr().out
    assert "proxy σ=0.9" in moved and "model trained at σ=1 keep=1" in moved
    assert ui.result["model_level"] == [1.0, 1.0] and ui.result["sigma"] == 0.9
    with pytest.raises(ValueError, match="index"):
        explorer.show(index=9, display=False)


def test_table1_puts_ours_beside_the_paper(tmp_path):
    root = tmp_path / "results"
    crops = "4 glimpses, classifier reads crops"
    rows = [{"label": "saccade", "test_accuracy": 0.9, "parameters": 1_500_000, "s_per_epoch": 34.0,
             "epochs_run": 26, "device": "cpu", "train_min": 16.0, "val_min": 1.0, "configuration": crops,
             "canvases_seen": 520_000},
            {"label": "saccade", "test_accuracy": 0.8, "parameters": 1_500_000, "s_per_epoch": 34.0,
             "epochs_run": 26, "device": "cpu", "train_min": 17.0, "configuration": crops, "canvases_seen": 520_000},
            {"label": "ram", "test_accuracy": 0.5, "parameters": 200_000, "s_per_epoch": 14.0,
             "epochs_run": 64, "device": "cpu", "configuration": "defaults", "canvases_seen": 1_280_000}]
    (root / "01_two_digit_sum").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(root / "01_two_digit_sum" / "runs.csv", index=False)
    (root / "01_two_digit_sum" / "config.json").write_text(json.dumps(
        {"config": {"profile": "cpu", "training": {"budget_min": 15.0}}}))
    (root / "05_efficiency").mkdir()
    bench = [{"variant": "tiles_naive", "source": "lazy", "side": 2528, "batch": 1, "phase": phase, "median_s": t,
              "parameters": 11_460_000} for phase, t in (("infer", 4.305), ("train", 11.89))]
    (root / "05_efficiency" / "efficiency_cpu.json").write_text(json.dumps({"rows": bench}))
    table = study.table1(root)
    tiles = table[(table["system"] == "resnet18 - 144 crops") & (table["column"] == "identification")].iloc[0]
    assert tiles["ours_%"].startswith("not trained on CPU: 4.30 s per 2528² image to infer, 11.9 s per training "
                                      "step (05_efficiency)") and tiles["parameters"] == 11_460_000
    cell = table[(table["system"] == "variational saccading (the paper's method)") & (table["column"] == "sum")].iloc[0]
    assert cell["ours_%"] == "85.0 ± 7.1" and cell["paper_%"] == "97.2 ± 0.04" and cell["seeds"] == 2
    # the budget sized the epochs; measured: training plus validation where timed, (16 + 1 + 17) / 2
    assert cell["budget"] == "cpu: 15 min on cpu (26 epochs, 17.0 min measured)"
    ram = table[(table["system"] == "RAM") & (table["column"] == "sum")].iloc[0]
    assert ram["ours_%"] == "50.0" and ram["paper_%"] == "91"
    resnet = table[(table["system"] == "resnet18 - full image") & (table["column"] == "sum")].iloc[0]
    assert resnet["ours_%"] == "not in this profile"
    # the recorded GPU run of the tile model is said beside its CPU costs (records/, read from the repository)
    from saccadelib.study import gpu_records

    recorded = json.loads((gpu_records.REPO_ROOT / gpu_records.GPU_TILES_RUN / "metrics.json").read_text())
    assert f"{recorded['test']['accuracy'] * 100:.1f}% test (chance 1.8%; records/baselines/" in tiles["ours_%"]
    missing = table[(table["system"] == "variational saccading (the paper's method)") & (table["column"] == "identification")]
    assert missing["ours_%"].str.startswith("not run yet").all()
    assert (table[table["column"] == "fivek"]["ours_%"].str.contains("FiveK")).all()
    md = study.table1_markdown(table)
    assert "| variational saccading (the paper's method) | 85.0 ± 7.1 |" in md and "**2528²**" in md
    # each trained cell on its own line, with that model's parameters and seconds per epoch
    assert "| 100² | sum | variational saccading (the paper's method) | 85.0 ± 7.1 | 97.2 ± 0.04 | 2 | 4 glimpses, classifier reads crops " \
           "| 520,000 | 17.0 | 1.50 M | 34 |" in md
    assert "| 100² | sum | RAM | 50.0 | 91 | 1 | defaults | 1,280,000 | – | 0.20 M | 14 |" in md


def _plateau_run(folder, label, accuracy, stopped, seed=0, val=(0.5, 0.8, 0.9), lr=(1e-3, 1e-3, 1e-4)):
    history = pd.DataFrame({"epoch": range(1, len(val) + 1), "lr": lr, "train_s": [1800.0] * len(val),
                            "val_s": [0.0] * len(val), "elapsed_s": [1800.0 * (k + 1) for k in range(len(val))],
                            "val_accuracy": val})
    run = f"{label}_s{seed}"
    (folder / "runs" / run).mkdir(parents=True)
    history.to_csv(folder / "runs" / run / "history.csv", index=False)
    return {"label": label, "seed": seed, "test_accuracy": accuracy, "stopped": stopped, "epochs_run": len(val),
            "canvases_seen": 20_000 * len(val), "train_min": 30.0 * len(val), "val_min": 0.0, "parameters": 1,
            "s_per_epoch": 1800.0, "device": "cpu", "configuration": "", "run_folder": run}


def test_table1_gives_each_plateau_cell_its_verdict_and_curve(tmp_path):
    root = tmp_path / "results"
    cpu = root / "02_two_digit_identification_100"
    cpu.mkdir(parents=True)
    pd.DataFrame([{"label": "saccade", "test_accuracy": 0.807, "parameters": 1, "s_per_epoch": 26.0,
                   "epochs_run": 13, "device": "cpu", "canvases_seen": 260_000}]).to_csv(cpu / "runs.csv", index=False)
    plateau = root / "plateau" / "02_two_digit_identification_100"
    flat = (0.5, 0.9, 0.91, 0.9, 0.91, 0.9)
    windows = {"window_side_px": 44.9, "window_detail": 0.713, "window_at_cap": 0.97}  # as the test scoring measured them
    rows = [{**_plateau_run(plateau, "saccade", 0.930, "plateau", val=flat, lr=(1e-3,) * 6), **windows},  # paper 95.42: short by 2.4 at its plateau
            _plateau_run(plateau, "resnet18", 0.972, "time_budget"),  # paper 97.4: within 0.5, reproduced
            _plateau_run(plateau, "ram", 0.10, "plateau", lr=(1e-3,) * 3)]  # paper 93: its curve rises, the rule fired on noise
    pd.DataFrame(rows).to_csv(plateau / "runs.csv", index=False)
    table = study.table1(root)  # the plateau results are read from results/plateau/
    at_100 = table[(table["column"] == "identification") & (table["image_size"] == "100²")]
    cell = lambda system: at_100[at_100["system"] == system].iloc[0]  # noqa: E731
    saccade = cell("variational saccading (the paper's method)")
    assert saccade["ours_%"] == "80.7" and saccade["plateau_%"] == "93.0"
    assert saccade["plateau_verdict"] == "short by 2.4 at its plateau" and saccade["plateau_stopped"] == "plateau"
    assert saccade["plateau_hours"] == 3.0 and saccade["plateau_canvases"] == 120_000
    assert saccade["plateau_windows"] == "45 px read at 0.71, 97% at the cap"
    assert cell("resnet18 - full image")["plateau_verdict"] == "reproduced"
    assert cell("RAM")["plateau_verdict"] == "short by 83.0, still rising when the plateau rule stopped it"
    assert table[table["column"] == "sum"]["plateau_%"].isna().all()  # sum was not trained to its plateau
    md = study.table1_markdown(table)
    # sum was not trained to its plateau here: its column holds ResNet-18's runs on one GPU alone
    assert "identification: ours at its plateau" in md and "sum: ours at its plateau" in md
    assert "| 80.7 |  | 93.0 (short by 2.4 at its plateau) | 97.2 ± 0.04 | 95.42 ± 0.002 |" in md
    assert "| not in this profile | on one GPU without the cap: " in md
    assert ("| 100² | identification | RAM | 10.0 | 93 | short by 83.0, still rising when the plateau rule stopped it "
            "| plateau | 1 | 3 | 60,000 | 1.50 |") in md
    # the plateau profile's own summary reads the same cells from its root, beside the committed cpu results
    assert study.reports.table1_roots(root / "plateau", "plateau")[1] == root / "plateau"
    cells = study.reports.plateau_curves(root / "plateau")
    assert [c["model"] for c in cells] == ["saccade", "resnet18", "ram"] and cells[0]["paper"] == 95.42
    assert cells[0]["runs"][0]["hours"] == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0] and cells[0]["runs"][0]["canvases"][-1] == 120_000
    from saccadelib import plots

    plots.plateau_curve(cells[0], tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_a_verdict_reads_the_curve_as_well_as_what_stopped_the_run():
    from saccadelib.study.verdicts import verdict

    assert verdict(90.0, "95.0", ["plateau"], [False]) == "short by 5.0 at its plateau"
    assert verdict(90.0, "95.0", ["plateau", "plateau"], [False, True]) == \
        "short by 5.0, still rising when the plateau rule stopped it"
    assert verdict(90.0, "95.0", ["time_budget"], [False]) == "short by 5.0, flat at the cap"
    assert verdict(90.0, "95.0", ["time_budget"], [True]) == "short by 5.0, still rising at the cap"
    assert verdict(90.0, "95.0", ["plateau"]) == "short by 5.0 at its plateau"  # no curve: the stop alone
    assert verdict(94.6, "95.0", ["time_budget"], [True]) == "reproduced"
    assert verdict(90.0, "95.0", ["plateau"], [False], [True]) == "short by 5.0 at its plateau, a rate cut while still rising"


def test_resnet18_runs_on_a_gpu_stand_beside_its_capped_plateau_cell(tmp_path):
    root = tmp_path / "results"
    plateau = root / "plateau" / "01_two_digit_sum"
    rows = [_plateau_run(plateau, "resnet18", 0.955, "epochs")]
    pd.DataFrame(rows).to_csv(plateau / "runs.csv", index=False)
    gpu = study.gpu_records.gpu_plateau_runs("sum")  # the committed records
    assert len(gpu) >= 2 and set(gpu["device"]) == {"cuda"}
    mean = gpu["test_accuracy"].mean() * 100
    table = study.table1(root)
    resnet = table[(table["column"] == "sum") & (table["system"] == "resnet18 - full image")].iloc[0]
    assert resnet["plateau_verdict"] == "short by 4.4, still rising at the cap"  # the capped CPU run, kept
    assert resnet["gpu_plateau_%"].startswith(f"{mean:.1f} ± ") and resnet["gpu_plateau_stopped"] == "plateau"
    assert resnet["gpu_plateau_verdict"].startswith(f"short by {99.86 - mean:.1f} at its plateau")
    assert resnet["gpu_plateau_epochs"] == gpu["epochs_run"].max()
    md = study.table1_markdown(table)
    assert f"95.5 (short by 4.4, still rising at the cap); on one GPU without the cap: {resnet['gpu_plateau_%']}" in md
    assert "| 100² | sum | resnet18 - full image, on one GPU without the cap (records/baselines/" in md
    cell = study.reports.plateau_curves(root / "plateau")[0]
    assert [r["device"] for r in cell["runs"]] == [None] + ["on one GPU without the cap"] * len(gpu)
    assert cell["runs"][1]["canvases"][-1] == gpu["canvases_seen"].iloc[0]
    from saccadelib import plots

    fig = plots.plateau_curve(cell)
    assert len(fig.axes[0].lines) > len(fig.axes[1].lines)  # GPU runs: against canvases, not our hours


def test_resnet18_at_the_plateau_is_its_gpu_runs_where_the_profile_left_it_out(tmp_path):
    root = tmp_path / "results"
    plateau = root / "plateau" / "01_two_digit_sum"
    pd.DataFrame([_plateau_run(plateau, "saccade", 0.95, "plateau")]).to_csv(plateau / "runs.csv", index=False)
    gpu = study.gpu_records.gpu_plateau_runs("sum")
    table = study.table1(root)
    resnet = table[(table["column"] == "sum") & (table["system"] == "resnet18 - full image")].iloc[0]
    assert pd.isna(resnet["plateau_%"]) and resnet["gpu_plateau_%"].startswith(f"{gpu['test_accuracy'].mean() * 100:.1f}")
    md = study.table1_markdown(table)
    assert f" | on one GPU without the cap: {resnet['gpu_plateau_%']} (" in md
    assert "| 100² | sum | resnet18 - full image, on one GPU without the cap (records/baselines/" in md
    assert "| 100² | sum | resnet18 - full image | nan" not in md and "| 100² | sum | resnet18 - full image |" not in md
    cells = study.reports.plateau_curves(root / "plateau")
    assert [c["model"] for c in cells] == ["saccade", "resnet18"]
    assert {r["device"] for r in cells[1]["runs"]} == {"on one GPU without the cap"} and len(cells[1]["runs"]) == len(gpu)


def test_the_plateau_profile_trains_table1s_cells_within_its_hours(tmp_path):
    from saccadelib.study.plan import experiments_for
    from saccadelib.study.profiles import PLATEAU_CAP_MIN

    assert [e.name for e in experiments_for("plateau")] == [
        "01_two_digit_sum", "02_two_digit_identification_100", "02_two_digit_identification_2528", "00_summary"]
    specs = study.runs.experiment_runs("plateau")
    assert set(specs) == {"01_two_digit_sum", "02_two_digit_identification_100", "02_two_digit_identification_2528"}
    for spec in [s for runs in specs.values() for s in runs]:
        t = spec.train_overrides
        assert t["lr_schedule"] == "plateau" and t["plateau_epochs"]
        # the cap: the epochs its minutes pay for on our machine, and no cap on the clock, which would stop a
        # run on one shared thread of a slower day sooner than the same run alone
        epoch_s = study.runs.measured_seconds(*spec.calibration)[0]
        assert abs(t["epochs"] * epoch_s / 60 - PLATEAU_CAP_MIN[spec.model]) <= epoch_s / 60
        assert t.get("time_budget_s") is None and spec.resolved().train_cfg.time_budget_s is None
    models = {name: {s.model for s in runs} for name, runs in specs.items()}
    # ResNet-18 on the whole image at the plateau: its runs on one GPU (two hours here stop it still rising)
    assert models["02_two_digit_identification_100"] == {"saccade", "proxy_cnn", "oracle_glimpses", "ram"}
    assert models["02_two_digit_identification_2528"] == {"saccade"}
    # three seeds of the paper's method on identification 100², one of every other run
    seeds = {(name, s.model): set() for name, runs in specs.items() for s in runs}
    for name, runs in specs.items():
        for s in runs:
            seeds[name, s.model].add(s.seed)
    assert {key for key, value in seeds.items() if value != {0}} == {("02_two_digit_identification_100", "saccade")}
    assert seeds["02_two_digit_identification_100", "saccade"] == {0, 1, 2}
    # every run at its cap, the three seeds included: a bound of about 17 hours (docs/study.md), give or take
    # the notebooks' own work; the runs stop at their plateaus well before
    plan = study.planned_minutes("plateau", tmp_path).set_index("experiment")
    assert 600 < plan.loc["total", "planned_min"] <= 17.5 * 60
    assert study.runs.results_root("plateau") == study.runs.results_root("cpu") / "plateau"
    with pytest.raises(ValueError, match="Table 1's cells alone"):
        study.noise_study("plateau")


def test_the_plan_counts_finished_runs_as_measured_and_the_rest_at_their_caps(tmp_path):
    specs = study.runs.experiment_runs("plateau")["02_two_digit_identification_2528"]
    cap = study.progress.planned_run_minutes(specs[0])
    folder = tmp_path / "study" / "plateau" / "02_two_digit_identification_2528" / specs[0].folder()
    folder.mkdir(parents=True)
    epochs = specs[0].train_overrides["epochs"]
    # a quarter of its epochs done, each clocked at 60 s of training and 30 of validation
    rows = ["epoch,train_s,val_s"] + [f"{k},60,30" for k in range(1, epochs // 4 + 1)]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    plan = study.planned_minutes("plateau", tmp_path).set_index("experiment")
    row = plan.loc["02_two_digit_identification_2528"]
    spent = 1.5 * (epochs // 4)
    assert row["finished"] == 0 and row["measured_min"] == pytest.approx(spent, abs=0.1)
    assert row["at_most_min"] == pytest.approx(spent + cap * (1 - (epochs // 4) / epochs), abs=0.1)
    (folder / "metrics.json").write_text("{}")  # finished: its clock is all it takes
    plan = study.planned_minutes("plateau", tmp_path).set_index("experiment")
    row = plan.loc["02_two_digit_identification_2528"]
    assert row["finished"] == 1 and row["at_most_min"] == pytest.approx(spent, abs=0.1)
    assert plan.loc["total", "finished"] == 1
    assert plan.loc["01_two_digit_sum", "at_most_min"] == plan.loc["01_two_digit_sum", "planned_min"]


def test_the_run_table_shows_each_started_run_its_rate_cuts_best_and_recent_slope(tmp_path):
    specs = study.runs.experiment_runs("plateau")["02_two_digit_identification_2528"]
    folder = tmp_path / "study" / "plateau" / "02_two_digit_identification_2528" / specs[0].folder()
    folder.mkdir(parents=True)
    # 40 epochs: rising by 0.1 points an epoch at 1e-3 for 20, then flat at 1e-4 with a best at epoch 25
    accuracy = [0.80 + 0.001 * k for k in range(20)] + [0.82] * 20
    accuracy[24] = 0.83
    lrs = [0.001] * 20 + [0.0001] * 20
    rows = ["epoch,lr,train_s,val_s,val_accuracy"] + [f"{k + 1},{lr},60,30,{a}" for k, (lr, a) in
                                                      enumerate(zip(lrs, accuracy))]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    table = study.progress.run_table("plateau", tmp_path)
    assert list(table["run"]) == [specs[0].folder()]  # runs not started are left out
    row = table.iloc[0]
    assert row["epochs"] == 40 and row["planned_epochs"] == specs[0].train_overrides["epochs"]
    assert row["rate_cut_after"] == "20" and row["best_val_%"] == 83.0 and row["best_epoch"] == 25
    slope, error = (float(x) for x in row["recent_slope"].split(" ± "))
    # the last 30 epochs: the rise's tail, then flat; one outlier in the flat part sets the error
    line = curve_slope([a * 100 for a in accuracy[-30:]])
    assert slope == pytest.approx(line[0] * 30, abs=0.01) and error == pytest.approx(line[1] * 30, abs=0.01)
    assert row["minutes"] == 60.0 and not row["finished"]
    assert study.progress.run_table("plateau", tmp_path / "nothing").empty


def test_profile_time_sums_each_experiments_measured_minutes(tmp_path):
    root = tmp_path / "results"
    (root / "01_two_digit_sum").mkdir(parents=True)
    (root / "01_two_digit_sum" / "run.json").write_text(json.dumps({"profile": "cpu", "status": "ok", "wall_s": 600,
                                                                     "other_s": 60}))
    pd.DataFrame({"train_min": [10.4, 9.9, 16.2], "val_min": [0.5, None, 0.25], "test_min": [0.1, 0.1, 0.3]}).to_csv(
        root / "01_two_digit_sum" / "runs.csv", index=False)
    (root / "05_efficiency").mkdir()  # no runs; an older record without other_s counts its whole wall time
    (root / "05_efficiency" / "run.json").write_text(json.dumps({"profile": "cpu", "status": "ok", "wall_s": 1500}))
    (root / "00_summary").mkdir()  # always rerun: not a cost of its own
    (root / "00_summary" / "run.json").write_text(json.dumps({"profile": "cpu", "status": "ok", "wall_s": 30}))
    table = study.profile_time(root).set_index("experiment")
    assert list(table.index) == ["01_two_digit_sum", "05_efficiency", "total"]
    assert table.loc["01_two_digit_sum", "training_min"] == 36.5 and table.loc["01_two_digit_sum", "runs"] == 3
    assert table.loc["01_two_digit_sum", "total_min"] == pytest.approx(36.5 + 0.75 + 0.5 + 1.0, abs=0.06)
    assert table.loc["05_efficiency", "training_min"] == 0 and table.loc["05_efficiency", "total_min"] == 25
    assert table.loc["total", "total_min"] == pytest.approx(38.75 + 25, abs=0.06)
    assert table.loc["total", "validation_min"] == 0.8


def test_cost_curves_follow_each_model_in_canvases_and_minutes(tmp_path):
    root = tmp_path / "results"
    folder = root / "06_resolution"
    rows = []
    for label, seed, acc in (("megapixel/saccade", 0, 0.9), ("megapixel/saccade", 1, 0.8), ("id1000/proxy_cnn", 0, 0.05)):
        run = f"{label.replace('/', '_')}_s{seed}_abc"
        (folder / "runs" / run).mkdir(parents=True)
        (folder / "runs" / run / "history.csv").write_text(
            "epoch,train_s,val_s,val_accuracy\n1,30,6,0.5\n2,30,6,0.7\n")
        rows.append({"label": label, "seed": seed, "test_accuracy": acc, "run_folder": run, "epochs_run": 2,
                     "canvases_seen": 10_000})
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
    panels = study.reports.cost_curves(root)
    assert list(panels) == ["resolution/megapixel", "resolution/id1000"]
    (ours,) = panels["resolution/megapixel"]
    assert ours["label"] == "saccade" and ours["canvases"] == [5000, 10000] and ours["minutes"] == [0.6, 1.2]
    assert ours["val"] == [50, 70] and ours["seeds"] == 2 and ours["test_mean"] == pytest.approx(85)
    assert ours["test_std"] == pytest.approx(7.07, abs=0.01) and panels["resolution/id1000"][0]["test_std"] == 0
    from saccadelib import plots

    assert (plots.save_figure(plots.accuracy_against_cost(panels), tmp_path / "c.png")).stat().st_size > 10_000


def test_the_runner_counts_the_runs_clocks_and_the_rest_of_its_attempt(tmp_path):
    """runs_clock: the epochs' training and validation seconds of every run (kept across resumes) and the
    finished runs' test scoring; the runner's ``other_s`` is its wall time less what the runs added."""
    from saccadelib.study.runner import runs_clock

    run = tmp_path / "a_s0_x"
    run.mkdir()
    (run / "history.csv").write_text("epoch,train_s,val_s\n1,10.0,1.0\n2,12.5,0.5\n")
    assert runs_clock(tmp_path) == 24.0
    (run / "metrics.json").write_text(json.dumps({"test_s": 3.0}))
    (tmp_path / "b_s0_y").mkdir()  # a run that has not finished an epoch yet
    assert runs_clock(tmp_path) == 27.0
    nested = tmp_path / "megapixel" / "c_s0_z"  # runs grouped in a folder per data set count too
    nested.mkdir(parents=True)
    (nested / "history.csv").write_text("epoch,train_s,val_s\n1,2.0,0.0\n")
    assert runs_clock(tmp_path) == 29.0
