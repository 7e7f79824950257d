from llama_data.pipeline.dedup import exact_text_key, normalize_whitespace


def test_whitespace_normalization():
    assert normalize_whitespace("  a \t b\n\n c  ") == "a b c"


def test_exact_key_ignores_whitespace_only():
    assert exact_text_key("Hello   world\n") == exact_text_key("Hello world")
    assert exact_text_key("Hello world") != exact_text_key("hello world")
    assert len(exact_text_key("x")) == 16
