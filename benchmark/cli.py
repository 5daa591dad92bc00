"""Command line: python -m benchmark run | train | list | report | status | data check."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import shutil
import sys

DEFAULT_OUTPUT = pathlib.Path("results/runs/default")


class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit status 2."""


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done; 1 some cells failed, or the machine failed us (disk full, a file that cannot be
    written); 2 bad input (nothing ran); 130 interrupted. No traceback unless --debug."""
    from benchmark.execution.lock import FolderLocked

    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted: finished work is saved (each evaluated video; training up to its last checkpoint); "
              "run the same command again to resume", file=sys.stderr)
        return 130
    except (UsageError, FolderLocked, LookupError, ValueError, FileNotFoundError, ModuleNotFoundError) as error:
        _debug(args)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        _debug(args)
        print(f"error: {_os_error(error)}", file=sys.stderr)
        return 1
    except Exception as error:
        _debug(args)
        print(f"error: {type(error).__name__}: {error} (unexpected: run again with --debug for the traceback, and "
              "please report it)", file=sys.stderr)
        return 1


def _debug(args: argparse.Namespace) -> None:
    if args.debug:
        import traceback

        traceback.print_exc()


def _os_error(error: OSError) -> str:
    """An OSError that names its file (and says when the disk is full)."""
    import errno

    from benchmark.store import StoreError, write_failure

    if isinstance(error, StoreError) or not error.filename:
        return str(error)
    full = error.errno in (errno.ENOSPC, errno.EDQUOT)
    return str(write_failure(error, pathlib.Path(error.filename))) if full else str(error)


def build_parser() -> argparse.ArgumentParser:
    from benchmark.data.settings import PROTOCOLS
    from benchmark.execution.executors import EXECUTORS
    from benchmark.metrics import VC_RULES

    parser = argparse.ArgumentParser(prog="python -m benchmark", description=(
        "Benchmark harness for open-vocabulary video semantic segmentation (OV-VSS)."))
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="evaluate methods on dataset settings",
                              description="Evaluate every method on every dataset setting; finished cells are skipped.")
    run.add_argument("--methods", default="all", help="'all' or NAME,NAME,... (see `list methods`)")
    run.add_argument("--suite", default=None, metavar="NAME|FILE",
                     help="run the rows of a table file (with --methods: only those methods' rows): a built-in one "
                          "(table1, table2, table3, paper; see `list suites`) or your own .yaml; tiny stand-in models on "
                          "the synthetic data when its dataset is missing")
    run.add_argument("--datasets", default="all",
                     help="'all' (real datasets found under the data root, else synthetic) or NAME[:SETTING],...")
    run.add_argument("--protocol", default="intended", choices=PROTOCOLS,
                     help="label handling: the intended mapping or the authors' (see docs/command-line.md)")
    run.add_argument("--executor", default="debug", choices=EXECUTORS,
                     help="debug: in this process; local: each cell in its own process; slurm: SLURM jobs")
    run.add_argument("--workers", type=int, default=1, help="cells run at once by the local executor")
    run.add_argument("--train", action="store_true",
                     help="train the trainable methods given no --checkpoint first (reusing finished training runs), "
                          "then evaluate them with those weights")
    run.add_argument("--train-on", default=None, metavar="NAME[:SETTING]",
                     help="what --train trains on (default: synthetic:seen when only synthetic data is evaluated, "
                          "else vspw:seen)")
    slurm = run.add_argument_group("slurm executor")
    slurm.add_argument("--cluster-profile", default="default", metavar="NAME|PATH",
                       help="resources and habits of the cluster: slurm/NAME.yaml or a YAML file (default %(default)s)")
    slurm.add_argument("--slurm", action="append", default=[], metavar="KEY=VALUE",
                       help="change one cluster profile key for this run, e.g. --slurm partition=gpu (repeatable)")
    slurm.add_argument("--shards", type=int, default=1,
                       help="split each cell into this many jobs by video; the results merge exactly (default 1)")
    slurm.add_argument("--no-wait", action="store_true",
                       help="submit and return; `status DIR` follows the jobs, the same run command collects them")
    run.add_argument("--output", type=pathlib.Path, default=DEFAULT_OUTPUT, help="run folder (default %(default)s)")
    run.add_argument("--plugin", action="append", default=[], help="a .py file or module that defines methods (repeatable)")
    run.add_argument("--opt", action="append", default=[], metavar="NAME.KEY=VALUE", help="a method option (repeatable)")
    run.add_argument("--dataset-opt", action="append", default=[], metavar="NAME.KEY=VALUE",
                     help="a dataset option, e.g. synthetic.videos=8 (repeatable)")
    run.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                     help="weights a trainable method loads before evaluation (repeatable)")
    run.add_argument("--data-root", type=pathlib.Path, default=None,
                     help="folder holding the datasets (default: $BENCHMARK_DATA_ROOT or datasets/)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--seeds", type=int, default=1, metavar="N",
                     help="with --train: train and evaluate N seeds (--seed, --seed + 1, ...) of each trained "
                          "configuration; tables show their mean ± standard deviation")
    run.add_argument("--vc-rule", default="vspw", choices=list(VC_RULES),
                     help="video-consistency windows: VSPW's official loop, the authors' copy, or every window")
    run.add_argument("--save-predictions", action="store_true",
                     help="write every annotated frame's label map under DIR/predictions/<cell>/, in each id space the "
                          "dataset's own evaluation tools read (VSPW: reduced and raw ids; Cityscapes: labelIds and "
                          "trainIds); finished cells without them are computed again")
    run.add_argument("--dry-run", action="store_true",
                     help="print the plan (trainings, cells, their weights, the SLURM jobs) and run nothing")
    run.add_argument("--force", action="store_true", help="recompute finished cells and discard partial state")
    run.add_argument("--reuse-stale", action="store_true",
                     help="take finished cells as done even when their method's code changed since (by default they "
                          "are computed again)")
    run.add_argument("--wait-lock", action="store_true",
                     help="when another driver is running into --output, wait for it instead of refusing")
    run.add_argument("--tracking-uri", default=None, metavar="URI",
                     help="mlflow store the finished run is logged to (default: $MLFLOW_TRACKING_URI, else "
                          "sqlite results/mlflow.db)")
    run.add_argument("--no-tracking", action="store_true", help="do not log the run to mlflow")
    run.set_defaults(handler=cmd_run)

    train = commands.add_parser(
        "train", help="train a trainable method on a dataset's seen classes",
        description="Train a method on the training split of a dataset setting (default: the seen classes). "
                    "Checkpoints go to the output folder; running the same command again resumes from the last one.")
    train.add_argument("--method", required=True, help="a trainable method (see `list methods`)")
    train.add_argument("--dataset", default="vspw:seen", help="NAME[:SETTING] (default %(default)s; synthetic:seen needs no data)")
    train.add_argument("--protocol", default="intended", choices=PROTOCOLS,
                       help="label handling; `official` also drops the split's last class from training, as the authors' code does")
    train.add_argument("--opt", action="append", default=[], metavar="NAME.KEY=VALUE",
                       help="a method option, including its training recipe, e.g. clip-cost-volume.iterations=2000")
    train.add_argument("--dataset-opt", action="append", default=[], metavar="NAME.KEY=VALUE")
    train.add_argument("--plugin", action="append", default=[], help="a .py file or module that defines methods")
    train.add_argument("--data-root", type=pathlib.Path, default=None)
    train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--output", type=pathlib.Path, default=None,
                       help="training folder (default results/train/METHOD__DATASET-SETTING__PROTOCOL__HASH)")
    train.add_argument("--fresh", action="store_true", help="discard the folder's saved state and start again")
    train.add_argument("--reuse-stale", action="store_true",
                       help="take the folder's weights (or resume from them) even when the method's code changed since "
                            "it started")
    train.add_argument("--wait-lock", action="store_true",
                       help="when another driver is training into the folder, wait for it instead of refusing")
    train.set_defaults(handler=cmd_train)

    listing = commands.add_parser("list", help="list methods, datasets or suites")
    listing.add_argument("what", choices=["methods", "datasets", "suites", "options"])
    listing.add_argument("method", nargs="?", help="with `options`: the method whose options to list")
    listing.add_argument("--plugin", action="append", default=[], help="also list the methods this file or module defines")
    listing.add_argument("--data-root", type=pathlib.Path, default=None)
    listing.set_defaults(handler=cmd_list)

    report = commands.add_parser(
        "report", help="print and write the tables and plots of a run folder",
        description="Build the paper's tables (with the published numbers beside) and the extra tables from the "
                    "finished cells of DIR, as Markdown, CSV and LaTeX in DIR/tables/, and the plots in DIR/plots/.")
    report.add_argument("dir", type=pathlib.Path)
    report.add_argument("--log", action="store_true",
                        help="also log the run folder to mlflow (runs already logged are not logged again)")
    report.add_argument("--tracking-uri", default=None, metavar="URI",
                        help="mlflow store for --log (default: $MLFLOW_TRACKING_URI, else sqlite results/mlflow.db)")
    report.add_argument("--resamples", type=int, default=None, metavar="N",
                        help="bootstrap resamples of the tables' intervals (default: what the cells recorded, 1000)")
    report.add_argument("--confidence", type=float, default=None, metavar="LEVEL",
                        help="two-sided level of the intervals (default 0.95)")
    report.add_argument("--bootstrap-seed", type=int, default=None, metavar="N", help="seed of the resamples (default 0)")
    report.set_defaults(handler=cmd_report)

    status = commands.add_parser("status", help="show the state of every cell of a run folder (and of its SLURM jobs)")
    status.add_argument("dir", type=pathlib.Path)
    status.set_defaults(handler=cmd_status)

    ui = commands.add_parser("ui", help="browse the runs logged to mlflow in the mlflow UI",
                             description="Serve the mlflow UI on the tracking store until Ctrl-C.")
    ui.add_argument("--tracking-uri", default=None, metavar="URI",
                    help="mlflow tracking store (default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db)")
    ui.add_argument("--host", default="127.0.0.1",
                    help="interface to listen on (default %(default)s: this machine only; reach it from elsewhere "
                         "with an SSH tunnel)")
    ui.add_argument("--port", type=int, default=5000, help="default %(default)s")
    ui.set_defaults(handler=cmd_ui)

    predict = commands.add_parser(
        "predict", help="segment your own video (or folder of frames) with your own class names",
        description="Run one method on a video file or a folder of frames with the class names you give, and write "
                    "each chosen frame's label map (palette PNG), an overlay video and predictions.json.")
    predict.add_argument("input", type=pathlib.Path, help="a video file (mp4, mov, webm, ...) or a folder of frames")
    predict.add_argument("--method", required=True, help="a registered or plugin method (see `list methods`)")
    names = predict.add_mutually_exclusive_group(required=True)
    names.add_argument("--classes", help='the class names, comma-separated: "dog, frisbee, person"')
    names.add_argument("--classes-file", type=pathlib.Path, help="a file of class names, one per line (or commas)")
    names.add_argument("--dataset", metavar="NAME[:SETTING]",
                       help="the class names of a dataset setting (e.g. vspw:unseen); each map is also written in the "
                            "dataset's own ids under ids/<format>/, as `run --save-predictions` writes them")
    predict.add_argument("--every", type=int, default=1, metavar="K", help="segment every K-th frame (default 1)")
    predict.add_argument("--frames", default=None, metavar="A:B",
                         help="segment frames A up to B (from 0; video methods still see the frames before A)")
    predict.add_argument("--output", type=pathlib.Path, default=None,
                         help="output folder (default results/predict/<input name>)")
    predict.add_argument("--plugin", action="append", default=[], help="a .py file or module that defines methods")
    predict.add_argument("--opt", action="append", default=[], metavar="NAME.KEY=VALUE", help="a method option")
    predict.add_argument("--checkpoint", default=None, metavar="PATH", help="the method's weights")
    predict.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    predict.set_defaults(handler=cmd_predict)

    verify = commands.add_parser(
        "verify", help="check a method against outputs its reference code recorded (a fixture folder)",
        description="Run the method through the runner on a reference folder (e.g. made by the authors' code on "
                    "rule-made weights) and compare its outputs frame by frame within the folder's tolerances. "
                    "Exit status 0: all frames within; 1: some are not (named); 2: a malformed folder.")
    verify.add_argument("method", help="the method the folder checks, e.g. ov2vss-authors")
    verify.add_argument("--fixture", type=pathlib.Path, required=True, help="the reference folder")
    verify.add_argument("--fixture-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="a choice of the method's check, e.g. text=stored (ov2vss-authors: use the folder's "
                             "text features instead of encoding the prompts) (repeatable)")
    verify.add_argument("--work", type=pathlib.Path, default=None,
                        help="keep the rule-made checkpoint, the dataset folder and the run here (default: a "
                             "temporary folder, deleted)")
    verify.add_argument("--device", default="cpu",
                        help="where the method runs (default %(default)s: the reference tolerances come from CPU runs)")
    verify.add_argument("--plugin", action="append", default=[], help="a .py file or module that defines methods")
    verify.set_defaults(handler=cmd_verify)

    data = commands.add_parser("data", help="inspect a dataset copy")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    check = data_commands.add_parser(
        "check", help="read every file of a dataset and report counts, class pixels and problems",
        description="Decode every frame and mask of a dataset copy as a run reads them; list every problem with "
                    "its file. Exit status 1 when anything is wrong.")
    check.add_argument("name", help="dataset name (see `list datasets`)")
    check.add_argument("--root", type=pathlib.Path, default=None,
                       help="the dataset's folder, or the data root holding it (default: $BENCHMARK_DATA_ROOT or datasets/)")
    check.add_argument("--split", action="append", default=[], help="check only this split (repeatable; default: all)")
    check.add_argument("--dataset-opt", action="append", default=[], metavar="NAME.KEY=VALUE",
                       help="a dataset option, e.g. cityscapes.layout=frames (repeatable)")
    check.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="threads decoding files (default %(default)s)")
    check.add_argument("--speed", action="store_true", help="also time the reader alone (frames per second)")
    check.add_argument("--speed-frames", type=int, default=300, help="frames the speed test reads (default %(default)s)")
    check.add_argument("--json", type=pathlib.Path, default=None, help="also write the report to this JSON file")
    check.set_defaults(handler=cmd_data_check)
    return parser


def load_plugins(given: list[str]) -> list[str]:
    """Load each --plugin; return them with files as absolute paths, as other processes need them."""
    from benchmark import registry

    plugins = [str(pathlib.Path(p).resolve()) if pathlib.Path(p).exists() else p for p in given]
    for plugin in plugins:
        registry.load_plugin(plugin)
    return plugins


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark import plan, registry, saved_predictions
    from benchmark.code_identity import changed_files, method_code
    from benchmark.execution import executors
    from benchmark.execution.lock import driver_lock
    from benchmark.runner import RunContext, stale
    from benchmark.store import RunStore

    request = _request(args, evaluate=True)
    slurm = _slurm_options(args)
    made = plan.make(request)
    if args.dry_run:
        from benchmark import dry_run

        print("\n".join(dry_run.describe(made, args.output, args.executor, slurm, args.device)))
        return 0
    for note in made.notes:
        print(note)
    with driver_lock(args.output, args.wait_lock):
        store = RunStore(args.output)
        store.add_to_plan([c.to_dict() for c in made.cells], {
            "argv": sys.argv[1:], "plugins": request.plugins, "data_root": request.data_root, "device": args.device,
            "weights": made.weights, **({"tables": made.tables} if made.tables else {})})
        if args.force:  # here, not in the cells' jobs: a requeued job must resume, not start again
            for cell in made.cells:
                store.result_path(cell.id).unlink(missing_ok=True)
                store.clear_partial(cell.id)
                shutil.rmtree(saved_predictions.folder(store, cell.id), ignore_errors=True)
        if not args.reuse_stale:
            _refuse_stale_trainings(made.trainings, "delete the folder to train again")
        codes = {name: method_code(registry.get(name)) for name in {c.method for c in made.cells}}
        finished = {c.id: r for c in made.cells if (r := store.read_result(c.id) or {}).get("status") == "done"}
        changed = [c for c in made.cells if c.id in finished and stale(finished[c.id], codes[c.method])]
        todo = [c for c in made.cells if c.id not in finished or not args.reuse_stale and c in changed
                or args.save_predictions and not saved_predictions.complete(store, c.id)]
        print(f"{len(made.cells)} cells ({len(made.cells) - len(todo)} finished already) -> {args.output}")
        if changed:
            methods = sorted({c.method for c in changed})
            files = sorted({f for c in changed for f in changed_files(finished[c.id]["provenance"]["method_code"],
                                                                       codes[c.method])})
            print(f"{len(changed)} finished cells of {', '.join(methods)} were computed by other code than now "
                  f"({', '.join(files[:6])}{' ...' if len(files) > 6 else ''} changed): "
                  + ("kept, as --reuse-stale asks" if args.reuse_stale else
                     "computing them again (--reuse-stale keeps their old results)"))
        context = RunContext(str(args.output.resolve()), request.plugins, request.data_root, args.device,
                             args.save_predictions, args.reuse_stale,
                             sharing=max(1, args.workers) if args.executor == "local" else 1)
        results = executors.execute(todo, context, args.executor, args.workers, _announce, made.trainings, slurm)
        if results is None:  # submitted without waiting
            return 0
        failed = [r for r in results if r.get("status") != "done"]
        for result in failed:
            print(f"FAILED {result['cell']['id']}: {result.get('error', {}).get('message')}", file=sys.stderr)
        try:
            logged = _report(args.output, [c.id for c in made.cells], args.tracking_uri if not args.no_tracking else False,
                             redraw=bool(todo))
        except OSError as error:  # the cells' results are written; only the tables or plots are not
            print(f"error: the report could not be written: {_os_error(error)}; the cells' results are kept, "
                  f"rebuild it with `python -m benchmark report {args.output}`", file=sys.stderr)
            return 1
    if failed:
        print(f"{len(failed)} of {len(made.cells)} cells failed (see FAILED above); the others are saved",
              file=sys.stderr)
    return 1 if failed or not logged else 0  # a failed log said what to do: the results themselves are complete


def _request(args: argparse.Namespace, evaluate: bool):
    """The planning request of `run` or `train`, from arguments checked here (files, devices, flags)."""
    from benchmark import plan
    from benchmark.runtime import resolve_device

    plugins = load_plugins(args.plugin)
    try:
        resolve_device(args.device)
    except RuntimeError as error:
        raise UsageError(f"--device {args.device!r}: {error}") from error
    data_root = str(args.data_root.resolve()) if args.data_root else None
    common = dict(protocol=args.protocol, options=plan.parse_assignments(args.opt, "--opt"),
                  dataset_options=plan.parse_assignments(args.dataset_opt, "--dataset-opt"), seed=args.seed,
                  seeds=getattr(args, "seeds", 1), data_root=data_root, plugins=plugins, device=args.device, argv=sys.argv[1:])
    if not evaluate:
        return plan.Request(methods=[args.method], train=True, evaluate=False, train_on=args.dataset, **common)
    checkpoints = {}
    for item in args.checkpoint:
        name, eq, path = item.partition("=")
        if not (eq and name and path):
            raise UsageError(f"--checkpoint {item!r}: expected NAME=PATH")
        if not pathlib.Path(path).is_file():
            raise UsageError(f"--checkpoint {item!r}: no file {path}")
        checkpoints[name] = str(pathlib.Path(path).resolve())
    if args.executor == "slurm" and data_root is None:
        from benchmark.data.cards import default_data_root

        # jobs run in a copy of the repository, so the default data root is named here, for cells and trainings
        common["data_root"] = str(default_data_root().resolve())
    methods = None if args.methods == "all" else [m.strip() for m in args.methods.split(",") if m.strip()]
    datasets = None if args.datasets == "all" else [d.strip() for d in args.datasets.split(",") if d.strip()]
    return plan.Request(methods=methods, datasets=datasets, suite=args.suite, checkpoints=checkpoints,
                        vc_rule=args.vc_rule, train=args.train, train_on=args.train_on, **common)


def _slurm_options(args: argparse.Namespace):
    from benchmark.execution import executors, profiles

    if args.shards < 1:
        raise UsageError(f"--shards {args.shards}: give 1 or more jobs per cell")
    if args.executor != "slurm":
        if args.shards != 1 or args.no_wait or args.slurm:
            raise UsageError("--shards, --no-wait and --slurm apply to --executor slurm only")
        return None
    return executors.SlurmOptions(profiles.load(args.cluster_profile, args.slurm), args.shards, not args.no_wait)


def _announce(result: dict) -> None:
    """One line per finished cell."""
    metrics = result.get("metrics") or {}
    shown = f"mIoU {metrics['mIoU']:.2f}" if metrics.get("mIoU") is not None else result.get("error", {}).get("message", "")
    if result.get("method_counts"):
        shown += f" ({', '.join(f'{k} {v}' for k, v in result['method_counts'].items())})"
    print(f"[{result['status']}] {result['cell']['id']}: {shown}", flush=True)


def _refuse_stale_trainings(trainings, fix: str) -> None:
    """UsageError when a training folder was started by other code of its method than now: its weights
    (or the state it would resume from) are not what this code trains."""
    from benchmark import registry
    from benchmark.code_identity import method_code
    from benchmark.execution.training import changed_code

    for planned in trainings:
        folder = pathlib.Path(planned.context.folder)
        changed = changed_code(folder, method_code(registry.get(planned.training.method)))
        if changed:
            raise UsageError(f"training {folder} was made by other code of {planned.training.method} than now "
                             f"({', '.join(changed[:6])} changed since): {fix}, or keep its weights with --reuse-stale")


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from benchmark import plan
    from benchmark.execution.lock import driver_lock
    from benchmark.execution.training import TRAINED, run_training

    planned = plan.make(_request(args, evaluate=False)).trainings[0]
    folder = args.output.resolve() if args.output else pathlib.Path(planned.context.folder)
    with driver_lock(folder, args.wait_lock):
        if not (args.fresh or args.reuse_stale):
            _refuse_stale_trainings([replace(planned, context=replace(planned.context, folder=str(folder)))],
                                    "train again from scratch with --fresh")
        if args.fresh:
            for stale in ("last.pt", "loss.csv", "final.pt", TRAINED):
                (folder / stale).unlink(missing_ok=True)
        checkpoint = run_training(planned.training.to_dict(), replace(planned.context, folder=str(folder)))
    given = "".join(f" --opt {item}" for item in args.opt)
    print(f"checkpoint: {checkpoint}\nloss log: {folder / 'loss.csv'}\nevaluate with: python -m benchmark run "
          f"--methods {args.method}{given} --checkpoint {args.method}={checkpoint}")
    return 0


def _list_options(args: argparse.Namespace) -> int:
    """Each option of a method: its type, its default and its help (`--opt NAME.KEY=VALUE` sets it)."""
    from benchmark import options, registry

    if not args.method:
        raise UsageError("list options: name the method, e.g. `python -m benchmark list options sam-clip`")
    for plugin in args.plugin:
        registry.load_plugin(plugin)
    try:
        cls = registry.get(args.method)
    except registry.UnknownMethodError as error:
        raise UsageError(str(error)) from error
    types, _ = options.method_types(cls)
    defaults = cls.default_options()
    if not defaults:
        print(f"{args.method} takes no options")
    for key, default in defaults.items():
        shown = default if isinstance(default, str) else json.dumps(default)  # as --opt takes it (YAML)
        print(f"--opt {args.method}.{key}={shown}  ({options.describe(types[key])})")
        if cls.option_help.get(key):
            print(f"      {cls.option_help[key]}")
    print("meanings and recipes: docs/methods.md")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from benchmark import registry

    if args.what == "methods":
        for plugin in args.plugin:
            registry.load_plugin(plugin)
        for name, source in registry.available().items():
            print(f"{name:24s} {registry.describe(name)}  [{source}]")
        return 0
    if args.what == "options":
        return _list_options(args)
    if args.what == "suites":
        from benchmark import suites

        for name in suites.builtin():
            suite = suites.find(name)
            print(f"{name:12s} {', '.join(t.name for t in suite.tables) if len(suite.tables) > 1 else suite.tables[0].title}"
                  f"  [{suite.path}]")
        return 0
    from benchmark.data import catalog

    for name in catalog.DATASETS:
        dataset = catalog.reader(name)
        card = dataset.card
        where = "generated on first use" if name == "synthetic" else (
            str(dataset.locate(args.data_root) or "not found under the data root"))
        split = f", {card['num_seen']} seen" if card.get("num_seen") else ""
        print(f"{name:12s} settings {', '.join(card['settings'])} (default {card['default_setting']}); "
              f"{len(card['classes'])} classes{split}; {where}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if not (args.dir / "cells").is_dir():
        raise UsageError(f"{args.dir} has no cells/ folder; pass the --output folder of a run")
    from benchmark.uncertainty import Bootstrap

    given = {"resamples": args.resamples, "confidence": args.confidence, "seed": args.bootstrap_seed}
    bootstrap = Bootstrap(**{k: v for k, v in given.items() if v is not None}) if any(
        v is not None for v in given.values()) else None
    return 0 if _report(args.dir, None, args.tracking_uri if args.log else False, bootstrap) else 1


def _report(output: pathlib.Path, cell_ids: list[str] | None, tracking_uri: str | None | bool,
            bootstrap=None, redraw: bool = True) -> bool:
    """Write and print the tables (intervals by `bootstrap`, default the cells' own), draw the plots,
    and log to mlflow unless `tracking_uri` is False. With `cell_ids`, the table of every cell shows
    only those (a run's own cells). `redraw=False`: keep tables and plots drawn from exactly what is
    there now (print them again). False when logging failed (what to do is printed)."""
    import shlex

    from benchmark.reporting import freshness, plots, tables, tracking
    from benchmark.store import RunStore

    store = RunStore(output)
    inputs = freshness.fingerprint(store) if bootstrap is None else None  # other intervals: drawn, never kept
    stamp = freshness.unchanged(store, inputs) if inputs and not redraw else None
    if stamp is not None:
        for name in stamp["headline"]:
            print((store.tables_dir / f"{name}.md").read_text())
        print(f"tables and plots in {output} are unchanged: nothing they are drawn from changed since "
              f"{stamp['time']} (`python -m benchmark report {output}` draws them again)")
    else:
        report = tables.write_report(output, bootstrap)
        for table in report.tables:
            if table.name == "cells" and cell_ids is not None:
                table.shown = table.shown[table.data["cell"].isin(cell_ids).to_numpy()]
            if table.headline:
                print(table.markdown())
        print(f"tables: {', '.join(t.name for t in report.tables)} in {output / 'tables'} (.md, .csv, .tex)")
        drawn = plots.write_plots(output, report.labels, report.rows)
        if drawn:
            print(f"plots: {', '.join(p.name for p in drawn)} in {output / 'plots'}")
        if inputs:
            written = [store.tables_dir / f"{t.name}{suffix}" for t in report.tables for suffix in (".md", ".csv", ".tex")]
            freshness.record(store, inputs, [t.name for t in report.tables if t.headline], written + drawn)
    if tracking_uri is False:
        return True
    uri = tracking_uri or tracking.default_uri()
    try:
        logged = tracking.log_run(output, uri)
    except tracking.TrackingError as error:
        again = shlex.join(["python", "-m", "benchmark", "report", str(output), "--log",
                            *(["--tracking-uri", uri] if tracking_uri else [])])
        print(f"mlflow: {error}\nthe results on disk are complete; once the store is fixed or reachable, log them "
              f"with `{again}` (or to another store with `--tracking-uri URI`)", file=sys.stderr)
        return False
    print(f"mlflow: {logged['parents']} parent and {logged['children']} cell runs logged to {uri} "
          f"({logged['skipped']} logged before); browse with `python -m benchmark ui`")
    return True


def cmd_status(args: argparse.Namespace) -> int:
    from benchmark.execution import status

    found, note = status.survey(args.dir)
    if note:
        print(note)
    print(status.format_rows(found))
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from benchmark.reporting import tracking

    if tracking.port_in_use(args.host, args.port):
        raise UsageError(f"port {args.port} on {args.host} is in use (an mlflow UI running already?); "
                         "pick another with --port")
    uri = args.tracking_uri or tracking.default_uri()
    database = tracking.sqlite_path(uri)
    if database is not None and not database.exists():
        print(f"no mlflow store at {database} yet: creating an empty one, which `run` then logs into", flush=True)
    try:
        tracking.ensure_store(uri)  # here, not in the server, which would migrate a new store in place
    except tracking.TrackingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    page = tracking.runs_page(uri, args.host, args.port)
    print(f"mlflow UI for {uri}: {page}{'' if '#' in page else ' (no run logged yet)'} (Ctrl-C stops it)", flush=True)
    return tracking.serve_ui(uri, args.host, args.port)


def cmd_predict(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from benchmark import plan, predict, registry
    from benchmark.data.footage import Selection, open_footage
    from benchmark.interface import TrainableMethod
    from benchmark.progress import Progress
    from benchmark.runtime import resolve_device, set_threads

    load_plugins(args.plugin)
    threads = set_threads()
    if args.classes_file is not None and not args.classes_file.is_file():
        raise UsageError(f"--classes-file {args.classes_file}: no such file")
    label_formats, card_map = [], None
    if args.dataset is not None:
        from benchmark.data import catalog

        try:
            name, setting = catalog.parse(args.dataset)
            reader = catalog.reader(name)
            setting = reader.setting(setting or reader.card["default_setting"])
        except ValueError as error:
            raise UsageError(f"--dataset {args.dataset!r}: {error}") from error
        vocabulary, label_formats, card_map = setting.vocabulary, reader.label_formats(), setting.card_map
    else:
        text = args.classes if args.classes is not None else args.classes_file.read_text()
        vocabulary = predict.parse_classes(text, "--classes" if args.classes is not None else str(args.classes_file))
    options = plan.parse_assignments(args.opt, "--opt")
    stray = sorted(set(options) - {args.method})
    if stray:
        raise UsageError(f"--opt names {stray}; this runs only {args.method}")
    resolved = plan.resolve_options(args.method, options)
    cls = registry.get(args.method)
    method = registry.create(args.method, **resolved)
    checkpoint = args.checkpoint
    if checkpoint is None and issubclass(cls, TrainableMethod) and cls.needs_checkpoint(resolved):
        checkpoint = cls.default_checkpoint(resolved)
        if checkpoint is None:
            raise UsageError(f"{args.method} needs trained weights for these options: pass --checkpoint PATH "
                             f"(train them with `python -m benchmark train --method {args.method}`)")
    if checkpoint is not None:
        if not pathlib.Path(checkpoint).is_file():
            raise UsageError(f"--checkpoint {checkpoint}: no such file")
        method.load(pathlib.Path(checkpoint))
    output = args.output or pathlib.Path("results/predict") / args.input.stem
    with tempfile.TemporaryDirectory(prefix="ovvss-footage-") as scratch:
        started = time.perf_counter()
        video, footage = open_footage(args.input, Selection.parse(args.frames, args.every), pathlib.Path(scratch),
                                      ahead="all" if method.video else "annotated")
        footage["decode_s"] = time.perf_counter() - started
        print(f"{args.method} on {args.input}: {len(video.annotated)} of {footage['frames']} frames, "
              f"{len(vocabulary)} names -> {output}", flush=True)
        progress = Progress(len(video.annotated), args.input.name)
        summary = predict.predict(method, video, vocabulary, output, resolve_device(args.device),
                                  {**footage, "checkpoint": checkpoint, "threads": threads}, progress, label_formats,
                                  card_map)
        progress.close()
    present = sorted({name for frame in summary["frames"] for name in frame["areas"]} - {"none"})
    print(f"wrote {len(summary['frames'])} label maps (labels/), overlay.mp4 and predictions.json to {output}; "
          f"names found: {', '.join(present) or 'none'}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from benchmark import verify

    load_plugins(args.plugin)
    choices = {}
    for item in args.fixture_opt:
        key, eq, value = item.partition("=")
        if not (eq and key):
            raise UsageError(f"--fixture-opt {item!r}: expected KEY=VALUE, e.g. text=stored")
        choices[key] = value
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    comparison, _ = verify.verify(args.method, args.fixture, args.work, args.device, **choices)
    print(verify.format_comparison(comparison))
    return 1 if comparison.failed else 0


def cmd_data_check(args: argparse.Namespace) -> int:
    from benchmark import plan
    from benchmark.data import catalog, check

    options = plan.parse_assignments(args.dataset_opt, "--dataset-opt")
    stray = sorted(set(options) - {args.name})
    if stray:
        raise UsageError(f"--dataset-opt names {stray}; this checks only {args.name}")
    dataset = catalog.reader(args.name, options.get(args.name))
    root = dataset.locate(args.root)
    if root is None:
        raise dataset.not_found(args.root)
    report = check.check(dataset, root, args.split or None, args.workers)
    print(check.format_report(report), flush=True)
    speed = None
    if args.speed and not report.ok:
        print("\nreader speed not measured: fix the problems above first")
    elif args.speed:
        speed_split = dataset.split if dataset.split in report.splits else next(iter(report.splits), dataset.split)
        speed = check.measure_speed(dataset, root, speed_split, args.speed_frames)
        print("\n" + check.format_speed(speed))
    if args.json:
        args.json.write_text(json.dumps({**report.to_dict(), "speed": speed}, indent=1))
    return 0 if report.ok else 1
