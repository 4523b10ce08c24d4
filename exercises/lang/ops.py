"""The whitelist: every operation the language knows, its arity and how it reads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OpInfo:
    """What the parser, the evaluators and the diagnosis need to know about an operation."""

    name: str
    arity: int
    elementwise: bool = True
    kwargs: frozenset[str] = frozenset()
    torch_name: str = ""  # how forward code spells it, e.g. "torch.sigmoid"
    rule: str = ""  # the local derivative, for feedback (LaTeX)
    kink: bool = False  # not differentiable everywhere (ReLU, |x|)


_DIM = frozenset({"dim"})

OPS: dict[str, OpInfo] = {
    op.name: op
    for op in [
        OpInfo("add", 2, rule=r"\partial(a+b)/\partial a = \partial(a+b)/\partial b = 1"),
        OpInfo("sub", 2, rule=r"\partial(a-b)/\partial a = 1,\ \partial(a-b)/\partial b = -1"),
        OpInfo("mul", 2, rule=r"\partial(ab)/\partial a = b,\ \partial(ab)/\partial b = a"),
        OpInfo(
            "div", 2, rule=r"\partial(a/b)/\partial a = 1/b,\ \partial(a/b)/\partial b = -a/b^2"
        ),
        OpInfo("pow", 2, rule=r"\partial(u^n)/\partial u = n\,u^{n-1}"),
        OpInfo("matmul", 2, elementwise=False, rule=r"\partial(AB)/\partial A = G B^\top"),
        OpInfo("neg", 1, rule=r"\partial(-u)/\partial u = -1"),
        OpInfo(
            "sigmoid",
            1,
            torch_name="torch.sigmoid",
            rule=r"\sigma'(u) = \sigma(u)\,(1-\sigma(u))",
        ),
        OpInfo("tanh", 1, torch_name="torch.tanh", rule=r"\tanh'(u) = 1-\tanh^2(u)"),
        OpInfo("exp", 1, torch_name="torch.exp", rule=r"(e^u)' = e^u"),
        OpInfo("log", 1, torch_name="torch.log", rule=r"(\ln u)' = 1/u"),
        OpInfo(
            "relu",
            1,
            torch_name="torch.relu",
            rule=r"\mathrm{ReLU}'(u) = 1 \text{ if } u>0 \text{ else } 0",
            kink=True,
        ),
        OpInfo("abs", 1, torch_name="torch.abs", rule=r"|u|' = \mathrm{sign}(u)", kink=True),
        OpInfo("sqrt", 1, torch_name="torch.sqrt", rule=r"(\sqrt u)' = 1/(2\sqrt u)"),
        OpInfo("sin", 1, torch_name="torch.sin", rule=r"\sin' u = \cos u"),
        OpInfo("cos", 1, torch_name="torch.cos", rule=r"\cos' u = -\sin u"),
        OpInfo("square", 1, torch_name="torch.square", rule=r"(u^2)' = 2u"),
        OpInfo(
            "sum",
            1,
            elementwise=False,
            kwargs=_DIM,
            torch_name="torch.sum",
            rule=r"\partial(\sum_i u_i)/\partial u_j = 1",
        ),
        OpInfo(
            "mean",
            1,
            elementwise=False,
            kwargs=_DIM,
            torch_name="torch.mean",
            rule=r"\partial(\frac1n\sum_i u_i)/\partial u_j = 1/n",
        ),
        OpInfo(
            "softmax",
            1,
            elementwise=False,
            kwargs=_DIM,
            torch_name="torch.softmax",
            rule=r"\partial p_i/\partial z_j = p_i(\delta_{ij}-p_j)",
        ),
        OpInfo(
            "log_softmax",
            1,
            elementwise=False,
            kwargs=_DIM,
            torch_name="torch.log_softmax",
            rule=r"\partial \log p_i/\partial z_j = \delta_{ij}-p_j",
        ),
        OpInfo("transpose", 1, elementwise=False, rule=r"(A^\top)^\top = A"),
        OpInfo("index", 1, elementwise=False, rule=r"\partial u_i/\partial u_j = \delta_{ij}"),
    ]
}

BINOPS = {
    "Add": "add",
    "Sub": "sub",
    "Mult": "mul",
    "Div": "div",
    "Pow": "pow",
    "MatMult": "matmul",
}

# torch.<name>(...) and <tensor>.<name>(...) spellings accepted in forward code.
TORCH_FUNCTIONS = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "exp": "exp",
    "log": "log",
    "relu": "relu",
    "abs": "abs",
    "sqrt": "sqrt",
    "sin": "sin",
    "cos": "cos",
    "square": "square",
    "sum": "sum",
    "mean": "mean",
    "softmax": "softmax",
    "log_softmax": "log_softmax",
    "matmul": "matmul",
    "pow": "pow",
    "neg": "neg",
    "t": "transpose",
}

# Extra spellings a learner may use in a formula answer.
FORMULA_FUNCTIONS = {
    **{k: v for k, v in TORCH_FUNCTIONS.items() if k not in {"t", "matmul"}},
    "\u03c3": "sigmoid",  # sigma
    "ln": "log",
    "ReLU": "relu",
    "Relu": "relu",
}
FORMULA_MODULES = frozenset({"torch", "math", "np", "numpy", "F"})
FORMULA_CONSTANTS = {"e": 2.718281828459045, "pi": 3.141592653589793, "\u03c0": 3.141592653589793}
