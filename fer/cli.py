"""What every command-line tool shares: log output, the known dependency warnings silenced, the model and
detector options, loading the model with clear errors, progress bars, and the many-files run of
``fer.analyze`` and ``fer.video`` (:func:`run_batch`).

Library modules log through :mod:`logging` (``logging.getLogger(__name__)``) and never print; the tools
call :func:`configure_logging` so those messages reach the user.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fer.quiet import silence_known_warnings


def configure_logging(verbose: bool = False) -> None:
    """Send ``fer`` log messages to stdout as plain lines (debug ones too with ``verbose``) and silence the
    dependency warnings users cannot act on (:mod:`fer.quiet`). The module run as ``python -m fer.NAME`` logs
    as ``__main__``, not ``fer.NAME``: its messages are sent the same way."""
    silence_known_warnings()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("fer", "__main__"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.propagate = False


DEFAULT_MODEL_HELP = ("ONNX model (.onnx; default: the shipped exports/fer2013_effnet_lite0.onnx) or exported learner "
                      "(.pkl; needs the training install, and loading a pickle runs code from the file, so use "
                      "exports/ or your own)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """--model and the detector options (checked by :func:`check_model_options`)."""
    p.add_argument("--model", help=DEFAULT_MODEL_HELP)
    add_detector_options(p)


def add_detector_options(p: argparse.ArgumentParser) -> None:
    """--detector, --min-face, --score (checked by :func:`check_model_options`)."""
    from fer.detect import DETECTORS

    p.add_argument("--detector", default=DETECTORS[0], choices=DETECTORS,
                   help="face detector: YuNet (DNN, default) or OpenCV's Haar cascade")
    p.add_argument("--min-face", type=int, default=0, metavar="PX", help="ignore faces smaller than this (pixels)")
    p.add_argument("--score", type=float, metavar="S", help="YuNet's score threshold in (0, 1) (default 0.6)")


def check_model_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.score is not None and not 0 < args.score < 1:
        p.error(f"--score {args.score}: must be between 0 and 1")
    if args.min_face < 0:
        p.error(f"--min-face {args.min_face}: must be 0 or more")


def progress(iterable, total: int | None = None, desc: str = "", unit: str = "it", disable: bool = False):
    """A progress bar on stderr (tqdm); with ``iterable=None``, one to advance by hand (``bar.update()``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, dynamic_ncols=True)


def add_batch_options(p: argparse.ArgumentParser) -> None:
    """Many inputs at once: --files-from, --workers, --threads, --engine, --address, --resume, --overwrite,
    --failures (checked by :func:`check_batch_options`; run by :func:`run_batch`)."""
    from fer.batch import ENGINES

    g = p.add_argument_group("many files (see README: Batch analysis)")
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


def check_batch_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.workers < 1:
        p.error(f"--workers {args.workers}: must be 1 or more")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads {args.threads}: must be 1 or more")
    if args.resume and not args.csv:
        p.error("--resume continues a table: pass the --csv of the run to continue")
    if args.resume and args.overwrite:
        p.error("--resume and --overwrite: choose one")
    if args.failures and not args.csv:
        p.error("--failures goes with --csv")


def batch_threads(args: argparse.Namespace) -> int:
    """--threads, else the cores divided by the local workers; 1 on a running cluster (each of its worker
    threads analyses one file)."""
    import os

    from fer.batch import DASK_ENV, default_threads

    remote = args.address or (args.engine == "dask" and os.environ.get(DASK_ENV))
    return args.threads or (1 if remote else default_threads(args.workers))


def plural(n: int, noun: str) -> str:
    """``1 face``, ``3 faces``."""
    return f"{n} {noun}{'s' * (n != 1)}"


def run_batch(args: argparse.Namespace, tasks: list, missing: list, options, noun: str = "files",
              json_path: Path | None = None) -> int:
    """The many-files run both tools share: the table (``args.csv``, resumable), the engine, a progress bar,
    one line per file, a summary and the failures; exit status 0 (all read), 1 (some failed), 2 (nothing
    could be done), 130 (interrupted: ``--resume`` continues)."""
    from fer.batch import BatchError, BatchTable, classes_of, make_engine, process
    from fer.fileio import write_json_atomic

    from fer.model_files import ModelLoadError, check_runtime

    outcomes, table = list(missing), None
    try:
        if options.spec.model:
            check_runtime(options.spec.model)  # a .pkl in the light install: one line, before any work
        if args.csv:
            table = BatchTable(args.csv, args.failures, args.resume, args.overwrite)
            for outcome in missing:
                table.add(outcome)
        todo = [t for t in tasks if table is None or t.file not in table.finished]
        if table and table.finished:
            print(f"resuming {args.csv}: {len(tasks) - len(todo)} of {len(tasks)} {noun} already done", file=sys.stderr)
        with make_engine(args.workers, args.address, args.engine) as engine:
            if not args.quiet:
                print(f"{len(todo)} {noun} {engine.describe()}, {options.threads} thread(s) each", file=sys.stderr)
            with progress(None, len(todo), noun, "file", args.quiet) as bar:
                for outcome in process(todo, options, engine, table):
                    outcomes.append(outcome)
                    bar.update()
                    if not args.quiet:
                        bar.write(outcome.line, file=sys.stdout)
    except (BatchError, ModelLoadError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted after {len(outcomes) - len(missing)} of {len(tasks)} {noun}"
              + (f"; the same command with --resume continues {args.csv}" if args.csv else ""), file=sys.stderr)
        return 130
    finally:
        if table:
            table.close()
        if json_path:
            columns = next((o.columns for o in outcomes if o.columns), None)
            write_json_atomic(json_path, {"model": str(args.model or "default"),
                                          "classes": classes_of(columns) if columns else [],
                                          "files": [o.as_dict() for o in outcomes]})
    failed = [o for o in outcomes if o.error or o.problem]
    rows = sum(o.rows for o in outcomes)
    outputs = [p for p in (args.csv, json_path) if p] + ([table.failures_path] if table and failed else [])
    found = (plural(rows, "face") + " found" if all(o.kind == "photo" for o in outcomes)
             else plural(rows, "face row"))  # a video gives a row per analysed frame and face
    print(f"{sum(o.error is None for o in outcomes)} of {plural(len(outcomes), noun.removesuffix('s'))} read, {found}"
          + "".join(f" → {p}" for p in outputs), file=sys.stderr)
    if failed:
        print(f"{plural(len(failed), 'file')} failed:", *(f"  {o.error or o.problem}" for o in failed), sep="\n",
              file=sys.stderr)
    return 1 if failed else 0
