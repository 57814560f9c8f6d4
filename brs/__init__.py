"""BRS: Best Response Shaping (Aghajohari et al., RLC 2024), reconstructed, on the exact IPD and the Coin
Game. model.py: the detective, question answering and the leader's objectives; train.py: the training
loop; mcts.py / probe.py / eval.py: evaluation; reproduce.py: `make brs`."""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
