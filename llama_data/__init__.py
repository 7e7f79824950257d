"""llama-data: the LLaMA pre-training data recipe as real software."""

__version__ = "0.1.0"
