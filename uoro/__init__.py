"""uoro: not yet implemented (its issue has not landed)."""
