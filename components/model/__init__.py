"""Model code, free of TFX (as the TFX templates keep `models/`):

settings.py     the `model` settings section (ModelSettings, candidates, the seed recipe)
autoencoder.py  the Keras autoencoder built from ModelSettings
export.py       the SavedModel: raw rows in, z-score inside, errors and flag out
layout.py       the exported model's files, signature names, versions (one place)
scorer.py       score raw rows with an exported model (batch scoring, the MLflow pyfunc)
explain.py      top_features: which columns make a row's error
"""
