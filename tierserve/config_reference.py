"""The configuration reference (docs/configuration.md), generated from the config models
so the document cannot drift from the schema (pure; `tierserve config reference`)."""

from __future__ import annotations

import enum
import json
import types
import typing

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

HEADER = """# Configuration reference

Generated from `tierserve/config.py` by `tierserve config reference` (a test fails when
this file and the models disagree): do not edit by hand. Every model is strict (unknown
keys are errors) and a file is validated as a whole before anything starts
(`tierserve config validate FILE`); errors name the field path. Examples:
`configs/local.yaml` (CPU stand-ins) and `configs/deepseek.yaml` (the GPU tiers).
"""


def reference_markdown(root: type[BaseModel]) -> str:
    sections, seen, queue = [HEADER], set(), [(root, "(top level)")]
    while queue:
        model, path = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        sections.append(_section(model, path))
        for name, info in model.model_fields.items():
            for nested in _models_in(info.annotation):
                queue.append((nested, _child_path(path, name, info.annotation)))
    return "\n".join(sections)


def _section(model: type[BaseModel], path: str) -> str:
    doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    lines = [f"## `{path}` — {model.__name__}", ""]
    if doc:
        lines += [doc, ""]
    lines += ["| field | type | default | description |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        lines.append(f"| `{name}` | {_type_name(info.annotation)}{_bounds(info)} | "
                     f"{_default(info)} | {_cell(info.description or '')} |")
    return "\n".join(lines) + "\n"


def _child_path(parent: str, name: str, annotation) -> str:
    base = name if parent == "(top level)" else f"{parent}.{name}"
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin is list or any(typing.get_origin(a) is list for a in args):
        return f"{base}[]"
    if origin is dict or any(typing.get_origin(a) is dict for a in args):
        return f"{base}.<name>"
    return base


def _models_in(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]


def _type_name(annotation) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a!r}`".replace("'", '"') for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"map {_type_name(args[0])} → {_type_name(args[1])}"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{m.value}`" for m in annotation)
    if annotation is typing.Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def _bounds(info: FieldInfo) -> str:
    marks = []
    for meta in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<"),
                           ("min_length", "min length ")):
            value = getattr(meta, attr, None)
            if value is not None:
                marks.append(f"{sign}{value}")
    return f" ({', '.join(marks)})" if marks else ""


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        try:
            value = info.default_factory()
        except TypeError:  # factories that take the validated data
            return "computed"
        return "(defaults below)" if isinstance(value, BaseModel) else _yaml_value(value)
    if info.default is PydanticUndefined:
        return ""
    value = info.default
    if isinstance(value, enum.Enum):
        value = value.value
    return _yaml_value(value)


def _yaml_value(value) -> str:
    """A default as it is written in the YAML file (JSON is YAML: null, true, "text")."""
    try:
        return f"`{json.dumps(value)}`"
    except TypeError:
        return f"`{value!r}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
