"""The process spec language: any string gives a process or a PiamiError, quickly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from piami.errors import PiamiError
from piami.processes import PROCESSES, from_spec

from .conftest import case, examples

names = st.sampled_from([*PROCESSES, "mess", "Mess3", "os", "__import__", "", "mess3.x"])
keys = st.sampled_from(
    [
        "x",
        "a",
        "p1",
        "p2",
        "p",
        "q",
        "n_states",
        "n_symbols",
        "seed",
        "concentration",
        "T",
        "bogus",
        "__class__",
    ]
)
numbers = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "1e308",
            "-0.0",
            "10**9",
            "1/0",
            "True",
            "None",
            "'a'",
            "[]",
            "[[1]]",
            "[[[0.5, 0.5]]]",
            "float('nan')",
            "x",
            "()",
            "{}",
        ]
    ),
)
args = st.lists(
    st.one_of(numbers, st.tuples(keys, numbers).map(lambda kv: f"{kv[0]}={kv[1]}")), max_size=4
)
specs = st.one_of(
    st.builds(lambda n, a: f"{n}({', '.join(a)})", names, args),
    names,
    st.text(max_size=40),
)


@settings(max_examples=examples(600), deadline=10_000)
@given(spec=specs)
def test_any_spec_gives_a_process_or_a_piami_error(spec):
    with case():
        try:
            proc = from_spec(spec)
        except PiamiError:
            return
        assert proc.n_states >= 1 and proc.n_symbols >= 1
