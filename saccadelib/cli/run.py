"""The commands a user runs most: train, predict, evaluate, and the study's runner (reproduce)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..names import MODEL_HELP, RECIPE_NAMES, TASK_HELP
from . import MAX_PIXELS, MAX_PIXELS_HELP, parse_settings


def _train(args) -> int:
    from ..train import train_model  # noqa: PLC0415 (start-up: --help answers without torch)

    train = parse_settings(args.train)
    task = args.task
    if args.images or args.manifest:
        if task not in (None, "folder"):
            raise ValueError(f"--images trains on your own images; drop --task {task}")
        if not args.images:
            raise ValueError("--manifest lists files relative to an images folder: give --images DIR too")
        task, train = "folder", {**train, "data_root": args.images,
                                 **({"manifest": args.manifest} if args.manifest else {})}
    if task is None:
        raise ValueError("give --task NAME (docs/tasks.md) or --images DIR (your own images)")
    from ..datasets import twodigit  # noqa: PLC0415 (start-up: --help answers without torch)

    if task in twodigit.TASKS:  # the two-digit canvases draw MNIST's digits: fetched on a first run
        from ..datasets.mnist import prepare_mnist  # noqa: PLC0415 (start-up: --help answers without torch)

        prepare_mnist()
    summary = train_model(args.model, task, args.out, parse_settings(args.set), train, recipe=args.recipe)
    if args.record:
        from ..runinfo import record_run  # noqa: PLC0415 (start-up: --help answers without torch)

        record_run(args.out, args.record, ["python", "-m", "saccadelib", *sys.argv[1:]])
    print(json.dumps({k: v for k, v in summary.items() if k not in ("run", "test_dataset")}, indent=1))
    return 0


def _predict(args) -> int:
    from ..inference import predict, predict_folder  # noqa: PLC0415 (start-up: --help answers without torch)

    if Path(args.image).is_dir():
        if not args.out:
            raise ValueError(f"{args.image} is a folder: give --out DIR for its predictions.csv (and overlays)")
        rows = predict_folder(args.image, args.checkpoint, args.out, overlays=args.overlays, max_pixels=args.max_pixels)
        print(f"{len(rows)} images classified; predictions.csv in {args.out}"
              + (f", overlays in {args.out}/overlays" if args.overlays else ""))
        return 0
    result = predict(args.image, args.checkpoint, overlay=args.overlay, max_pixels=args.max_pixels)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        top = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        print(f"{args.image}: {result['class']}  (" + ", ".join(f"{k} {p:.1%}" for k, p in top) + ")")
        for w in result["windows"]:  # as a slide user reads a region: level-0 (x, y) and (w, h)
            microns = w.get("microns")
            far = (f"  ({microns['x']:.0f}, {microns['y']:.0f}) µm, {microns['w']:.0f} × {microns['h']:.0f} µm"
                   if microns else "")
            print(f"  glimpse {w['glimpse']}: x={w['x']:.0f} y={w['y']:.0f} w={w['w']:.0f} h={w['h']:.0f}{far}")
        if args.overlay:
            print(f"overlay saved to {args.overlay}")
    return 0


def _evaluate(args) -> int:
    from ..inference import score_folder  # noqa: PLC0415 (start-up: --help answers without torch)

    result = score_folder(args.checkpoint, args.images, args.labels, out_dir=args.out, max_pixels=args.max_pixels,
                      split=args.split, label_indices=args.label_indices)
    print(f"{result['model']} on {result['n']} images: accuracy {result['accuracy']:.2%} "
          f"({result['seconds_per_image'] * 1000:.0f} ms per image)"
          + (f"; predictions.csv and metrics.json in {args.out}" if args.out else ""))
    return 0


def _reproduce(args) -> int:
    from ..study.runner import reproduce  # noqa: PLC0415 (start-up: --help answers without torch)

    if args.plan:
        from ..study.progress import planned_minutes, run_table  # noqa: PLC0415 (start-up: --help answers without torch)

        plan = planned_minutes(args.profile, args.runs)
        print(plan.to_markdown(index=False))
        total = plan.iloc[-1]
        most = " at most (each run's cap; the plateau rule stops most sooner)" if args.profile == "plateau" else ""
        print(f"\n{total['planned_min']:.0f} minutes ({total['planned_min'] / 60:.1f} h) of training and validation "
              f"planned{most} from the measured epoch times (reference/epoch_seconds.json); the notebooks' own "
              "work (test scoring, figures, 05_efficiency) comes on top.")
        if total["finished"] or total["measured_min"]:
            print(f"So far {total['finished']} of {total['runs']} runs finished and the runs clocked "
                  f"{total['measured_min']:.0f} minutes; with the rest at their caps, at most "
                  f"{total['at_most_min']:.0f} minutes ({total['at_most_min'] / 60:.1f} h) in all.")
        started = run_table(args.profile, args.runs)
        if len(started):
            print("\nThe runs started so far (rate_cut_after: epochs after which the rate was divided by 10; "
                  "recent_slope: the rise of the last epochs' validation along their line, in points, ± its error):\n")
            print(started.to_markdown(index=False))
        return 0
    if args.train_only:
        from ..study.runner import train_only  # noqa: PLC0415 (start-up: --help answers without torch)

        if args.force or args.results or args.cell_timeout:
            raise ValueError("--train-only renders nothing: --force, --results and --cell-timeout do not apply")
        finished = train_only(args.profile, args.only, Path(args.runs) if args.runs else None, args.device,
                              args.threads)
        print(f"--train-only: {finished} runs finished; the runner's notebooks render them")
        return 0
    outcomes = reproduce(profile=args.profile, only=args.only, force=args.force,
                         results_root=Path(args.results) if args.results else None,
                         runs_root=Path(args.runs) if args.runs else None, device=args.device,
                         threads=args.threads, cell_timeout_s=args.cell_timeout)
    return 1 if any(o["status"] == "failed" for o in outcomes) else 0


def add_commands(commands) -> None:
    tr = commands.add_parser("train", help="train the Variational Saccading model or a baseline on a task")
    tr.add_argument("--model", default="saccade", help=MODEL_HELP)
    tr.add_argument("--task", default=None, help=TASK_HELP)
    tr.add_argument("--images", default=None, metavar="DIR",
                    help="train on your own images: DIR holds one subfolder per class (or the files --manifest lists)")
    tr.add_argument("--manifest", default=None, metavar="FILE",
                    help="with --images: a CSV file,label[,split] listing the images (paths relative to DIR)")
    tr.add_argument("--out", required=True, help="run folder (checkpoints, history.csv, metrics.json); resumes")
    tr.add_argument("--recipe", default=None,
                    help=f"the study's model settings by name, one of {', '.join(RECIPE_NAMES)}: the first for the "
                         "two-digit tasks, the second for the paper's method where digits are small, the third "
                         "saccade_cells' own defaults (for its controls); --set goes on top")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="model setting, e.g. glimpses=4, loss.kl_weight=1")
    tr.add_argument("--train", action="append", metavar="KEY=VALUE", help="training setting, e.g. epochs=20, lr=1e-3")
    tr.add_argument("--record", default=None, metavar="DIR",
                    help="after training, copy history.csv, metrics.json, config.json and the command into DIR "
                         "(e.g. records/NAME)")
    tr.set_defaults(func=_train)

    p = commands.add_parser("predict", help="classify an image with a trained checkpoint")
    p.add_argument("image", help="image file (JPEG, PNG, TIFF…), or a folder of them (then --out)")
    p.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a training run")
    p.add_argument("--overlay", default=None, help="save the image with numbered saccades here")
    p.add_argument("--out", default=None, help="a folder's predictions.csv (and skipped.csv) go here")
    p.add_argument("--overlays", action="store_true", help="with a folder: an overlay per image in OUT/overlays")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help=MAX_PIXELS_HELP)
    p.set_defaults(func=_predict)

    ev = commands.add_parser("evaluate", help="score a trained checkpoint on a folder of image files of any size "
                                              "(PNG, JPEG, TIFF) listed in a file,label CSV")
    ev.add_argument("--checkpoint", required=True, help="a run's best.pt or last.pt")
    ev.add_argument("--images", required=True, help="the folder the CSV's file names are relative to")
    ev.add_argument("--labels", required=True, help="CSV with a header: file,label (a class name)")
    ev.add_argument("--label-indices", action="store_true",
                    help="the CSV's labels are class indices (0, 1, …) rather than the checkpoint's class names")
    ev.add_argument("--out", default=None, help="folder for predictions.csv and metrics.json")
    ev.add_argument("--split", default=None, choices=("train", "val", "test"),
                    help="only the rows of this split (a labels file with a split column, e.g. a run's split.csv)")
    ev.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help=MAX_PIXELS_HELP)
    ev.set_defaults(func=_evaluate)
    r = commands.add_parser("reproduce", help="run the study's notebooks with papermill into results/ "
                                              "(resumable; finished experiments are skipped)")
    r.add_argument("--profile", default="cpu", help="smoke (minutes, writes results-smoke/), cpu (default: "
                                                    "our 2-core machine, writes results/), plateau (Table 1's "
                                                    "cells trained to their plateau, writes results/plateau/) "
                                                    "or paper (a GPU, writes results-paper/)")
    r.add_argument("--only", nargs="+", metavar="NAME", help="experiments to run, e.g. 01_two_digit_sum 00_summary")
    r.add_argument("--force", action="store_true", help="rerun experiments whose results exist")
    r.add_argument("--device", default="", help="override the profile's device (cpu, cuda, auto)")
    r.add_argument("--threads", type=int, default=0,
                   help="override the profile's torch threads per run (default: the profile's, 2 on cpu and "
                        "plateau); e.g. 1 for two runners side by side")
    r.add_argument("--results", default=None, help="results folder (default: results/ for cpu, results-<profile>/ else)")
    r.add_argument("--runs", default=None, help="training runs folder (default: runs/)")
    r.add_argument("--cell-timeout", type=float, default=None, help="seconds a notebook cell may run (default: no limit)")
    r.add_argument("--plan", action="store_true", help="print each experiment's runs and planned minutes, run nothing "
                                                       "(cpu and plateau)")
    r.add_argument("--train-only", action="store_true",
                   help="train the experiments' runs and render nothing, leaving any run another process trains "
                        "to it: a second runner beside reproduce on the same experiments (its notebook waits for "
                        "the runs trained here)")
    r.set_defaults(func=_reproduce)
