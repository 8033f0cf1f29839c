"""The modular addition data set: every pair once, answers right, seeded splits."""

import numpy as np
import pytest

from piami.errors import PiamiError
from piami.processes.modular import ModularAddition


@pytest.mark.parametrize("p", [2, 7, 113])
def test_all_pairs_enumerates_the_grid_with_right_answers(p):
    task = ModularAddition(p=p)
    tokens, answers = task.all_pairs()
    assert tokens.shape == (p * p, 3) and tokens.dtype == np.int64
    assert task.d_vocab == p + 1 and np.all(tokens[:, 2] == task.equals_token)
    a, b = tokens[:, 0], tokens[:, 1]
    assert np.all(a * p + b == np.arange(p * p))  # row a*p + b holds (a, b)
    brute = [(x + y) % p for x in range(p) for y in range(p)]
    assert answers.tolist() == brute


def test_split_is_a_seeded_partition():
    task = ModularAddition(p=23)
    tr, te = task.split(0.3, rng=np.random.default_rng(0))
    assert len(tr) == round(0.3 * 23**2) and len(tr) + len(te) == 23**2
    assert np.intersect1d(tr, te).size == 0
    assert np.array_equal(np.union1d(tr, te), np.arange(23**2))
    tr2, _ = task.split(0.3, rng=np.random.default_rng(0))
    tr3, _ = task.split(0.3, rng=np.random.default_rng(1))
    assert np.array_equal(tr, tr2) and not np.array_equal(tr, tr3)
    m = task.mask(tr)
    assert m.shape == (23, 23) and m.sum() == len(tr) and m.ravel()[tr].all()


def test_sample_appends_the_answer():
    task = ModularAddition(p=11)
    seqs = task.sample(200, rng=np.random.default_rng(0))
    assert seqs.shape == (200, 4)
    assert np.all(seqs[:, 3] == (seqs[:, 0] + seqs[:, 1]) % 11) and np.all(seqs[:, 2] == 11)


@pytest.mark.parametrize(
    "call",
    [
        lambda: ModularAddition(p=1),
        lambda: ModularAddition(p=True),
        lambda: ModularAddition(p=7.0),
        lambda: ModularAddition(p=5).split(0.0, rng=np.random.default_rng(0)),
        lambda: ModularAddition(p=5).split(1.0, rng=np.random.default_rng(0)),
        lambda: ModularAddition(p=5).split(0.01, rng=np.random.default_rng(0)),  # 0 pairs
        lambda: ModularAddition(p=5).split(0.3, rng=0),
        lambda: ModularAddition(p=5).mask(np.array([25])),
        lambda: ModularAddition(p=5).sample(3, 3, rng=np.random.default_rng(0)),
        lambda: ModularAddition(p=5).sample(0, rng=np.random.default_rng(0)),
    ],
)
def test_bad_input_raises_piami_errors(call):
    with pytest.raises(PiamiError):
        call()
