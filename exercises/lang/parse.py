"""Parse forward code and formulas with `ast`, accepting only whitelisted syntax (never eval)."""

from __future__ import annotations

import ast
from dataclasses import dataclass

from exercises.lang.ir import Assign, Const, Name, Node, Op, Program
from exercises.lang.ops import (
    BINOPS,
    FORMULA_CONSTANTS,
    FORMULA_FUNCTIONS,
    FORMULA_MODULES,
    OPS,
    TORCH_FUNCTIONS,
)

MAX_FORMULA_CHARS = 500
MAX_PROGRAM_CHARS = 4000
MAX_NODES = 400


class LangError(ValueError):
    """Source that is not in the language; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class _Ctx:
    formula: bool
    known: set[str]
    count: int = 0


def parse_program(source: str, inputs: set[str]) -> Program:
    """Parse forward code: assignments of whitelisted expressions over `inputs`."""
    if len(source) > MAX_PROGRAM_CHARS:
        raise LangError(f"forward code is longer than {MAX_PROGRAM_CHARS} characters")
    tree = _ast_parse(source, "exec")
    ctx = _Ctx(formula=False, known=set(inputs))
    assigns: list[Assign] = []
    lines = source.splitlines()
    for stmt in tree.body:  # type: ignore[attr-defined]
        if not isinstance(stmt, ast.Assign) or len(stmt.targets) != 1:
            raise LangError("only assignments `name = expression` are allowed", stmt.lineno)
        target = stmt.targets[0]
        if not isinstance(target, ast.Name):
            raise LangError("the target of an assignment must be a plain name", stmt.lineno)
        if target.id in inputs or target.id in {a.target for a in assigns}:
            raise LangError(f"`{target.id}` is assigned twice", stmt.lineno)
        expr = _convert(stmt.value, ctx)
        assigns.append(Assign(target.id, expr, stmt.lineno, lines[stmt.lineno - 1].strip()))
        ctx.known.add(target.id)
    if not assigns:
        raise LangError("forward code has no assignment")
    return Program(tuple(assigns), frozenset(inputs))


def parse_formula(text: str, symbols: set[str]) -> Node:
    """Parse a learner's formula over `symbols` (`^` means power; sigmoid, exp, log ... allowed)."""
    text = text.strip()
    if not text:
        raise LangError("the formula is empty")
    if len(text) > MAX_FORMULA_CHARS:
        raise LangError(f"the formula is longer than {MAX_FORMULA_CHARS} characters")
    # `^` is power in math notation; Python's `^` binds looser than `-`, so rewrite the text.
    for old, new in (("^", "**"), ("\u2212", "-"), ("\u00b7", "*"), ("\u00d7", "*")):
        text = text.replace(old, new)
    tree = _ast_parse(text, "eval")
    return _convert(tree.body, _Ctx(formula=True, known=set(symbols)))  # type: ignore[attr-defined]


def _ast_parse(source: str, mode: str) -> ast.AST:
    try:
        return ast.parse(source, mode=mode)
    except SyntaxError as exc:
        raise LangError(f"syntax error: {exc.msg}", exc.lineno) from None
    except (ValueError, RecursionError, MemoryError):
        raise LangError("the text cannot be parsed") from None


def _convert(node: ast.AST, ctx: _Ctx) -> Node:
    ctx.count += 1
    if ctx.count > MAX_NODES:
        raise LangError("the expression is too long", getattr(node, "lineno", None))
    line = getattr(node, "lineno", None)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise LangError(f"only numbers are allowed as constants, not {node.value!r}", line)
        return Const(float(node.value))
    if isinstance(node, ast.Name):
        return _name(node.id, ctx, line)
    if isinstance(node, ast.BinOp):
        op_name = type(node.op).__name__
        if op_name not in BINOPS or (ctx.formula and op_name == "MatMult"):
            raise LangError(f"operator {op_name} is not allowed", line)
        return Op(BINOPS[op_name], (_convert(node.left, ctx), _convert(node.right, ctx)))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.USub):
            inner = _convert(node.operand, ctx)
            return Const(-inner.value) if isinstance(inner, Const) else Op("neg", (inner,))
        if isinstance(node.op, ast.UAdd):
            return _convert(node.operand, ctx)
        raise LangError(f"operator {type(node.op).__name__} is not allowed", line)
    if isinstance(node, ast.Call):
        return _call(node, ctx, line)
    if isinstance(node, ast.Attribute) and node.attr == "T" and not ctx.formula:
        return Op("transpose", (_convert(node.value, ctx),))
    if isinstance(node, ast.Subscript) and not ctx.formula:
        return Op("index", (_convert(node.value, ctx),), index=_index(node.slice, line))
    raise LangError(f"{type(node).__name__} is not allowed here", line)


def _name(name: str, ctx: _Ctx, line: int | None) -> Node:
    if name in ctx.known:
        return Name(name)
    if ctx.formula and name in FORMULA_CONSTANTS:
        return Const(FORMULA_CONSTANTS[name])
    allowed = ", ".join(sorted(ctx.known))
    raise LangError(f"unknown name `{name}` (known: {allowed})", line)


def _call(node: ast.Call, ctx: _Ctx, line: int | None) -> Node:
    func = node.func
    args: list[ast.expr] = list(node.args)
    if (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and (func.value.id == "torch" or (ctx.formula and func.value.id in FORMULA_MODULES))
    ):
        fn = FORMULA_FUNCTIONS.get(func.attr) if ctx.formula else TORCH_FUNCTIONS.get(func.attr)
        spelled = f"{func.value.id}.{func.attr}"
    elif isinstance(func, ast.Attribute) and not ctx.formula:
        fn = TORCH_FUNCTIONS.get(func.attr)
        args = [func.value, *args]
        spelled = f".{func.attr}()"
    elif isinstance(func, ast.Name) and ctx.formula:
        fn = FORMULA_FUNCTIONS.get(func.id)
        spelled = func.id
    else:
        raise LangError("only whitelisted torch functions may be called", line)
    if fn is None:
        raise LangError(f"function `{spelled}` is not allowed", line)
    info = OPS[fn]
    kwargs: list[tuple[str, int]] = []
    for kw in node.keywords:
        if kw.arg not in info.kwargs:
            raise LangError(f"`{spelled}` takes no keyword `{kw.arg}`", line)
        kwargs.append((kw.arg, _int_literal(kw.value, line)))
    if fn == "pow" and len(args) == 2:
        pass
    elif len(args) != info.arity:
        raise LangError(f"`{spelled}` takes {info.arity} argument(s), got {len(args)}", line)
    return Op(fn, tuple(_convert(a, ctx) for a in args), tuple(kwargs))


def _int_literal(node: ast.expr, line: int | None) -> int:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_int_literal(node.operand, line)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    raise LangError("only integer literals are allowed here", line)


def _index(node: ast.expr, line: int | None) -> tuple[int, ...]:
    if isinstance(node, ast.Tuple):
        return tuple(_int_literal(e, line) for e in node.elts)
    return (_int_literal(node, line),)
