"""Probe: bad inputs and faults on train, predict and evaluate, as a new user makes them. Each case runs the
command line in this process and is classed by what the user sees:

- ``error``: exit status 2 and one line ``error: …`` that names the problem (the case's keyword);
- ``handled``: exit status 0 and the outcome the case expects (a bad file skipped and listed, a file read
  right);
- ``TRACEBACK``: an exception escaped the command line;
- ``WRONG``: anything else (a wrong status, no line, the keyword missing, or a silent outcome).

Writes records/bad_inputs/pass.{json,md}. About two minutes.
    .venv/bin/python scripts/probes/bad_input_pass.py
"""
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import tifffile
import torch
from PIL import Image

from saccadelib.__main__ import main
from saccadelib.datasets.pyramids import write_pyramid
from saccadelib.model import ModelConfig, VariationalSaccading
from saccadelib.paths import REPO_ROOT, write_text_atomic
from saccadelib.runinfo import run_metadata, write_json

TINY = dict(glimpses=2, hidden=16, proxy_features=16, crop_features=16, latent_features=8, width=8, rnn_layers=1)
TINY_SET = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
QUICK = ["--train", "epochs=1", "--train", "batch_size=4", "--train", "eval_batch_size=8", "--train", "test=false",
         "--train", "progress=none"]
NAMES = ["bars", "dots", "empty"]


