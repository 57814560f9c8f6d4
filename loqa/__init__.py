"""LOQA: Learning with Opponent Q-Learning Awareness (Aghajohari et al., ICLR 2024), on the IPD and the
Coin Game. model.py: networks and losses; train.py: the training loop; eval.py / league.py: evaluation;
reproduce.py: `make loqa`."""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
