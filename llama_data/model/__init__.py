"""The LLaMA model, trainer, shard data loader, checkpoints and export."""
