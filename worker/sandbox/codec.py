"""Values on the wire, inside the child: decode call inputs, encode results as plain data.

Encoding trusts nothing the learner returned: only exact built-in types, tensors and
numpy arrays are accepted, so an object with a lying __eq__, __float__ or __iter__, or
a float subclass, is refused instead of being asked about itself. Non-finite floats
become the strings "NaN", "Infinity" and "-Infinity", so results are strict JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numpy
import torch

_DTYPES = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64}
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
MAX_DEPTH = 32
_NO_TORCH_FUNCTION = getattr(
    torch._C, "DisableTorchFunctionSubclass", torch._C.DisableTorchFunction
)


class UnencodableResult(Exception):
    """The learner's code returned something that is not plain data."""


def decode(value: Any) -> Any:
    """Call inputs as data -> Python values with tensors rebuilt (float64 unless stated)."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            dtype = _DTYPES[str(value.get("dtype", "float64"))]
            tensor = torch.tensor(value["__tensor__"], dtype=dtype)
            return tensor.requires_grad_(bool(value.get("requires_grad", False)))
        return {key: decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [decode(item) for item in value]
    return value


def _float(value: float) -> float | str:
    return value if math.isfinite(value) else _NONFINITE[repr(value)]


def _plain_list(items: Any) -> Any:
    if isinstance(items, list):
        return [_plain_list(item) for item in items]
    if type(items) is float:
        return _float(items)
    return items  # int or bool from tolist()


def _tensor(value: torch.Tensor) -> dict[str, Any]:
    with _NO_TORCH_FUNCTION():
        # A subclass may override any method or property: read a plain view instead.
        plain = torch.Tensor.as_subclass(value, torch.Tensor)
        if type(plain) is not torch.Tensor:
            raise UnencodableResult("a tensor subclass")
        requires_grad = plain.requires_grad
        tensor = plain.detach()
        if tensor.is_complex() or tensor.layout != torch.strided:
            raise UnencodableResult("a complex or sparse tensor")
        return {
            "__tensor__": _plain_list(tensor.tolist()),
            "dtype": str(tensor.dtype).removeprefix("torch."),
            "shape": list(tensor.shape),
            "requires_grad": bool(requires_grad),
        }


def _ndarray(value: numpy.ndarray) -> dict[str, Any]:
    if value.dtype.kind not in "fiub":
        raise UnencodableResult(f"a numpy array of {value.dtype}")
    return {
        "__tensor__": _plain_list(numpy.ndarray.tolist(value)),
        "dtype": str(value.dtype),
        "shape": list(value.shape),
        "requires_grad": False,
    }


def encode(value: Any, depth: int = 0) -> Any:
    """A learner's return value -> strict JSON data, or UnencodableResult naming what was wrong."""
    if depth > MAX_DEPTH:
        raise UnencodableResult(f"data nested more than {MAX_DEPTH} levels deep")
    kind = type(value)
    if value is None or kind is bool or kind is int or kind is str:
        return value
    if kind is float:
        return _float(value)
    if kind is list or kind is tuple:
        return [encode(item, depth + 1) for item in value]
    if kind is dict:
        out: dict[str, Any] = {}
        for key, item in dict.items(value):
            if type(key) is not str:
                raise UnencodableResult("a dict whose keys are not strings")
            out[key] = encode(item, depth + 1)
        return out
    if isinstance(value, torch.Tensor):
        return _tensor(value)
    if kind is numpy.ndarray:
        return _ndarray(value)
    if kind in (numpy.float64, numpy.float32, numpy.float16):
        return _float(float(value))
    if kind in (numpy.int64, numpy.int32, numpy.bool_):
        return numpy.generic.item(value)
    name = type.__dict__["__name__"].__get__(kind)
    raise UnencodableResult(f"a value of type {name}")
