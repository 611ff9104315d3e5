"""Models: the encoder factory (hub name, local directory, tiny config) and the LightningModule."""
