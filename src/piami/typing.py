"""Array type aliases and the dimension vocabulary.

Shapes follow TransformerLens names: ``batch``, ``pos``, ``d_model``, ``d_vocab``, ``d_head``,
``n_heads``, ``d_mlp``; processes add ``n_seqs``, ``seq_len``, ``n_states``, ``n_symbols``. The
aliases are jaxtyping annotations when jaxtyping is installed (the ``dev`` extra) and plain array
types otherwise; shapes are checked at run time in tests only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

try:  # jaxtyping is a dev dependency: annotations only, never required at run time
    from jaxtyping import Float, Int
except ImportError:  # pragma: no cover - exercised only without the dev extra

    class _Shaped:
        def __class_getitem__(cls, item: Any) -> Any:
            return Any

    Float = Int = _Shaped  # type: ignore[misc,assignment]

if TYPE_CHECKING:  # pragma: no cover
    pass

FloatArray = np.ndarray
IntArray = np.ndarray

__all__ = ["Float", "FloatArray", "Int", "IntArray"]
