"""Convert the FER-2013 CSV into a class-per-folder PNG tree and show what is in it.

    python data_scripts/prepare_fer2013.py --csv ../shared/data/fer2013.csv.gz --out data/fer2013
"""

from __future__ import annotations

import argparse
import sys

from fer.core.extras import exit_on_missing_extra


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python data_scripts/prepare_fer2013.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", required=True, help="FER-2013 CSV (emotion,pixels,Usage), plain or .gz")
    parser.add_argument("--out", required=True, help="output folder: OUT/train|valid|test/<class>/<row>.png")
    parser.add_argument("--labels", choices=["fer2013", "ferplus"], default="fer2013",
                        help="original labels, or the FER+ majority vote (8 classes, needs --ferplus)")
    parser.add_argument("--ferplus", help="ferplus_labels.csv, row-aligned with the CSV")
    parser.add_argument("--skip-bad-rows", action="store_true", help="skip malformed rows and report them")
    parser.add_argument("--random-split", action="store_true",
                        help="if the CSV has no Usage column, split rows 80/10/10 with a fixed seed")
    parser.add_argument("--no-plots", action="store_true", help="skip the class-count and sample plots")
    return parser.parse_args(argv)


@exit_on_missing_extra
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from fer.core.cli import configure_logging
    from fer.core.dataset import BadRowError, CsvFormatError, convert_csv, explore

    configure_logging()
    try:
        report = convert_csv(args.csv, args.out, labels=args.labels, ferplus_path=args.ferplus,
                             skip_bad_rows=args.skip_bad_rows, random_split=args.random_split)
    except BadRowError as e:
        print(f"error: {e}", file=sys.stderr)
        print("Nothing was written. Fix the row, or pass --skip-bad-rows to skip malformed rows.", file=sys.stderr)
        return 2
    except CsvFormatError as e:
        print(f"error: {e}\nNothing was written.", file=sys.stderr)
        return 2

    for message in report.bad_rows[:20]:
        print(f"skipped: {message}")
    if report.bad_rows:
        print(f"skipped {len(report.bad_rows)} bad row(s)")
    if report.dropped_ferplus:
        print(f"dropped {report.dropped_ferplus} row(s) whose FER+ majority is unknown or not a face")
    if report.duplicate_rows:
        print(f"note: {report.duplicate_rows} row(s) repeat the pixels of an earlier row (kept, as in the original)")
    if report.removed_stale:
        print(f"removed {report.removed_stale} stale file(s) from an earlier run")
    print(f"wrote {report.written} images to {report.out_dir} in {report.seconds:.1f} s\n")
    counts = report.counts.copy()
    counts["total"] = counts.sum(axis=1)
    print(counts.to_string())
    if not args.no_plots:
        _, files = explore(args.out, report.classes)
        print("\nwrote " + ", ".join(str(f) for f in files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
