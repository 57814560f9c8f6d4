"""Online sequence tasks, generated or read from text shipped with an installed package (no downloads).

Both are batched streams with their own ``torch.Generator``: ``next() -> (inputs [N, d], targets [N])``.

- copy (delayed recall; ours): a uniformly random symbol stream; the target at t is the input at t - lag,
  so the best loss is 0 nats and a memoryless predictor gets log(n_symbols).
- chars (ours): next-character prediction on music21's bundled ABC folk-tune corpus; each stream reads
  the text from its own random offset.
"""

from __future__ import annotations

from pathlib import Path

import torch


class CopyTask:
    def __init__(self, n_streams: int, n_symbols: int, lag: int, seed: int, dtype=torch.float64):
        if n_symbols < 2 or lag < 1 or n_streams < 1:
            raise ValueError(
                f"copy task needs n_symbols >= 2, lag >= 1, n_streams >= 1; got {n_symbols}, {lag}, {n_streams}"
            )
        self.n_in = self.n_out = n_symbols
        self.lag = lag
        self.dtype = dtype
        self.generator = torch.Generator().manual_seed(seed)
        # the symbols shown in the last ``lag`` steps, oldest first: [N, lag]
        self.history = torch.randint(0, n_symbols, (n_streams, lag), generator=self.generator)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        symbols = torch.randint(0, self.n_in, (self.history.shape[0],), generator=self.generator)
        targets = self.history[:, 0]
        self.history = torch.cat([self.history[:, 1:], symbols[:, None]], 1)
        return torch.nn.functional.one_hot(symbols, self.n_in).to(self.dtype), targets

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.history = state["history"]


def abc_corpus_text(max_chars: int) -> str:
    """The first ``max_chars`` characters of music21's ABC files, concatenated in a fixed order."""
    import music21

    root = Path(music21.__file__).parent / "corpus"
    files = sorted(root.rglob("*.abc"))
    if not files:
        raise FileNotFoundError(
            f"no .abc files under {root}; is music21 installed with its corpus?"
        )
    chunks, total = [], 0
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        chunks.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return "".join(chunks)[:max_chars]


class CharTask:
    def __init__(self, n_streams: int, max_chars: int, seed: int, dtype=torch.float64):
        text = abc_corpus_text(max_chars)
        vocab = sorted(set(text))
        self.vocab = vocab
        self.n_in = self.n_out = len(vocab)
        self.dtype = dtype
        lookup = {ch: i for i, ch in enumerate(vocab)}
        self.codes = torch.tensor([lookup[ch] for ch in text], dtype=torch.long)
        self.generator = torch.Generator().manual_seed(seed)
        self.position = torch.randint(0, len(text) - 1, (n_streams,), generator=self.generator)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self.codes) - 1
        current = self.codes[self.position % n]
        targets = self.codes[self.position % n + 1]
        self.position = (self.position + 1) % n
        return torch.nn.functional.one_hot(current, self.n_in).to(self.dtype), targets

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.position = state["position"]


def make_task(task_cfg, n_streams: int, seed: int, dtype=torch.float64):
    if task_cfg.kind == "copy":
        return CopyTask(n_streams, task_cfg.n_symbols, task_cfg.lag, seed, dtype)
    if task_cfg.kind == "chars":
        return CharTask(n_streams, task_cfg.max_chars, seed, dtype)
    raise ValueError(f"unknown task kind '{task_cfg.kind}' (expected 'copy' or 'chars')")
