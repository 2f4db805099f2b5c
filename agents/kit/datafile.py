"""A specialist's judgement as data: one YAML file read into a pydantic model, or an error naming the file and field."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader when PyYAML was built with it (several times faster at start-up), else the pure one."""


def load_yaml_model(path: Path, model: type[M], *, what: str, error: type[Exception],
                    empty_is_default: bool = False) -> M:
    """`path` as a `model`; `what` names the file in messages ("security rules"), raised as `error`.

    With `empty_is_default`, an empty file means the model's defaults."""
    try:
        data = yaml.load(path.read_text(), Loader=_LOADER)  # a safe loader, either way
    except (OSError, yaml.YAMLError) as exc:
        raise error(f"{what} {path} cannot be read: {exc}") from exc
    if empty_is_default and not data:
        data = {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise error(f"{what} {path}: {'.'.join(map(str, err['loc']))}: {err['msg']}") from exc
