"""`python -m llama_data.model ...` is `llama-train ...` (handy under `torchrun -m llama_data.model`)."""

from llama_data.cli import train_main

if __name__ == "__main__":
    train_main()
