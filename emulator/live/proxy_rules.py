"""What the fault proxy does to each frame: the catalogue's ``network.*`` faults with
ISO 8583-aware triggers, and Toxiproxy's toxics (a pure core, no sockets).

A :class:`Rule` is one ``network.*`` fault: it acts on frames of one direction
(``to_bank`` = Toxiproxy's ``upstream``, ``to_terminal`` = ``downstream``, or both)
whose MTI matches ``mti`` (``"0210"``, ``"04xx"``, a list; none = every frame), from the
``nth`` such frame on, ``count`` times (0 = while active), between ``at_s`` and
``at_s + for_s`` seconds after the proxy started. A :class:`Toxic` is one of
Toxiproxy's byte-level toxics (``latency``, ``timeout``, ``reset_peer``, ``slicer``,
``limit_data``, ``bandwidth``) with its ``stream`` and ``toxicity``; the ISO 8583-aware
faults come through the same API as toxics whose type is the fault's name.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devices.errors import ScenarioError, UsageError

__all__ = [
    "FRAME_FAULTS", "STREAMS", "TOXIC_TYPES", "ProxyFile", "Rule", "Toxic", "load_proxy_file",
    "mti_matches", "rule_from_toxic", "toxic_from_json",
]

FRAME_FAULTS: dict[str, dict[str, Any]] = {
    "network.drop": {"count": 1},
    "network.duplicate": {"count": 0},
    "network.corrupt": {"count": 1, "bytes": 1, "field": 0},
    "network.latency": {"delay_s": 1.0, "jitter_s": 0.0, "count": 0},
    "network.down": {"count": 0},
    "network.close": {"count": 1},
    "network.reset": {"count": 1},
    "network.split": {"pieces": 2, "delay_s": 0.05, "count": 1},
}
"""The ``network.*`` faults the proxy acts on, with their parameters' defaults (as the
catalogue's, except that every one takes ``count`` and a trigger)."""
STREAMS = {"upstream": "to_bank", "downstream": "to_terminal"}
"""Toxiproxy's streams and the catalogue's directions they are."""
TOXIC_TYPES: dict[str, dict[str, float]] = {
    "latency": {"latency": 0, "jitter": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "bandwidth": {"rate": 0},
}
"""Toxiproxy's toxics the proxy implements, with their attributes' defaults (its units:
milliseconds, microseconds for the slicer's ``delay``, KB/s for ``rate``)."""
_TRIGGER_KEYS = ("fault", "direction", "mti", "nth", "at_s", "for_s")


def mti_matches(pattern: tuple[str, ...], mti: str | None) -> bool:
    """Whether ``mti`` matches one of ``pattern`` (``x`` matches any digit); an empty
    pattern matches every frame, one with no MTI only the empty pattern."""
    if not pattern:
        return True
    if mti is None:
        return False
    return any(len(p) == len(mti) and all(a in ("x", b) for a, b in zip(p, mti, strict=True))
               for p in pattern)


@dataclass
class Rule:
    """One ISO 8583-aware fault and what it has done so far."""

    fault: str
    direction: str = "both"
    mti: tuple[str, ...] = ()
    nth: int = 1
    count: int = 0
    at_s: float = 0.0
    for_s: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    seen: int = 0
    acted: int = 0

    def fires(self, direction: str, mti: str | None, now_s: float) -> bool:
        """Count a frame going ``direction``; whether the fault acts on it."""
        if self.direction not in ("both", direction) or not mti_matches(self.mti, mti):
            return False
        if now_s < self.at_s or (self.for_s is not None and now_s >= self.at_s + self.for_s):
            return False
        self.seen += 1
        if self.seen < self.nth or (self.count and self.acted >= self.count):
            return False
        self.acted += 1
        return True

    def param(self, name: str) -> Any:
        return self.params.get(name, FRAME_FAULTS[self.fault].get(name))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "fault": self.fault, "direction": self.direction,
                "mti": list(self.mti), "nth": self.nth, "count": self.count,
                "params": self.params, "seen": self.seen, "acted": self.acted}


