"""Load a recipe: YAML → dotted overrides → pydantic validation → one clear error.

Errors name the key path, the reason and where the value came from
(``recipes/x.yaml:12: train.lr: must be > 0, got -1``), and unknown keys get a
did-you-mean suggestion. Nothing here prints; the CLI turns `ConfigError` into exit 2.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from llmops.config.schema import Recipe
from llmops.errors import ConfigError
from llmops.resources import shipped_fallback

M = TypeVar("M", bound=BaseModel)


@dataclass
class LoadedRecipe:
    """A validated recipe plus what is needed to reproduce it."""

    recipe: Recipe
    source: str
    overrides: list[str] = field(default_factory=list)

    @property
    def resolved(self) -> dict[str, Any]:
        return self.recipe.model_dump(mode="json")

    @property
    def hash(self) -> str:
        return recipe_hash(self.recipe)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.resolved, sort_keys=False)


def recipe_hash(recipe: Recipe) -> str:
    """sha256 of the canonical JSON of the resolved recipe (key order independent)."""
    canonical = json.dumps(recipe.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# ---------------------------------------------------------------- YAML with line numbers


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{node.start_mark.name}:{key_node.start_mark.line + 1}: duplicate key `{key}` "
                f"(first at line {seen[key] + 1})"
            )
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _key_lines(node: yaml.Node | None, prefix: tuple = ()) -> dict[tuple, int]:
    """Map each key path (as a tuple) to its 1-based line in the YAML source."""
    lines: dict[tuple, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = prefix + (key_node.value,)
            lines[path] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[prefix + (i,)] = item.start_mark.line + 1
            lines.update(_key_lines(item, prefix + (i,)))
    return lines


def _read_yaml(path: Path, what: str = "recipe") -> tuple[dict[str, Any], dict[tuple, int]]:
    if not path.is_file():
        raise ConfigError(f"{path}: {what} file not found")
    text = path.read_text(encoding="utf-8")
    stream = io.StringIO(text)
    stream.name = str(path)  # so marks (duplicate-key errors) name the file, not "<unicode string>"
    try:
        data = yaml.load(stream, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {exc.problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} must be a mapping of keys, got {type(data).__name__}")
    return data, _key_lines(node)


# ---------------------------------------------------------------- overrides


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override `{text}`: expected KEY=VALUE, e.g. train.max_steps=20")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override `{text}`: empty key segment in `{key}`")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _schema_at(path: list[str], root: type[BaseModel] = Recipe) -> type[BaseModel] | None:
    """The pydantic model reached by following `path` from `root` (None for leaf values;
    list indices and dict keys are stepped over to the item type)."""
    model: type[BaseModel] | None = root
    in_container = False
    for part in path:
        if model is None:
            return None
        if in_container:  # a dict key or list index: same item model
            in_container = False
            continue
        fields = model.model_fields
        if part not in fields:
            return None
        annotation = fields[part].annotation
        model = _section_type(annotation)
        in_container = _is_container(annotation)
    return model


def _is_container(annotation: Any) -> bool:
    origins = {getattr(a, "__origin__", None) for a in (getattr(annotation, "__args__", None) or ())}
    origins.add(getattr(annotation, "__origin__", None))
    return bool(origins & {list, dict, tuple})


def _section_type(annotation: Any) -> type[BaseModel] | None:
    candidates = getattr(annotation, "__args__", None) or (annotation,)
    for cand in candidates:
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def _check_override_path(path: list[str], original: str) -> None:
    model: type[BaseModel] | None = Recipe
    for i, part in enumerate(path):
        if model is None:
            prefix = ".".join(path[:i])
            raise ConfigError(f"override `{original}`: `{prefix}` is a value, not a section")
        fields = list(model.model_fields)
        if part not in fields:
            dotted = ".".join(path[: i + 1])
            raise ConfigError(f"override `{original}`: unknown key `{dotted}`{_suggest(part, fields, path[:i])}")
        model = _section_type(model.model_fields[part].annotation)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted KEY=VALUE in a copy of `data`; unknown keys are errors."""
    data = json.loads(json.dumps(data, default=str)) if data else {}
    for text in overrides:
        path, value = _parse_override(text)
        _check_override_path(path, text)
        node = data
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return data


