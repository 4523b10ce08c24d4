"""Render parsed expressions back as PyTorch source and as LaTeX."""

from __future__ import annotations

from exercises.lang.ir import Const, Name, Node, Op

_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "pow": "**"}
_GREEK = {"alpha", "beta", "gamma", "delta", "eta", "lambda", "mu", "sigma", "theta", "tau"}


def _num(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _prec(node: Node) -> int:
    if isinstance(node, Op):
        return _PREC.get(node.fn, 5)
    if isinstance(node, Const) and node.value < 0:
        return 3
    return 5


def to_source(node: Node) -> str:
    """PyTorch source text of an expression."""
    if isinstance(node, Const):
        return _num(node.value)
    if isinstance(node, Name):
        return node.id
    if node.fn in _SYMBOLS:
        left, right = node.args
        p = _PREC[node.fn]
        ls = to_source(left)
        rs = to_source(right)
        right_assoc = node.fn == "pow"
        if _prec(left) < p or (right_assoc and _prec(left) == p):
            ls = f"({ls})"
        if _prec(right) < p or (not right_assoc and _prec(right) == p):
            rs = f"({rs})"
        return f"{ls} {_SYMBOLS[node.fn]} {rs}"
    if node.fn == "neg":
        inner = to_source(node.args[0])
        return f"-({inner})" if _prec(node.args[0]) < 3 else f"-{inner}"
    if node.fn == "transpose":
        inner = to_source(node.args[0])
        return f"({inner}).T" if _prec(node.args[0]) < 5 else f"{inner}.T"
    if node.fn == "index":
        inner = to_source(node.args[0])
        idx = ", ".join(str(i) for i in node.index)
        return f"({inner})[{idx}]" if _prec(node.args[0]) < 5 else f"{inner}[{idx}]"
    args = [to_source(a) for a in node.args]
    args += [f"{k}={v}" for k, v in node.kwargs]
    return f"torch.{node.fn}({', '.join(args)})"


def _latex_name(name: str) -> str:
    base, _, sub = name.partition("_")
    if base == "y" and sub == "hat":
        return r"\hat{y}"
    head = f"\\{base}" if base in _GREEK else base
    if len(head) > 1 and not head.startswith("\\"):
        head = rf"\mathrm{{{head}}}"
    return f"{head}_{{{sub}}}" if sub else head


_FN_LATEX = {
    "sigmoid": r"\sigma",
    "tanh": r"\tanh",
    "exp": r"\exp",
    "log": r"\ln",
    "relu": r"\mathrm{ReLU}",
    "sin": r"\sin",
    "cos": r"\cos",
    "softmax": r"\mathrm{softmax}",
    "log_softmax": r"\log\mathrm{softmax}",
    "sum": r"\sum",
    "mean": r"\mathrm{mean}",
}


def to_latex(node: Node) -> str:
    """LaTeX of an expression (for the formula preview and statements)."""
    if isinstance(node, Const):
        return _num(node.value)
    if isinstance(node, Name):
        return _latex_name(node.id)
    a = [to_latex(x) for x in node.args]
    if node.fn == "div":
        return rf"\frac{{{a[0]}}}{{{a[1]}}}"
    if node.fn == "pow":
        base = a[0] if _prec(node.args[0]) >= 5 else rf"\left({a[0]}\right)"
        return f"{{{base}}}^{{{a[1]}}}"
    if node.fn in ("add", "sub", "mul", "matmul"):
        p = _PREC[node.fn]
        left = a[0] if _prec(node.args[0]) >= p else rf"\left({a[0]}\right)"
        right = a[1] if _prec(node.args[1]) > p else rf"\left({a[1]}\right)"
        sym = {"add": "+", "sub": "-", "mul": r"\cdot", "matmul": ""}[node.fn]
        return f"{left} {sym} {right}"
    if node.fn == "neg":
        inner = a[0] if _prec(node.args[0]) >= 3 else rf"\left({a[0]}\right)"
        return f"-{inner}"
    if node.fn == "sqrt":
        return rf"\sqrt{{{a[0]}}}"
    if node.fn == "abs":
        return rf"\left|{a[0]}\right|"
    if node.fn == "square":
        return rf"\left({a[0]}\right)^{{2}}"
    if node.fn == "transpose":
        return rf"{{{a[0]}}}^\top"
    if node.fn == "index":
        return f"{a[0]}_{{{','.join(str(i) for i in node.index)}}}"
    return rf"{_FN_LATEX.get(node.fn, node.fn)}\left({a[0]}\right)"
