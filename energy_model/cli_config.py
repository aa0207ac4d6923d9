"""Dataclass configs as command-line flags: one flag per field (nested ones dotted, e.g.
--inference.x.steps), help text from the field's docstring."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import json
import typing

from energy_model.config import IDENTIFICATIONS, from_dict


@functools.cache
def field_docs(cls) -> dict[str, str]:
    """The docstring written under each field of a dataclass."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        ):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def seed_int(text: str) -> int:
    """An argparse type: a seed, an integer of 0 or more (numpy's generators take no other)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"a seed must be 0 or more, got {value}")
    return value


def add_identification_flag(parser: argparse.ArgumentParser) -> None:
    """--identification: a checkpoint's test-time identification method overridden."""
    parser.add_argument(
        "--identification", choices=IDENTIFICATIONS,
        help="how identification takes its argmin over attention: langevin (chains) or "
        "search (over binary masks; default: the checkpoint's inference.identification)",
    )  # fmt: skip


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_value(hint, text: str):
    """Parse a flag by its type hint: bool, int, float, str, optional, tuples and lists."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return parse_bool(text)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if text.lower() == "none":
            return None
        return _parse_value(next(a for a in args if a is not type(None)), text)
    if origin in (list, tuple):
        items = [t for t in text.replace(",", " ").split() if t]
        if origin is tuple and Ellipsis not in args and len(items) != len(args):
            raise argparse.ArgumentTypeError(
                f"expected {len(args)} comma-separated values (e.g. 3,8), got {text!r}"
            )
        parsed = [_parse_value(args[0], t) for t in items]
        return tuple(parsed) if origin is tuple else parsed
    try:
        return hint(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {hint.__name__}, got {text!r}") from None


def add_config_flags(parser: argparse.ArgumentParser, cls, prefix: str = "") -> None:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            add_config_flags(parser, hint, f"{prefix}{f.name}.")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        parser.add_argument(
            f"--{prefix}{f.name}".replace("_", "-"),
            dest=f"{prefix}{f.name}",
            type=lambda text, h=hint: _parse_value(h, text),
            default=argparse.SUPPRESS,
            metavar=type(default).__name__.upper() if default is not None else "VALUE",
            help=f"{docs.get(f.name, '')} (default: {default})".replace("%", "%%"),
        )


def _set(data: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for key in path:
        data = data.setdefault(key, {})
    data[last] = value


def build_config(cls, args: argparse.Namespace, base: dict | None = None):
    """The config: dataclass defaults, overridden by base (e.g. a --config file), then flags."""
    data = json.loads(json.dumps(dataclasses.asdict(cls())))
    for key, value in (base or {}).items():
        _merge(data, key, value)
    for dotted, value in vars(args).items():
        if "." in dotted or dotted in data:
            _set(data, dotted, value)
    return from_dict(cls, data)


def _merge(data: dict, key: str, value) -> None:
    if isinstance(value, dict) and isinstance(data.get(key), dict):
        for k, v in value.items():
            _merge(data[key], k, v)
    else:
        data[key] = value


def refuse_out_of_range(config, rules: dict[str, tuple[bool, str]]) -> None:
    """Raise ValueError naming the flag of every field of config whose rule fails: rules
    maps a (dotted, for nested configs) field name to (whether its value is usable, what it
    must be, e.g. "at least 1")."""
    bad = [
        f"--{name.replace('_', '-')} must be {need} "
        f"(got {functools.reduce(getattr, name.split('.'), config)})"
        for name, (ok, need) in rules.items()
        if not ok
    ]
    if bad:
        raise ValueError("; ".join(bad))
