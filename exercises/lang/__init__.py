"""A restricted, safely parsed subset of PyTorch/Python for forward code and formulas."""
