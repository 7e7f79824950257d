"""The conformance suite: our functions beside the reference implementations\x27 own code."""
