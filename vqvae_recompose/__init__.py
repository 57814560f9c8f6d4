"""vqvae_recompose: not yet implemented (its issue has not landed)."""
