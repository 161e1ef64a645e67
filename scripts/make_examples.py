"""Write the app's example inputs (app/examples/): public-domain and CC0 photos that ship with scikit-image and
matplotlib, and a short clip made from them; their licences are in app/examples/LICENSE.md.

    python scripts/make_examples.py        # needs scikit-image (pip install -e ".[bench]")
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "app" / "examples"


def main() -> int:
    from skimage import data

    from fer.evaluation.scenes import clip_frames, write_clip

    EXAMPLES.mkdir(exist_ok=True)
    Image.fromarray(data.astronaut()).save(EXAMPLES / "astronaut.jpg", quality=90)
    *_, two_faces = clip_frames(640, 480, 10)  # the clip's last part: the astronaut and Grace Hopper on a table
    Image.fromarray(two_faces).save(EXAMPLES / "two_faces.jpg", quality=90)
    write_clip(EXAMPLES / "clip.mp4", 480, 360, n_frames=30, fps=10)
    for path in sorted(EXAMPLES.iterdir()):
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
