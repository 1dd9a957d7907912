"""Files in and out: run folders, atomic writes, checkpoints, translation, reference models, exports and previews."""
