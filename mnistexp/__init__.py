"""mnistexp: one canonical MNIST experiment, run and compared across ML platforms."""

__version__ = "0.1.0"