def folder(root: Path, per_class: int = 4) -> Path:
    rng = np.random.default_rng(0)
    for c, name in enumerate(NAMES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for k in range(per_class):
            pixels = rng.integers(0, 40, size=(64, 80), dtype=np.uint8)
            pixels[:, c * 10:c * 10 + 6] = 255
            Image.fromarray(pixels).save(root / name / f"{k}.png")
    return root


def checkpoint(path: Path, names=NAMES, nan=False) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig(n_classes=len(NAMES), **TINY)
    state = VariationalSaccading(cfg).state_dict()
    if nan:
        next(v for v in state.values() if v.is_floating_point()).fill_(float("nan"))
    meta = {"name": "saccade", "task": "folder", "config": json.loads(json.dumps(cfg.to_dict())), "class_names": names}
    torch.save({"model": state, "model_meta": meta, "epoch": 1}, path)
    return path


def truncated_tiff(path: Path) -> Path:
    write_pyramid(path, np.random.default_rng(0).integers(0, 255, (512, 512), dtype=np.uint8), tile=64, smallest=64)
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        spans = [(o, c) for page in tif.pages for o, c in zip(page.dataoffsets, page.databytecounts)]
    for offset, count in spans:
        data[offset:offset + count] = bytes(count)
    path.write_bytes(bytes(data))
    return path


def run(args: list[str]) -> tuple[int | None, str, str]:
    """(exit status or None when an exception escaped, stderr, stdout) of the command line."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(args)
        except SystemExit as stop:  # argparse's own errors: status 2 and a usage line
            code = stop.code if isinstance(stop.code, int) else 2
        except Exception:  # noqa: BLE001 (what the user would see as a traceback)
            traceback.print_exc(file=err)
            code = None
    return code, err.getvalue(), out.getvalue()


def make_files(t: Path) -> None:
    """The bad (and good) files and folders the cases read, under ``t``."""
    images = folder(t / "images")
    checkpoint(t / "best.pt")
    (t / "empty_dir").mkdir()
    one = folder(t / "one_class", 3)
    for name in NAMES[1:]:
        for f in (one / name).iterdir():
            f.unlink()
        (one / name).rmdir()
    mixed = folder(t / "mixed")
    (mixed / "bars" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    truncated_tiff(mixed / "dots" / "broken.tif")
    (t / "text.png").write_text("hello")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(t / "tiny.png")
    Image.fromarray(np.full((64, 64), 30000, np.uint16)).save(t / "grey16.png")
    Image.fromarray(np.zeros((64, 64, 4), np.uint8)).save(t / "rgba.png")
    Image.fromarray(np.zeros((3000, 3000), np.uint8)).save(t / "big.png")
    nan = np.zeros((64, 64), np.float32)
    nan[3, 3] = np.nan
    tifffile.imwrite(t / "nan.tif", nan)
    truncated_tiff(t / "broken.tif")
    (t / "notackpt.pt").write_text("not a checkpoint")
    checkpoint(t / "nan.pt", nan=True)
    checkpoint(t / "names.pt", names=["a", "b"])
    (t / "labels").mkdir()
    labels = {"no_file_column": "image,label\nbars/0.png,bars\n", "missing_file": "file,label\nbars/99.png,bars\n",
              "unknown_class": "file,label\nbars/0.png,cats\n", "empty": "file,label\n",
              "repeated": "file,label\nbars/0.png,bars\nbars/0.png,bars\n", "short_row": "file,label\nbars/0.png,bars\ndots/0.png\n",
              "bom": "\ufefffile,label\nbars/0.png,bars\ndots/0.png,dots\n", "blank": ""}
    for name, text in labels.items():
        (t / "labels" / f"{name}.csv").write_text(text, encoding="utf-8")
    os.mkfifo(images / "bars" / "fifo.png")
    Image.fromarray(np.zeros((64, 64), np.uint8)).save(os.fsencode(images / "dots") + b"/caf\xe9.png")
    os.link(t / "grey16.png", t / "link.png")
    (t / "labels" / "fifo.csv").write_text("file,label\nbars/fifo.png,bars\n")
    (t / "a_file").write_text("x")


def cases(t: Path) -> list[tuple]:
    """(name, argv, expected: error | handled, keyword in the error line or a check of the outcome)."""
    make_files(t)
    images, mixed, one, ckpt = t / "images", t / "mixed", t / "one_class", t / "best.pt"
    nan_ckpt, wrong_names = t / "nan.pt", t / "names.pt"
    train = ["train", "--images", str(images), *TINY_SET, *QUICK]
    predict = ["predict", "--checkpoint", str(ckpt)]
    evaluate = ["evaluate", "--checkpoint", str(ckpt), "--images", str(images), "--labels"]
    lab = lambda name: str(t / "labels" / f"{name}.csv")  # noqa: E731
    done = lambda path, text: (lambda: text in Path(path).read_text())  # noqa: E731
    return [
        ("train: unknown task", ["train", "--task", "cats", "--out", str(t / "r1")], "error", "unknown task"),
        ("train: unknown model", ["train", "--model", "vgg", "--task", "sum", "--out", str(t / "r2")], "error", "unknown model"),
        ("train: unknown setting", [*train, "--out", str(t / "r3"), "--set", "glimpse=3"], "error", "glimpse"),
        ("train: a setting's value of the wrong type", [*train, "--out", str(t / "r4"), "--set", "hidden=abc"], "error", "hidden"),
        ("train: no glimpses", [*train, "--out", str(t / "r5"), "--set", "glimpses=0"], "error", "glimpses"),
        ("train: a window larger than the image", [*train, "--out", str(t / "r6"), "--set", "window.max_scale=2"], "error", "scale"),
        ("train: negative epochs", [*train, "--out", str(t / "r7"), "--train", "epochs=-1"], "error", "epochs"),
        ("train: a learning rate of nan", [*train, "--out", str(t / "r8"), "--train", "lr=nan"], "error", "lr"),
        ("train: unknown recipe", [*train, "--out", str(t / "r9"), "--recipe", "fast"], "error", "recipe"),
        ("train: images folder missing", ["train", "--images", str(t / "nowhere"), "--out", str(t / "r10")], "error", "nowhere"),
        ("train: images folder empty", ["train", "--images", str(t / "empty_dir"), "--out", str(t / "r11")], "error", "empty_dir"),
        ("train: one class only", ["train", "--images", str(one), "--out", str(t / "r12"), *TINY_SET, *QUICK], "error", "class"),
        ("train: a corrupt PNG and TIFF among good ones", ["train", "--images", str(mixed), "--out", str(t / "r13"),
                                                            *TINY_SET, *QUICK], "handled", done(t / "r13" / "skipped.csv", "broken.tif")),
        ("train: --out is a file", [*train, "--out", str(t / "a_file")], "error", "a_file"),
        ("train: a manifest row short of a column", ["train", "--images", str(images), "--manifest", lab("short_row"),
                                                     "--out", str(t / "r15"), *TINY_SET, *QUICK], "error", "line 3"),
        ("train: a manifest without a file column", ["train", "--images", str(images), "--manifest", lab("no_file_column"),
                                                     "--out", str(t / "r16"), *TINY_SET, *QUICK], "error", "file"),
        ("predict: image missing", [*predict, str(t / "nowhere.png")], "error", "nowhere.png"),
        ("predict: text named .png", [*predict, str(t / "text.png")], "error", "text.png"),
        ("predict: an 8×8 image", [*predict, str(t / "tiny.png")], "error", "tiny.png"),
        ("predict: checkpoint missing", ["predict", str(t / "grey16.png"), "--checkpoint", str(t / "no.pt")], "error", "no.pt"),
        ("predict: a file that is not a checkpoint", ["predict", str(t / "grey16.png"), "--checkpoint", str(t / "notackpt.pt")],
         "error", "notackpt.pt"),
        ("predict: NaN weights", ["predict", str(t / "grey16.png"), "--checkpoint", str(nan_ckpt)], "error", "nan"),
        ("predict: class names that do not match the classes", ["predict", str(t / "grey16.png"), "--checkpoint",
                                                                str(wrong_names)], "error", "class"),
        ("predict: a folder without --out", [*predict, str(images)], "error", "--out"),
        ("predict: a 16-bit PNG", [*predict, str(t / "grey16.png")], "handled", None),
        ("predict: an RGBA PNG with a grey model", [*predict, str(t / "rgba.png")], "error", "rgba.png"),
        ("predict: above the pixel limit", [*predict, str(t / "big.png"), "--max-pixels", "1000000"], "error", "big.png"),
        ("predict: NaN pixels in a float TIFF", [*predict, str(t / "nan.tif")], "error", "nan.tif"),
        ("predict: a truncated tiled TIFF", [*predict, str(t / "broken.tif")], "error", "broken.tif"),
        ("predict: overlay onto the input", [*predict, str(t / "grey16.png"), "--overlay", str(t / "grey16.png")],
         "error", "grey16.png"),
        ("predict: a folder with a corrupt PNG and TIFF", [*predict, str(mixed), "--out", str(t / "p1")], "handled",
         done(t / "p1" / "skipped.csv", "broken.tif")),
        ("predict: a folder with a FIFO and a name that is not UTF-8", [*predict, str(images), "--out", str(t / "p2")],
         "handled", done(t / "p2" / "skipped.csv", "fifo.png")),
        ("predict: overlay onto a hard link of the input", [*predict, str(t / "grey16.png"), "--overlay", str(t / "link.png")],
         "error", "link.png"),
        ("evaluate: labels without a file column", [*evaluate, lab("no_file_column")], "error", "file"),
        ("evaluate: a labelled file missing", [*evaluate, lab("missing_file")], "error", "99.png"),
        ("evaluate: a class the checkpoint does not have", [*evaluate, lab("unknown_class")], "error", "cats"),
        ("evaluate: a labels CSV with a header only", [*evaluate, lab("empty")], "error", "empty.csv"),
        ("evaluate: an empty labels CSV", [*evaluate, lab("blank")], "error", "blank.csv"),
        ("evaluate: a file labelled twice", [*evaluate, lab("repeated")], "error", "bars/0.png"),
        ("evaluate: a row short of a column", [*evaluate, lab("short_row")], "error", "line 3"),
        ("evaluate: a byte-order mark", [*evaluate, lab("bom")], "handled", None),
        ("evaluate: a FIFO in the labels", [*evaluate, lab("fifo")], "error", "fifo.png"),
    ]


def classify(expected: str, check, code: int | None, err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if code is None or "Traceback" in err:
        return "TRACEBACK"
    if expected == "error":
        said = [line for line in lines if line.startswith("error:") or "error:" in line]
        ok = code == 2 and len(said) == 1 and check.lower() in said[0].lower()
        return "error" if ok else "WRONG"
    return "handled" if code == 0 and (check is None or check()) else "WRONG"


def main_probe() -> None:
    start = time.time()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, args, expected, check in cases(Path(tmp)):
            code, err, _ = run(args)
            verdict = classify(expected, check, code, err)
            said = next((line for line in err.splitlines() if "error:" in line), "")
            rows.append({"case": name, "expected": expected, "status": code, "verdict": verdict,
                         "said": said.replace(tmp, "TMP")[:300]})
            print(f"{verdict:9s} {name}: {said.replace(tmp, 'TMP')[:140]}", flush=True)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("error", "handled", "TRACEBACK", "WRONG")}
    out = REPO_ROOT / "records" / "bad_inputs"
    write_json(out / "pass.json", {**run_metadata(), "wall_s": round(time.time() - start, 1), "counts": counts, "cases": rows})
    table = "\n".join(f"| {r['case']} | {r['verdict']} | {r['said'].replace('|', '/')} |" for r in rows)
    write_text_atomic(out / "pass.md", f"# Bad inputs: {len(rows)} cases ({', '.join(f'{k} {v}' for k, v in counts.items())})\n\n"
                      "`.venv/bin/python scripts/probes/bad_input_pass.py`\n\n| case | verdict | what the user sees |\n"
                      f"|---|---|---|\n{table}\n")
    sys.exit(0 if counts["TRACEBACK"] == counts["WRONG"] == 0 else 1)


if __name__ == "__main__":
    main_probe()
