"""Reading symbol sequences: text, .npy, and every bad file a clear PiamiError."""

from __future__ import annotations

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.processes.symbols import read_symbols, symbols_from_text


def test_text_symbols_skip_whitespace_and_sort_the_alphabet(tmp_path):
    f = tmp_path / "s.txt"
    f.write_text("b a\nab  b\n", encoding="utf-8")
    seq = read_symbols(f)
    assert seq.alphabet == ("a", "b")
    assert seq.tokens.tolist() == [1, 0, 0, 1, 1]
    assert seq.n_symbols == 2


def test_npy_rows_stay_rows(tmp_path):
    f = tmp_path / "s.npy"
    np.save(f, np.array([[0, 2, 1], [1, 1, 0]]))
    seq = read_symbols(f)
    assert seq.tokens.shape == (2, 3) and seq.alphabet == ("0", "1", "2")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.txt", b"  \n\t"),
        ("binary.txt", b"\x00\x01\x02abc"),
        ("latin1.txt", "caf\xe9".encode("latin-1")),
        ("floats.npy", None),
        ("negative.npy", None),
        ("pickled.npy", None),
        ("garbage.npy", b"not an npy file"),
        ("missing.txt", "missing"),
    ],
)
def test_bad_files_raise_a_piami_error(tmp_path, name, content):
    f = tmp_path / name
    if name == "floats.npy":
        np.save(f, np.array([0.5, 1.0]))
    elif name == "negative.npy":
        np.save(f, np.array([0, -1]))
    elif name == "pickled.npy":
        np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content != "missing":
        f.write_bytes(content)
    with pytest.raises(PiamiError):
        read_symbols(f)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(PiamiError, match="folder"):
        read_symbols(tmp_path)


def test_symbols_from_text_roundtrip():
    seq = symbols_from_text("xyzzy")
    assert "".join(seq.alphabet[i] for i in seq.tokens) == "xyzzy"