@dataclass
class Toxic:
    """One of Toxiproxy's toxics (or an ISO 8583-aware fault, ``rule`` set), as its API
    shows it."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, Any] = field(default_factory=dict)
    rule: Rule | None = None
    acted: int = 0

    def attr(self, name: str) -> float:
        return float(self.attributes.get(name, TOXIC_TYPES.get(self.type, {}).get(name, 0)))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream,
                "toxicity": self.toxicity, "attributes": self.attributes}


def _mti(value: object, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(
            isinstance(m, str) and len(m) == 4 and all(c in "0123456789x" for c in m)
            for m in items):
        raise ValueError(f"{where}: mti must be a 4-digit MTI (x = any digit) or a list of "
                         f"them, not {value!r}")
    return tuple(str(m) for m in items)


def _number(value: object, where: str, integer: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 or (
            integer and not isinstance(value, int)):
        kind = "a whole number" if integer else "a number"
        raise ValueError(f"{where}: must be {kind} of 0 or more, not {value!r}")
    return value


def make_rule(entry: Mapping[str, Any], where: str, direction: str | None = None) -> Rule:
    """A :class:`Rule` from a ``[[faults]]`` table (or a toxic's attributes); ValueError
    naming the key otherwise."""
    fault = entry.get("fault")
    if fault not in FRAME_FAULTS:
        raise ValueError(f"{where}.fault: the proxy acts on {', '.join(FRAME_FAULTS)}, "
                         f"not {fault!r}")
    if "on" in entry or "step" in entry:
        raise ValueError(f"{where}.on: the proxy triggers on frames: use mti and nth "
                         "(or at_s)")
    known = set(_TRIGGER_KEYS) | set(FRAME_FAULTS[fault]) | {"jitter_s"}
    for key in entry:
        if key not in known:
            raise ValueError(f"{where}.{key}: not a key of {fault} in the proxy (one of "
                             f"{', '.join(sorted(known))})")
    direction = direction or entry.get("direction", "both")
    if direction not in ("both", "to_bank", "to_terminal"):
        raise ValueError(f"{where}.direction: to_bank, to_terminal or both, not {direction!r}")
    params = {k: _number(v, f"{where}.{k}", k in ("pieces", "bytes", "field"))
              for k, v in entry.items() if k in FRAME_FAULTS[fault] and k != "count"}
    for_s = entry.get("for_s")
    return Rule(
        str(fault), direction, _mti(entry.get("mti", []), f"{where}.mti"),
        max(_number(entry.get("nth", 1), f"{where}.nth", True), 1),
        _number(entry.get("count", FRAME_FAULTS[fault]["count"]), f"{where}.count", True),
        float(_number(entry.get("at_s", 0.0), f"{where}.at_s")),
        None if for_s is None else float(_number(for_s, f"{where}.for_s")), params)


def rule_from_toxic(toxic: Toxic) -> Rule:
    """The rule of a toxic whose type is a ``network.*`` fault; ValueError otherwise."""
    where = f"toxic {toxic.name!r}"
    rule = make_rule({"fault": toxic.type, **toxic.attributes}, f"{where} attributes",
                     STREAMS[toxic.stream])
    rule.name = toxic.name
    return rule


def toxic_from_json(data: object) -> Toxic:
    """A toxic from the body of ``POST /proxies/{name}/toxics``; ValueError otherwise."""
    if not isinstance(data, dict):
        raise ValueError("a toxic is a JSON object")
    kind = data.get("type")
    if kind not in TOXIC_TYPES and kind not in FRAME_FAULTS:
        raise ValueError(f"unknown toxic type {kind!r}; one of "
                         f"{', '.join([*TOXIC_TYPES, *FRAME_FAULTS])}")
    stream = data.get("stream", "downstream")
    if stream not in STREAMS:
        raise ValueError(f"stream must be upstream or downstream, not {stream!r}")
    toxicity = data.get("toxicity", 1.0)
    if isinstance(toxicity, bool) or not isinstance(toxicity, int | float) or not (
            0 <= toxicity <= 1):
        raise ValueError(f"toxicity must be between 0 and 1, not {toxicity!r}")
    attributes = data.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise ValueError("attributes must be a JSON object")
    if kind in TOXIC_TYPES:
        for key, value in attributes.items():
            if key not in TOXIC_TYPES[kind]:
                raise ValueError(f"{kind}: unknown attribute {key!r}; one of "
                                 f"{', '.join(TOXIC_TYPES[kind])}")
            _number(value, f"{kind}.{key}")
    toxic = Toxic(str(data.get("name") or f"{kind}_{stream}"), str(kind), stream,
                  float(toxicity), dict(attributes))
    if kind in FRAME_FAULTS:
        toxic.rule = rule_from_toxic(toxic)
    return toxic


@dataclass(frozen=True)
class ProxyFile:
    """What the proxy takes from a scenario FILE: its seed and its ``network.*`` faults."""

    seed: int
    rules: tuple[Rule, ...]


def load_proxy_file(path: str | Path) -> ProxyFile:
    """Read FILE's ``seed`` and ``[[faults]]`` (each a ``network.*`` fault, with ``mti``
    and ``nth`` as its trigger); ScenarioError naming the key otherwise."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not TOML: {exc}", path=str(path)) from exc
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"seed must be a whole number, not {seed!r}", path=str(path),
                            key="seed")
    faults = data.get("faults", [])
    if not isinstance(faults, list):
        raise ScenarioError("faults must be an array of tables ([[faults]])", path=str(path),
                            key="faults")
    rules = []
    for n, entry in enumerate(faults):
        if not isinstance(entry, dict):
            raise ScenarioError("a fault is a table", path=str(path), key=f"faults[{n}]")
        try:
            rule = make_rule(entry, f"faults[{n}]")
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            raise ScenarioError(message, path=str(path), key=key) from exc
        rule.name = f"faults[{n}]"
        rules.append(rule)
    return ProxyFile(seed, tuple(rules))
