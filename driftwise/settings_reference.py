"""README's configuration reference, generated from the settings models: `python -m driftwise.settings_reference`.

One row per setting: its dotted name, its environment variable, its default and its description.
A field without a default says `(required)`; a token that local runs draw says `(drawn by up)`; a
built-in sandbox credential says `(sandbox token)` (never its value); long defaults are cut.
tests/deploy/test_settings_reference.py holds README's table to this output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from driftwise.settings import Settings, SpecialistSettings
from protocol.tokens import Token

__all__ = ["HEADER", "Row", "markdown", "rows"]

HEADER = "| setting | environment | default | meaning |\n| --- | --- | --- | --- |"
_MAX_DEFAULT = 42


@dataclass(frozen=True)
class Row:
    setting: str
    environment: str
    default: str
    meaning: str

    def markdown(self) -> str:
        return f"| `{self.setting}` | `{self.environment}` | `{self.default}` | {self.meaning} |"


def _is_token(field: FieldInfo) -> bool:
    return field.annotation == Token | None or Token in get_args(field.annotation)


def _default(field: FieldInfo, value: Any) -> str:
    if value is PydanticUndefined:
        return "(required)"
    if value is None:
        return "(drawn by up)" if _is_token(field) and "generated" in (field.description or "") else "null"
    if isinstance(value, SecretStr):
        return "(sandbox token)"
    text = str(value)
    return text if len(text) <= _MAX_DEFAULT + 3 else text[:_MAX_DEFAULT] + "..."


def _value(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return field.default


def _walk(model: type[BaseModel], instance: BaseModel | None, prefix: str) -> list[Row]:
    out: list[Row] = []
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        env = "DRIFTWISE_" + dotted.upper().replace(".", "__")
        value = getattr(instance, name) if instance is not None else _value(field)
        if name == "specialists" and model is Settings:
            out.append(Row(dotted, "DRIFTWISE_SPECIALISTS__<NAME>__<FIELD>", ", ".join(value),
                           "one entry per specialist agent:"))
            out += [Row(r.setting.replace("specialists.", "specialists.<name>.", 1),
                        r.environment.replace("DRIFTWISE_SPECIALISTS__", "DRIFTWISE_SPECIALISTS__<NAME>__", 1),
                        r.default, r.meaning) for r in _walk(SpecialistSettings, None, "specialists.")]
        elif isinstance(value, BaseModel):
            out += _walk(type(value), value, f"{dotted}.")
        else:
            out.append(Row(dotted, env, _default(field, value), field.description or ""))
    return out


def rows() -> list[Row]:
    """Every setting, in the models' order (defaults only: nothing is read from the environment or a file)."""
    return _walk(Settings, None, "")


def markdown() -> str:
    return "\n".join([HEADER, *(r.markdown() for r in rows())])


if __name__ == "__main__":
    print(markdown())
