"""What every part of fer stands on: class names, images, files, model cards, command-line helpers."""
