"""A machine file as a process: load_machine is the exact inverse of the machine.json that
`piami reconstruct` writes (reconstruct -> write -> load gives the same transition tensor), the
spec machine("path") names it, and every malformed file is a PiamiError that says how to fix it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from piami._io import atomic_write_json
from piami.cli import main
from piami.errors import PiamiError, PiamiFileError, PiamiTypeError, PiamiValueError
from piami.instruments.reconstruction.cssr import cssr
from piami.instruments.reconstruction.result import Reconstruction, default_max_length
from piami.instruments.reconstruction.spectral import spectral
from piami.instruments.reconstruction.summary import machine_record
from piami.processes import (
    GeneralizedHiddenMarkovModel,
    HiddenMarkovModel,
    from_spec,
    load_machine,
    machine_spec,
    save_machine,
)
from piami.processes.machine_file import machine_transitions

NAN_MEASURES = {
    k: {"value": float("nan"), "low": float("nan"), "high": float("nan")}
    for k in ("entropy_rate", "statistical_complexity", "excess_entropy")
}


def sample(spec: str, n: int, seed: int) -> np.ndarray:
    return from_spec(spec).sample(1, n, rng=np.random.default_rng(seed))[0]


def write_record(path, recon: Reconstruction, alphabet: tuple[str, ...]) -> None:
    """What `piami reconstruct` writes: machine_record through atomic_write_json."""
    atomic_write_json(path, machine_record(recon, alphabet, NAN_MEASURES, source="test"))


@pytest.mark.parametrize("spec", ["golden_mean", "even_process", "mess3", "rrxor"])
def test_reconstruct_write_load_gives_identical_cssr_transitions(tmp_path, spec):
    tokens = sample(spec, 30_000, seed=1)
    k = from_spec(spec).n_symbols
    recon = cssr(tokens, max_length=default_max_length(tokens.size, k), n_symbols=k)
    write_record(tmp_path / "machine.json", recon, tuple(str(i) for i in range(k)))
    loaded = load_machine(tmp_path / "machine.json")
    assert isinstance(loaded, HiddenMarkovModel)
    assert loaded.T.shape == recon.machine.T.shape
    assert np.array_equal(loaded.T, recon.machine.T)  # bit for bit, not approximately
    # and therefore the same exact side
    probe = sample(spec, 50, seed=2)[None, :]
    assert np.array_equal(loaded.beliefs(probe), recon.machine.beliefs(probe))
    assert loaded.entropy_rate() == recon.machine.entropy_rate()


def test_spectral_machines_load_as_generalized_models_with_the_recorded_weights(tmp_path):
    """A spectral model has negative weights: no HMM, a GHMM; the record keeps every weight above
    1e-12 in magnitude, and those come back exactly, although the model's constructor, run on
    them, renormalizes by an eigenvalue one ulp away from 1 (this seed)."""
    tokens = sample("golden_mean", 30_000, seed=0)
    recon = spectral(tokens, max_length=3, n_symbols=2)
    T = recon.machine.T
    assert (T < 0).any()  # the cases this test is about
    assert not np.array_equal(GeneralizedHiddenMarkovModel(T).T, T)
    write_record(tmp_path / "m.json", recon, ("0", "1"))
    loaded = load_machine(tmp_path / "m.json")
    assert type(loaded) is GeneralizedHiddenMarkovModel
    assert np.array_equal(loaded.T, np.where(np.abs(T) > 1e-12, T, 0.0))


def test_the_cli_file_round_trips_with_its_alphabet(tmp_path):
    """`piami reconstruct FILE --out DIR` -> DIR/machine.json -> the same machine CSSR gives."""
    tokens = sample("golden_mean", 20_000, seed=4)
    text = "".join("ab"[t] for t in tokens)
    (tmp_path / "gm.txt").write_text(text)
    assert main(["reconstruct", str(tmp_path / "gm.txt"), "--out", str(tmp_path / "o")]) == 0
    recon = cssr(tokens, max_length=default_max_length(tokens.size, 2), n_symbols=2)
    loaded = load_machine(tmp_path / "o" / "machine.json")
    assert np.array_equal(loaded.T, recon.machine.T)
    assert loaded.alphabet == ("a", "b")
    assert loaded.spec == machine_spec(tmp_path / "o" / "machine.json")


def test_an_asymmetric_machine_keeps_its_edge_directions(tmp_path):
    """A loader that swapped from/to, or symbols, would fail here: the golden mean's T[0] is not
    symmetric and its two symbols differ."""
    gm = from_spec("golden_mean(p=0.3)")
    assert not np.array_equal(gm.T[0], gm.T[0].T)
    path = save_machine(tmp_path / "gm.json", gm, ("x", "y"))
    loaded = load_machine(path)
    assert np.array_equal(loaded.T, gm.T) and loaded.alphabet == ("x", "y")


def test_machine_transitions_is_the_format_piami_reconstruct_writes():
    """The processes layer's writer and instruments' machine_record list the same edges."""
    for spec in ("golden_mean", "mess3", "rrxor"):
        proc = from_spec(spec)
        recon = Reconstruction(method="exact", machine=proc, n_symbols=proc.n_symbols, n_samples=0)
        alphabet = tuple("abcdef"[: proc.n_symbols])
        record = machine_record(recon, alphabet, NAN_MEASURES, source="t")
        assert record["transitions"] == machine_transitions(proc, alphabet)


def test_the_spec_names_the_machine_and_rebuilds_itself(tmp_path):
    path = tmp_path / 'a "quoted" dir' / "machine.json"
    path.parent.mkdir()
    save_machine(path, from_spec("mess3"))
    proc = from_spec(f"machine({json.dumps(str(path))})")
    assert np.array_equal(proc.T, from_spec("mess3").T)
    assert proc.spec == machine_spec(path) and from_spec(proc.spec).spec == proc.spec
    assert np.array_equal(from_spec(f"machine(path={str(path)!r})").T, proc.T)
    # the spec round trip other code relies on (e.g. belief-geometry's report)
    assert "machine(" in repr(proc)


def test_every_existing_spec_still_works():
    for spec in ("mess3", "rrxor(0.5, 0.5)", "random_hmm(n_states=3, n_symbols=2, seed=0)"):
        assert from_spec(from_spec(spec).spec).spec == from_spec(spec).spec
    assert from_spec("hmm(T=[[[0.5]], [[0.5]]])").n_symbols == 2


def _record(**changes):
    rec = {
        "n_states": 1,
        "alphabet": ["0", "1"],
        "transitions": [
            {"from": 0, "to": 0, "symbol": "0", "probability": 0.5},
            {"from": 0, "to": 0, "symbol": "1", "probability": 0.5},
        ],
    }
    rec.update(changes)
    return rec


def _edge(**changes):
    return {"from": 0, "to": 0, "symbol": "0", "probability": 0.5} | changes


BAD_RECORDS = {
    "no transitions": ({k: v for k, v in _record().items() if k != "transitions"}, "transitions"),
    "zero states": (_record(n_states=0), "n_states"),
    "repeated symbols": (_record(alphabet=["0", "0"]), "alphabet"),
    "unknown symbol": (_record(transitions=[_edge(symbol="z"), _edge(symbol="1")]), "'z'"),
    "state out of range": (_record(transitions=[_edge(to=1), _edge(symbol="1")]), "states 0..0"),
    "edge twice": (_record(transitions=[_edge(), _edge()]), "twice"),
    "not a number": (_record(transitions=[_edge(probability="x"), _edge(symbol="1")]), "finite"),
    "row not summing to 1": (_record(transitions=[_edge()]), "not a process"),
    "edge not an object": (_record(transitions=[[0, 0, "0", 1.0]]), "needs from"),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_malformed_records_say_what_is_wrong(tmp_path, case):
    record, words = BAD_RECORDS[case]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(record))
    with pytest.raises(PiamiError) as err:
        load_machine(path)
    assert words in str(err.value) and str(path) in str(err.value)
    with pytest.raises(PiamiError):  # the same through the spec
        from_spec(machine_spec(path))


def test_a_good_record_loads_so_the_bad_ones_fail_for_their_reason(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_record()))
    assert np.array_equal(load_machine(path).T, [[[0.5]], [[0.5]]])


def test_missing_unreadable_and_non_machine_files(tmp_path):
    with pytest.raises(PiamiFileError, match="piami reconstruct"):
        load_machine(tmp_path / "nowhere.json")
    with pytest.raises(PiamiFileError, match="piami reconstruct"):
        from_spec(machine_spec(tmp_path / "nowhere.json"))
    with pytest.raises(PiamiFileError, match="folder"):
        load_machine(tmp_path)
    (tmp_path / "text.json").write_text("not json {")
    with pytest.raises(PiamiFileError, match="not JSON"):
        load_machine(tmp_path / "text.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(PiamiFileError, match="not a record"):
        load_machine(tmp_path / "list.json")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(PiamiFileError):
        load_machine(tmp_path / "binary.json")
    with pytest.raises(PiamiTypeError):
        from_spec("machine(3)")
    with pytest.raises(PiamiValueError):
        from_spec("machine()")
    with pytest.raises(PiamiValueError, match="one symbol per token id"):
        save_machine(tmp_path / "x.json", from_spec("mess3"), ("a", "b"))
