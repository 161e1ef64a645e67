"""Find and classify every face in photos (and videos) given as files, folders or lists of paths.

    python -m fer.analyze photo.jpg holiday/ [--csv faces.csv] [--json faces.json] [--workers N]

One table for all inputs, one row per face: file, frame, time_s, face id, box, detector score, landmarks,
the probability of every class and the label. A photo's faces are frame 0, numbered left to right; a
video's are tracked over its frames (every --every-th frame analysed). Files that cannot be read are listed
at the end (and in NAME.failures.csv beside --csv) and skipped; the exit status is 0 when every file was
read, 1 when some failed, 2 when nothing could be done. Files run side by side with --workers N (processes
on this machine) or on a Dask cluster (--address); a killed run continues with --resume.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from fer.core.extras import exit_on_missing_extra
from fer.serving.cli import add_batch_options, add_model_options, batch_options, check_model_options


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command's options (``--help`` lists them); exits with a message on a bad combination."""
    p = argparse.ArgumentParser(prog="python -m fer.analyze", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="photos, videos and folders (searched recursively)")
    p.add_argument("--csv", type=Path, help="write one row per face here, as files finish")
    p.add_argument("--json", type=Path, help="write every file's faces (and the failures) of this run here as JSON")
    p.add_argument("--every", type=int, default=1, metavar="N", help="in videos, analyse every N-th frame")
    p.add_argument("--quiet", action="store_true", help="no per-file lines, no progress bar")
    add_model_options(p)
    add_batch_options(p)
    args = p.parse_args(argv)
    check_model_options(p, args)
    args.batch = batch_options(p, args)
    if not args.paths and not args.files_from:
        p.error("name photos, videos or folders (or --files-from LIST)")
    return args


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    """Run ``python -m fer.analyze`` (``fer-analyze``); returns the exit status: 0 when every file was read, 1 when
    some failed, 2 when there was nothing to do."""
    args = parse_args(argv)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines; our messages say what is wrong
    from fer.core.cli import configure_logging
    from fer.serving.batch import BatchError, collect_inputs
    from fer.serving.cli import model_spec, run_batch

    configure_logging()
    try:
        tasks, missing = collect_inputs(args.paths, args.files_from, ("photo", "video"), "photo")
    except BatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not tasks:
        print(f"error: no images or videos found in {', '.join(map(str, args.paths + args.files_from))}",
              file=sys.stderr)
        return 2
    return run_batch(args.batch, model_spec(args), tasks, missing, "files", args.json, args.quiet)


if __name__ == "__main__":
    sys.exit(main())
