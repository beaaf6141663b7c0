"""Plug-in firmware, as a scenario names it: ``[terminal] firmware = "package.module:factory"``.

Loading the factory and validating the plug-in's own settings happen when the scenario
is loaded, so a plug-in that cannot be loaded, or a key it does not declare, is refused
before anything runs (one line, exit status 2). The module is imported as Python imports
anything; the scenario file's folder and the current folder are searched too.
Light: no simpy (the harness that runs a plug-in is :mod:`emulator.firmware.harness`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from devices.errors import ScenarioError, UsageError
from emulator.firmware.api import SETTING_KINDS, Setting
from emulator.money import format_minor, parse_minor
from emulator.scenario.model import MONEY_KNOBS, FirmwareSpec, Scenario
from emulator.scenario.profiles import POLICY_FIELDS

Factory = Callable[..., Any]
"""``factory(kit) -> firmware``: a class or a function."""

_KINDS: dict[str, Any] = {
    "bool": bool,
    "seconds": Annotated[float, Meta(ge=0, le=1e9)],
    "count": Annotated[int, Meta(ge=0)],
    "money": str | int | float,
    "text": str,
}
_KIND_WORDS = {"bool": "true or false", "seconds": "seconds, a number >= 0",
               "count": "a whole number >= 0", "money": 'an amount like "12.50"',
               "text": "a string"}


def parse_ref(ref: object) -> tuple[str, str]:
    """``"package.module:factory"`` as (module, attribute); UsageError if malformed."""
    if not isinstance(ref, str):
        raise UsageError(f"expected a string like 'package.module:factory', got {ref!r}")
    module, sep, name = ref.partition(":")
    if not sep or not module.strip() or not name.strip() or not all(
            part.isidentifier() for part in (*module.split("."), *name.split("."))):
        raise UsageError(f"{ref!r} is not 'package.module:factory'")
    return module, name


def load_factory(ref: object, near: str | None = None) -> Factory:
    """Import the factory ``ref`` names (searching ``near``'s folder and the current one
    too); UsageError with one line when it cannot be loaded."""
    module_name, name = parse_ref(ref)
    for folder in (os.path.dirname(os.path.abspath(near)) if near else None, os.getcwd()):
        if folder is not None and folder not in sys.path:
            sys.path.append(folder)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any error while importing the user's module
        raise UsageError(f"cannot load firmware {ref}: {type(exc).__name__}: {exc}") from exc
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise UsageError(f"cannot load firmware {ref}: module {module_name} has no "
                             f"{name!r}")
        target = getattr(target, part)
    if not callable(target):
        raise UsageError(f"cannot load firmware {ref}: {name} is not callable")
    declared_settings(target, str(ref))
    return target  # type: ignore[no-any-return]


def declared_settings(factory: Factory, ref: str) -> dict[str, Setting]:
    """The settings ``factory`` declares (``factory.settings``); UsageError if malformed."""
    declared = getattr(factory, "settings", None) or {}
    if not isinstance(declared, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Setting) and v.kind in SETTING_KINDS
            for k, v in declared.items()):
        raise UsageError(f"firmware {ref}: `settings` must map names to Setting(kind, default) "
                         f"with kind one of {', '.join(SETTING_KINDS)}")
    return dict(declared)


def settings_of(factory: Factory, ref: str, table: Mapping[str, object],
                path: str | None) -> dict[str, object]:
    """The plug-in's settings from the ``[terminal]`` keys ``table``, validated like
    posemu's own knobs, defaults filled in; ScenarioError naming the key otherwise."""
    declared = declared_settings(factory, ref)
    settings = {name: s.default for name, s in declared.items()}
    for name, value in table.items():
        key = f"terminal.{name}"
        setting = declared.get(name)
        if setting is None:
            ours = " (a knob of posemu's own terminal)" if name in POLICY_FIELDS else ""
            known = ", ".join(declared) or "none"
            raise ScenarioError(f"firmware {ref} does not declare `{name}`{ours}; "
                                f"its settings: {known}", path=path, key=key)
        settings[name] = _convert(setting, value, path, key)
    return settings


def _convert(setting: Setting, value: object, path: str | None, key: str) -> object:
    kind: Any = Literal[setting.choices] if setting.choices else _KINDS[setting.kind]
    try:
        converted = msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as err:
        wanted = ("one of " + ", ".join(setting.choices) if setting.choices
                  else _KIND_WORDS[setting.kind])
        raise ScenarioError(f"expected {wanted}, got {value!r} ({err})", path=path,
                            key=key) from err
    if setting.kind == "money":
        try:
            return parse_minor(converted)
        except ValueError as err:
            raise ScenarioError(f'{err}; write a decimal string like "12.50"', path=path,
                                key=key) from err
    return converted


def terminal_plugin(data: dict[str, Any], path: str | None) -> tuple[dict[str, Any],
                                                                    FirmwareSpec | None]:
    """Split a scenario's tables: with ``[terminal] firmware``, the plug-in (loaded, its
    settings validated) and the tables with an empty ``[terminal]``; else (data, None)."""
    terminal = data.get("terminal")
    if not isinstance(terminal, dict) or "firmware" not in terminal:
        return data, None
    ref = terminal["firmware"]
    if "profile" in terminal:
        raise ScenarioError(f"firmware {ref} is a plug-in: profiles are posemu's own "
                            "terminal's", path=path, key="terminal.profile")
    try:
        factory = load_factory(ref, path)
    except UsageError as exc:
        raise ScenarioError(str(exc), path=path, key="terminal.firmware") from exc
    table = {k: v for k, v in terminal.items() if k != "firmware"}
    settings = settings_of(factory, str(ref), table, path)
    return {**data, "terminal": {}}, FirmwareSpec(ref=str(ref), table=table, settings=settings)


def with_firmware(scenario: Scenario, ref: str) -> Scenario:
    """``scenario`` run by the plug-in ``ref`` (``--firmware``): the file's ``[terminal]``
    keys must be settings the plug-in declares. UsageError if it cannot be loaded."""
    if scenario.firmware is not None:
        table = dict(scenario.firmware.table)
    else:
        if scenario.profile != "robust":
            raise ScenarioError(f"firmware {ref} is a plug-in: profiles are posemu's own "
                                "terminal's", path=scenario.path, key="terminal.profile")
        table = {k: format_minor(v) if k in MONEY_KNOBS and isinstance(v, int) else v
                 for k, v in scenario.overrides.items()}
    factory = load_factory(ref, scenario.path)
    settings = settings_of(factory, ref, table, scenario.path)
    return msgspec.structs.replace(
        scenario, firmware=FirmwareSpec(ref=ref, table=table, settings=settings))


def choose_firmware(scenario: Scenario, ref: str | None, profile: str | None) -> Scenario:
    """A front end's ``--firmware REF`` (None: the file's choice) and ``--profile``: a
    plug-in has no profiles, so both together are a UsageError."""
    if ref is not None:
        scenario = with_firmware(scenario, ref)
    if profile is not None and scenario.firmware is not None:
        raise UsageError(f"--profile {profile}: {scenario.path or 'the scenario'} runs the "
                         f"plug-in firmware {scenario.firmware.ref}, which has no profiles")
    return scenario
