"""Importing this module registers every built-in kind."""

from exercises.kinds import (
    accumulation,
    chain,
    choice,
    code_function,
    code_grads,
    code_train,
    formula,
    gradients,
    update,
)

__all__ = [
    "accumulation",
    "chain",
    "choice",
    "code_function",
    "code_grads",
    "code_train",
    "formula",
    "gradients",
    "update",
]