def _suggest(word: str, choices: list[str], prefix: list | tuple) -> str:
    match = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    # short keys score low on similarity (`lrate` vs `lr`): also accept a shared prefix
    match = match or [c for c in choices if len(c) >= 2 and (word.startswith(c) or c.startswith(word))][:1]
    if not match:
        return f" (valid keys: {', '.join(choices)})" if 0 < len(choices) <= 12 else ""
    dotted = ".".join([*map(str, prefix), match[0]])
    return f" (did you mean `{dotted}`?)"


# ---------------------------------------------------------------- validation errors


def _num(x: Any) -> Any:
    return int(x) if isinstance(x, float) and x.is_integer() else x


def _describe(err: dict[str, Any]) -> str:
    kind, value = err["type"], err.get("input")
    ctx = {k: _num(v) for k, v in (err.get("ctx") or {}).items()}
    got = f", got {value!r}" if not isinstance(value, (dict, list)) else ""
    if kind == "greater_than":
        return f"must be > {ctx['gt']}{got}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx['ge']}{got}"
    if kind == "less_than":
        return f"must be < {ctx['lt']}{got}"
    if kind == "less_than_equal":
        return f"must be <= {ctx['le']}{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    if kind == "missing":
        return "required"
    if kind in {"int_parsing", "int_type", "int_from_float"}:
        return f"must be an integer{got}"
    if kind in {"float_parsing", "float_type"}:
        return f"must be a number{got}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"must be true or false{got}"
    if kind in {"string_type"}:
        return f"must be a string{got}"
    if kind == "model_type" or kind == "dict_type":
        return f"must be a mapping of keys{got}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg'][0].lower()}{err['msg'][1:]}{got}"


def _format_errors(
    exc: ValidationError,
    source: str,
    lines: dict[tuple, int],
    overridden: set[tuple] = frozenset(),
    root: type[BaseModel] = Recipe,
) -> str:
    messages = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        dotted = ".".join(str(p) for p in loc)
        if err["type"] == "extra_forbidden":
            parent = _schema_at([str(p) for p in loc[:-1]], root)
            choices = list(parent.model_fields) if parent else []
            reason = f"unknown key{_suggest(str(loc[-1]), choices, loc[:-1])}"
        else:
            reason = _describe(err)
        if not dotted:  # model-level validator: its message carries the key path
            where = source
            line = None
            messages.append(f"{where}: {reason}")
            continue
        line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
        if any(loc[:n] in overridden for n in range(len(loc), 0, -1)):
            where = f"{source} (override)"
        else:
            where = f"{source}:{line}" if line else source
        messages.append(f"{where}: {dotted}: {reason}")
    return "\n".join(messages) if len(messages) > 1 else messages[0]


def load_yaml_model(path: str | Path, model: type[M], what: str) -> M:
    """Load any YAML config file (gates, alert rules, loop configs) into a strict pydantic
    model with the same errors as recipes: `file:line: key.path: reason`, did-you-mean."""
    path = shipped_fallback(path)
    data, lines = _read_yaml(path, what)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(path), lines, root=model)) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> LoadedRecipe:
    """Read, override and validate a recipe; raises ConfigError naming key path and reason.

    A relative ``recipes/…`` path that does not exist here is read from the recipes shipped
    in the package, so the documented commands work outside a checkout too."""
    path = shipped_fallback(path)
    overrides = list(overrides or [])
    data, lines = _read_yaml(path)
    merged = apply_overrides(data, overrides)
    overridden = {tuple(_parse_override(o)[0]) for o in overrides}
    try:
        recipe = Recipe.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, str(path), lines, overridden)) from None
    return LoadedRecipe(recipe=recipe, source=str(path), overrides=overrides)
