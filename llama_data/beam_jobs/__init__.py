"""Apache Beam PTransforms that compose `llama_data.pipeline` units into jobs; no text logic."""
