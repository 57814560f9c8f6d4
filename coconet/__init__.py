"""Coconet (Huang et al., ISMIR 2017): Counterpoint by Convolution, an orderless NADE over Bach chorales."""
