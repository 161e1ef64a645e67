"""``python -m fer_app``: the app (:func:`fer_app.main.main`)."""

import sys

from fer_app.main import main

sys.exit(main())
