"""advantage_alignment: not yet implemented (its issue has not landed)."""
