"""Engine-free logic: readers, normalizers, filters, scorers, dedup keys, tokenizer, shards.

Nothing in this package imports Apache Beam: every unit is a plain function or small class on
plain data, so it can be tested and benchmarked alone and composed by any engine.
"""
