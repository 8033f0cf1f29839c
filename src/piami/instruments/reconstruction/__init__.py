"""Reconstruction: from a symbol sequence to a minimal predictive model of the process behind it.

Computational mechanics (Shalizi & Crutchfield 2001) names the minimal sufficient statistic of the
past, the causal states; reconstruction estimates them from samples. Each method returns a
:class:`~piami.instruments.reconstruction.result.Reconstruction` whose ``machine`` is a piami
process, so every exact tool (beliefs, entropy rate, statistical complexity, excess entropy, the
mixed-state presentation) applies to the reconstructed model:

- :mod:`~piami.instruments.reconstruction.cssr`: Causal-State Splitting Reconstruction
  (Shalizi & Klinkner 2004);
- :mod:`~piami.instruments.reconstruction.spectral`: observable-operator learning from the Hankel
  matrix (Hsu, Kakade & Zhang 2009), a generalized HMM;
- :mod:`~piami.instruments.reconstruction.bsi`: Bayesian structural inference over topological
  epsilon-machines (Strelioff & Crutchfield 2014).
"""
