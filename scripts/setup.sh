#!/usr/bin/env bash
# One-command set-up: the Python package with its dev tools, and Debian's Chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "note: install Chromium (Debian: apt-get install chromium) to run the browser test" >&2
  fi
fi
python -m pip install -q -e ".[dev]"
python -c "import fer, timm, fastai, gradio, cv2, av; assert hasattr(cv2, 'CascadeClassifier'); print('fer set-up OK')"
