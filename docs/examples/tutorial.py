"""The 10-minute tutorial of the piami docs (docs/tutorial.md), as one script.

Run it from a checkout with ``python docs/examples/tutorial.py`` (a few seconds on a laptop CPU).
The tutorial page shows it section by section (the ``--8<--`` markers); the test suite runs it
(tests/test_docs_examples.py), so every code block of the page runs as printed.
"""

# Each section imports what it uses, so that it reads on its own in the page:
# ruff: noqa: E402

# --8<-- [start:theory]
import numpy as np

from piami.processes import from_spec

mess3 = from_spec("mess3(x=0.05, a=0.85)")  # a 3-state hidden Markov process
rng = np.random.default_rng(0)
sample = mess3.sample(4000, 10, rng=rng, return_beliefs=True)
tokens = sample.tokens  # (4000, 10) int64
beliefs = sample.beliefs[:, 1:]  # (4000, 10, 3): Pr(next state | tokens so far), exact
print(tokens.shape, beliefs.shape)
print("entropy rate:", mess3.entropy_rate() / np.log(2), "bits per token")
# --8<-- [end:theory]

# --8<-- [start:arrays]
# A stand-in for your network: a nonlinear map of each belief into 64 dimensions, plus noise.
# In your own work, `acts` is an activation array of shape (n_sequences, n_positions, d_model).
A = rng.normal(size=(3, 64))
acts = np.tanh(beliefs @ A) + 0.02 * rng.normal(size=(4000, 10, 64))

# Flatten positions into samples; fit on the first 3000 sequences, score on the last 1000.
X, Y = acts.reshape(-1, 64), beliefs.reshape(-1, 3)
fit, held_out = slice(0, 30_000), slice(30_000, None)
# --8<-- [end:arrays]

# --8<-- [start:probe]
from piami.instruments import LinearProbe

probe = LinearProbe().fit(X[fit], Y[fit])
r2 = probe.score(X[held_out], Y[held_out])
print(f"held-out R^2 of the exact beliefs: {r2:.4f}")
# --8<-- [end:probe]

# --8<-- [start:controls]
# Control 1: the same probe on beliefs shuffled across samples. Nothing links X to them.
Y_shuffled = Y[rng.permutation(len(Y))]
r2_shuffled = LinearProbe().fit(X[fit], Y_shuffled[fit]).score(X[held_out], Y_shuffled[held_out])

# Control 2: the best any function of (position, last token) can do: a probe on their one-hot.
position = np.tile(np.arange(10), 4000)
onehot = np.zeros((40_000, 10 * 3))
onehot[np.arange(40_000), position * 3 + tokens.reshape(-1)] = 1.0
r2_lookup = LinearProbe().fit(onehot[fit], Y[fit]).score(onehot[held_out], Y[held_out])

print(f"shuffled beliefs: {r2_shuffled:.4f}   last-token lookup: {r2_lookup:.4f}")
# --8<-- [end:controls]

# --8<-- [start:untrained]
import torch

from piami.models import Transformer, TransformerConfig, residual_stream

torch.manual_seed(0)
untrained = Transformer(TransformerConfig(n_layers=2, d_model=64, n_ctx=10, d_vocab=3))
layers, logits = residual_stream(untrained, tokens)  # [embed, block 0, block 1], each (40000, 64)
final = layers[-1]
r2_untrained = LinearProbe().fit(final[fit], Y[fit]).score(final[held_out], Y[held_out])
print(f"untrained transformer, final layer: {r2_untrained:.4f}")
# --8<-- [end:untrained]

# --8<-- [start:rows]
from piami.lab import Comparison, Result

bar = 0.015  # allowed 1 - R^2: the bar the belief-geometry experiment uses
rows = [
    Comparison(
        name="R² of the exact beliefs from my activations",
        kind="prediction",
        predicted=1.0,
        measured=r2,
        tolerance=bar,
        sense="at_least",
        tolerance_source="a priori: belief-geometry's bar, fixed before looking at my network",
        reference="Shai et al. 2024",
    ),
    Comparison(
        name="R² of a probe on shuffled beliefs",
        kind="control",
        predicted=0.0,
        measured=r2_shuffled,
        tolerance=0.01,
        sense="at_most",
        tolerance_source="a priori: with no relation a held-out R² is about -d/n, below 0",
    ),
    Comparison(
        name="untrained network's R² falls below the bar",
        kind="control",
        predicted=1.0 - bar,
        measured=r2_untrained,
        tolerance=0.0,
        sense="at_most",
        tolerance_source="a priori: the same bar",
    ),
    Comparison(
        name="my activations beat the last-token lookup",
        kind="prediction",
        predicted=r2_lookup,
        measured=r2,
        tolerance=0.0,
        sense="at_least",
        tolerance_source="derived: the lookup's R² is measured on the same held-out samples",
    ),
]
result = Result(experiment="my-probe", config={"process": "mess3(x=0.05, a=0.85)"}, seed=0)
result.comparisons = rows
print(result.summary())
print(result.verdict)
# --8<-- [end:rows]

# --8<-- [start:dimension]
from piami.instruments import twonn_dimension

# 2000 points on a 2-sphere, rotated into R^50: a cloud whose intrinsic dimension is 2.
S = rng.normal(size=(2000, 3))
S /= np.linalg.norm(S, axis=1, keepdims=True)
Q, _ = np.linalg.qr(rng.normal(size=(50, 50)))
cloud = np.pad(S, ((0, 0), (0, 47))) @ Q

est = twonn_dimension(cloud)
print(f"TwoNN: {est.dimension:.2f}, 95% interval [{est.low:.2f}, {est.high:.2f}]")
print(est.interval)

# Its null: shuffle every coordinate on its own. No manifold is left; the estimate must jump.
shuffled = np.column_stack([rng.permutation(col) for col in cloud.T])
print(f"shuffled coordinates: {twonn_dimension(shuffled).dimension:.1f}")
# --8<-- [end:dimension]

# --8<-- [start:cka]
from piami.instruments import cka

n, d = 500, 20
X1 = rng.normal(size=(n, d))
Q20, _ = np.linalg.qr(rng.normal(size=(d, d)))
X2 = 3.0 * X1 @ Q20  # the same representation, rotated and rescaled
Z = rng.normal(size=(n, d))  # an unrelated one

print(f"CKA(X, 3 X Q)    = {cka(X1, X2):.4f}")  # exactly 1: invariant to rotation and scale
print(f"CKA(X, Z)        = {cka(X1, Z):.4f}   bias d/(n+d) = {d / (n + d):.4f}")
print(f"debiased CKA(X, Z) = {cka(X1, Z, debiased=True):.4f}")  # about 0
# --8<-- [end:cka]

# --8<-- [start:save]
from piami.report import save_result

report = save_result(result, "out/my-probe")  # result.json and a self-contained report.html
print(report)
# --8<-- [end:save]

# --8<-- [start:load]
from piami.lab import Result

loaded = Result.load("out/my-probe")  # a folder or its result.json
for row in loaded.comparisons:
    status = {True: "pass", False: "FAIL", None: "not identified"}[row.passed]
    print(f"{row.kind:<10} {status:<14} {row.name}")
    print(f"{'':10} tolerance {row.describe_tolerance()}  from  {row.tolerance_source}")
print("verdict:", loaded.verdict)
# --8<-- [end:load]
