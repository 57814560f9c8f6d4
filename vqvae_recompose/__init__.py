"""vqvae_recompose: harmonic recomposition with VQ-VAE codes and a chord-conditioned gated PixelCNN prior
(Kastner et al., arXiv 1811.07426) on bar-aligned Bach chorale measures."""

import common  # noqa: F401 -- pins torch's CPU kernels before torch loads (common/__init__.py)
