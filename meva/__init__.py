"""meva: Meta-Value Learning (arXiv 2307.08863) on exact matrix games; see meva/README.md."""
