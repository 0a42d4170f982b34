"""Benchmark commands: each writes its measurements to results/benchmarks/ (or runs/efficiency/)."""
from __future__ import annotations

import json

from . import parse_settings


def _bench_generator(args) -> int:
    from ..bench import generator  # noqa: PLC0415 (start-up: --help answers without torch)

    result = generator.run(n=args.n, repeats=args.repeats, threads=args.threads)
    print(json.dumps(result["rows"], indent=1))
    return 0


def _bench_throughput(args) -> int:
    from ..bench import throughput  # noqa: PLC0415 (start-up: --help answers without torch)

    variants = {}
    for text in args.variant or ["default:"]:
        name, _, settings = text.partition(":")
        variants[name] = parse_settings([s for s in settings.split(",") if s])
    result = throughput.run(threads=args.threads, repeats=args.repeats, steps=args.steps, cases=args.cases,
                            model_settings=parse_settings(args.set or []), variants=variants, out=args.out)
    print(throughput.markdown(result))
    print(f"written to {result['out']}")
    return 0


def _bench_predict(args) -> int:
    from ..bench import predict  # noqa: PLC0415 (start-up: --help answers without torch)

    result = predict.run(threads=args.threads, repeats=args.repeats, out_dir=args.out)
    print(predict.markdown(result))
    return 0


def _bench_pyramid(args) -> int:
    from ..bench import pyramid  # noqa: PLC0415 (start-up: --help answers without torch)

    result = pyramid.run(args.checkpoint, sides=tuple(args.sides), limit=args.limit, cost_files=args.cost_files,
                         repeats=args.repeats, threads=args.threads, resnet_checkpoint=args.resnet_checkpoint,
                         out=args.out)
    print(pyramid.markdown(result))
    print(f"written to {result['out']}")
    return 0


def _bench_time_to_accuracy(args) -> int:
    from ..study import time_to_accuracy  # noqa: PLC0415 (start-up: --help answers without torch)

    result = time_to_accuracy.run(cases=args.cases, seeds=tuple(args.seeds), out=args.out)
    print(time_to_accuracy.markdown(result))
    print(f"written to {result['out']}")
    return 0


def _bench(args) -> int:
    from ..bench import efficiency  # noqa: PLC0415 (start-up: --help answers without torch)

    result = efficiency.run(device=args.device, sides=tuple(args.sides), threads=args.threads,
                            repeats=args.repeats, out_dir=args.out, quick=args.quick)
    print(efficiency.markdown(result))
    print(f"written to {result['out_dir']}/efficiency_{result['device_tag']}.*")
    return 0


def add_commands(commands) -> None:
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
