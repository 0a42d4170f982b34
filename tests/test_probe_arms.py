"""The probe runner (scripts/probes/train_arms.py): its tables of arms, and that every arm is a run the CLI takes."""
import importlib.util
from pathlib import Path

import pytest

from saccadelib.cli import build_parser, parse_settings
from saccadelib.settings import resolve

REPO_ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("train_arms", REPO_ROOT / "scripts/probes/train_arms.py")
train_arms = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_arms)

TABLE = {
    "command": "--model saccade {arm} --train threads={threads} --train epochs=2",
    "runs": "runs/probes/t", "records": "records/t",
    "values": {"threads": 2, "wide": "--set window.max_scale=0.6", "wider": "{wide} --set init_scale=0.45"},
    "arms": {"base": "--task sum", "wide": "--task sum {wider}"},
}


def test_arms_run_in_the_table_order_with_values_filled_in_and_their_folders():
    commands = train_arms.arm_commands(TABLE, [], {})
    assert [name for name, _ in commands] == ["base", "wide"]
    assert " ".join(commands[1][1]) == (
        "train --model saccade --task sum --set window.max_scale=0.6 --set init_scale=0.45 --train threads=2 "
        "--train epochs=2 --out runs/probes/t/wide --record records/t/wide")


def test_an_environment_variable_of_the_upper_case_name_replaces_a_value():
    (_, arguments), = train_arms.arm_commands(TABLE, ["base"], {"THREADS": "1"})
    assert "threads=1" in arguments and "threads=2" not in arguments


@pytest.mark.parametrize("table, names, message", [
    (TABLE, ["narrow"], "unknown arm narrow; valid: base wide"),
    ({**TABLE, "arms": {"a": "{nothing}"}}, [], "not among the table's [values]"),
    ({**TABLE, "values": {"a": "{b}", "b": "{a}"}}, [], "circle: a -> b -> a"),
])
def test_a_table_or_name_in_error_is_refused_in_one_line(table, names, message):
    with pytest.raises(SystemExit, match=message.replace("[", r"\[").replace("]", r"\]")):
        train_arms.arm_commands(table, names, {})


def test_an_unknown_probe_names_the_known_ones():
    with pytest.raises(SystemExit, match="known probes: .*window"):
        train_arms.load_table("windows")


@pytest.mark.parametrize("probe", sorted(p.stem for p in (REPO_ROOT / "scripts/probes/arms").glob("*.toml")))
def test_every_arm_of_every_committed_table_resolves_to_a_run(probe):
    table = train_arms.load_table(probe)
    assert table["records"].startswith("records/") and table["runs"].startswith("runs/probes/")
    for name, arguments in train_arms.arm_commands(table, [], {}):
        args = build_parser().parse_args(arguments)
        assert args.out.endswith(f"/{name}") and args.record.endswith(f"/{name}")
        resolve(args.model, args.task, args.recipe, parse_settings(args.set), parse_settings(args.train))



@pytest.fixture
def arm_curves(monkeypatch):
    """scripts/probes/arm_curves.py, loaded as the scripts folder loads it (beside train_arms)."""
    import sys
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts/probes"))
    monkeypatch.setitem(sys.modules, "train_arms", train_arms)
    curves_spec = importlib.util.spec_from_file_location("arm_curves", REPO_ROOT / "scripts/probes/arm_curves.py")
    module = importlib.util.module_from_spec(curves_spec)
    curves_spec.loader.exec_module(module)
    return module


def test_the_curves_table_reads_each_finished_arm_and_skips_the_rest(tmp_path, monkeypatch, arm_curves):
    import json
    monkeypatch.setattr(arm_curves, "REPO_ROOT", tmp_path)
    folder = tmp_path / "records/t/wide"
    folder.mkdir(parents=True)
    rows = ["epoch,lr,train_s,val_accuracy"] + [f"{e},0.001,1.0,{0.1 * e}" for e in range(1, 9)]
    (folder / "history.csv").write_text("\n".join(rows) + "\n")
    (folder / "metrics.json").write_text(json.dumps({"best_val_accuracy": 0.8, "best_epoch": 8,
                                                     "test": {"accuracy": 0.75}}))
    finished = arm_curves.finished_arms(TABLE, [])
    assert [name for name, _ in finished] == ["wide"]  # "base" has no record yet
    table = arm_curves.markdown("t", [arm_curves.arm_row(*finished[0])])
    assert "| wide | 8 | 20.0 / 40.0 / 80.0 | 80.0 (8) | 75.0 | – | – | – | – | – | – |" in table  # after 2, 4, 8 epochs
    with pytest.raises(SystemExit, match="unknown arm narrow"):
        arm_curves.finished_arms(TABLE, ["narrow"])


def test_a_seed_arm_is_drawn_as_its_base_arm_with_a_seed(arm_curves):
    assert arm_curves.curve_label("last_step_seed2") == "last_step (seed 2)"
    assert arm_curves.curve_label("recipe") == "recipe" and arm_curves.curve_label("sum_seedling") == "sum_seedling"
