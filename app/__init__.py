"""The Gradio app (``python app/main.py``, or ``fer-app`` once installed)."""
