"""Live logs during training: W&B media on top of the scalars the recorder logs through Lightning."""
