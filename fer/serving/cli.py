"""The command-line pieces the serving commands (``fer.analyze``, ``fer.video``, the app) share: the model and
detector options, the batch options (one :class:`fer.serving.batch.BatchOptions`), and the many-files run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fer.core.cli import plural, progress
from fer.serving.batch import ENGINES, BatchOptions, ModelSpec

DEFAULT_MODEL_HELP = ("ONNX model (.onnx; default: $FER_MODEL, else the shipped fer2013_effnet_lite0.onnx) or exported learner "
                      "(.pkl; needs the training install, and loading a pickle runs code from the file, so use "
                      "exports/ or your own)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--model and the detector options (checked by :func:`check_model_options`)."""
    p.add_argument("--model", help=DEFAULT_MODEL_HELP)
    add_detector_options(p)


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """--detector, --min-face, --score, and the "not sure" rule's --min-confidence and --min-quality (checked by
    :func:`check_model_options`)."""
    from fer.serving.detect import DETECTORS

    p.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS,
                   help="face detector: YuNet (DNN, default) or OpenCV's Haar cascade")
    p.add_argument("--min-face", type=int, default=0, metavar="PX", help="ignore faces smaller than this (pixels)")
    p.add_argument("--score", type=float, metavar="S", help="YuNet's score threshold in (0, 1) (default 0.6)")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                   help="report a face as not sure (no label, probabilities kept) when its top probability is "
                        "under P (default %(default)s; 0: off; docs/not_sure.md measures the choice)")
    p.add_argument("--min-quality", type=float, default=0.0, metavar="Q",
                   help="report a face as not sure when its quality (size, detector score, roll, yaw, sharpness; "
                        "0-1) is under Q (default %(default)s; 0: off)")


def check_model_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop with argparse's message when ``--score`` or ``--min-face`` is out of range."""
    if args.score is not None and not 0 < args.score < 1:
        p.error(f"--score {args.score}: must be between 0 and 1")
    if args.min_face < 0:
        p.error(f"--min-face {args.min_face}: must be 0 or more")
    for option in ("min_confidence", "min_quality"):
        if not 0 <= getattr(args, option) <= 1:
            p.error(f"--{option.replace('_', '-')} {getattr(args, option)}: must be between 0 and 1")


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """The fields of :class:`fer.serving.batch.BatchOptions` as options (--files-from, --workers, --threads,
    --engine, --address, --resume, --overwrite, --failures; --csv, --every and --out are each tool's own):
    :func:`batch_options` reads them back."""
    g = p.add_argument_group("many files (see docs/batch.md)")
    g.add_argument("--files-from", action="append", default=[], type=Path, metavar="LIST",
                   help="a text file of paths, one a line (relative to its folder; # comments); repeatable")
    g.add_argument("--workers", type=int, default=1, metavar="N",
                   help="processes working side by side, each with its own model and detector (default 1)")
    g.add_argument("--threads", type=int, metavar="T",
                   help="threads per worker process (default: the cores divided by the workers; 1 on a cluster)")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local processes (default) or Dask distributed (pip install -e '.[cluster]')")
    g.add_argument("--address", metavar="ADDR",
                   help="a running Dask scheduler, e.g. tcp://host:8786 (implies --engine dask; default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local Dask cluster of --workers processes)")
    g.add_argument("--resume", action="store_true",
                   help="continue the --csv table of a run that stopped: finished files are skipped")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --csv table (and video outputs)")
    g.add_argument("--failures", type=Path, metavar="CSV",
                   help="the files that failed, with the reason (default: beside --csv, NAME.failures.csv)")


def batch_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> BatchOptions:
    """The :class:`fer.serving.batch.BatchOptions` of parsed arguments; a bad combination is ``p.error``."""
    options = BatchOptions(args.workers, args.threads, args.engine, args.address, getattr(args, "every", 1),
                           getattr(args, "out", None), getattr(args, "csv", None), args.failures, args.resume,
                           args.overwrite, list(args.files_from))
    try:
        options.check()
    except ValueError as e:
        p.error(str(e))
    return options


def model_spec(args: argparse.Namespace) -> ModelSpec:
    """How every worker loads the model the options name."""
    return ModelSpec.of(args.model, args.detector, args.min_face, args.score, args.min_confidence, args.min_quality)


def run_batch(options: BatchOptions, spec: ModelSpec, tasks: list, missing: list, noun: str = "files",
              json_path: Path | None = None, quiet: bool = False) -> int:
    """The many-files run both tools share: the table (``options.csv``, resumable), the engine, a progress bar,
    one line per file, a summary and the failures; exit status 0 (all read), 1 (some failed), 2 (nothing
    could be done), 130 (interrupted: ``--resume`` continues)."""
    from fer.core.fileio import write_json_atomic
    from fer.serving.batch import BatchError, classes_of, process
    from fer.serving.model_files import ModelLoadError, check_runtime
    from fer.serving.video import batch_analyzers

    outcomes, table, job = list(missing), None, options.job(spec, batch_analyzers())
    try:
        if spec.model:
            check_runtime(spec.model)  # a .pkl in the light install: one line, before any work
        table = options.table()
        for outcome in missing if table else ():
            table.add(outcome)
        todo = [t for t in tasks if table is None or t.file not in table.finished]
        if table and table.finished:
            print(f"resuming {options.csv}: {len(tasks) - len(todo)} of {len(tasks)} {noun} already done", file=sys.stderr)
        with options.engine_for() as engine:
            if not quiet:
                print(f"{len(todo)} {noun} {engine.describe()}, {job.threads} thread(s) each", file=sys.stderr)
            with progress(None, len(todo), noun, "file", quiet) as bar:
                for outcome in process(todo, job, engine, table):
                    outcomes.append(outcome)
                    bar.update()
                    if not quiet:
                        bar.write(outcome.line, file=sys.stdout)
    except (BatchError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted after {len(outcomes) - len(missing)} of {len(tasks)} {noun}"
              + (f"; the same command with --resume continues {options.csv}" if options.csv else ""), file=sys.stderr)
        return 130
    finally:
        if table:
            table.close()
        if json_path:
            columns = next((o.columns for o in outcomes if o.columns), None)
            write_json_atomic(json_path, {"model": str(spec.model or "default"),
                                          "classes": classes_of(columns) if columns else [],
                                          "files": [o.as_dict() for o in outcomes]})
    failed = [o for o in outcomes if o.error or o.problem]
    rows = sum(o.rows for o in outcomes)
    outputs = [p for p in (options.csv, json_path) if p] + ([table.failures_path] if table and failed else [])
    found = (plural(rows, "face") + " found" if all(o.kind == "photo" for o in outcomes)
             else plural(rows, "face row"))  # a video gives a row per analysed frame and face
    print(f"{sum(o.error is None for o in outcomes)} of {plural(len(outcomes), noun.removesuffix('s'))} read, {found}"
          + "".join(f" → {p}" for p in outputs), file=sys.stderr)
    if failed:
        print(f"{plural(len(failed), 'file')} failed:", *(f"  {o.error or o.problem}" for o in failed), sep="\n",
              file=sys.stderr)
    return 1 if failed else 0
