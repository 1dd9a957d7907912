"""CycleGAN Studio's engine: pure PyTorch, no Qt. The GUI and the CLI both drive it."""

__version__ = "0.1.0"
