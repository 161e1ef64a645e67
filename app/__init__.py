"""The front ends on fer's library: the Gradio app (``fer-app``, ``python -m fer_app``; :mod:`fer_app.main`)
and the helpers that drive it from outside in tests and benchmarks (:mod:`fer_app.testing`)."""
