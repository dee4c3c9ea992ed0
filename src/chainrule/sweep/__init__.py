"""Hyperparameter search: ``chainrule sweep`` and ``chainrule.sweep.sweep``.

CS231n's recipe made one command: draw configurations (random search on log scales, or a
grid), train each as an ordinary run, judge them on the validation set, look once at the
test set with the best. Trials run on Dask (``pip install "chainrule[sweep]"``): an
embedded local cluster by default, or an existing one. Layout, from the bottom:
``space`` (what an option may take, the trials drawn), ``trial`` (one run on a worker),
``fused`` (a population's step written out in NumPy), ``population`` (K runs of one
architecture as one batched network), ``runner`` (the driver), ``plot`` (sweep.png) and
``cli``.
"""

from .population import PopulationMLP, PopulationTrainer, population_key, run_population
from .runner import dask_client, plan_trials, sweep
from .space import Choice, Range, SearchSpace, SpaceError, parse_space
from .trial import run_trial
