"""Faults as data: what the injector hands to a device, and what a device reads."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ActiveFault:
    """One fault now in force on a device.

    ``remaining`` counts what is left of a ``count`` parameter (None: no limit);
    a device calls :meth:`consume` each time the fault acts.
    """

    kind: str
    params: dict[str, object] = field(default_factory=dict)
    remaining: int | None = None

    def __post_init__(self) -> None:
        count = self.params.get("count")
        if isinstance(count, int) and count > 0:
            self.remaining = count

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def consume(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1

    def param(self, name: str, default: object = None) -> object:
        return self.params.get(name, default)


class FaultBoard:
    """The faults in force on one device, in the order they started.

    A fault whose ``count`` is used up leaves the board (:meth:`consume`): it would
    act no more, and every frame or request would still pass over it. So every fault
    on the board is in force (one is never added spent).
    """

    __slots__ = ("_faults",)

    def __init__(self) -> None:
        self._faults: list[ActiveFault] = []

    def add(self, fault: ActiveFault) -> None:
        self._faults.append(fault)

    def remove(self, fault: ActiveFault) -> None:
        if fault in self._faults:
            self._faults.remove(fault)

    def consume(self, fault: ActiveFault) -> None:
        """``fault`` acted once; off the board when its ``count`` is used up."""
        fault.consume()
        if fault.spent:
            self.remove(fault)

    def has(self, kind: str) -> bool:
        if not self._faults:  # the usual case: no generator to build and run
            return False
        return any(f.kind == kind for f in self._faults)

    def first(self, kind: str, direction: str | None = None) -> ActiveFault | None:
        """The oldest fault of this kind acting on ``direction`` (if given)."""
        for f in self._faults:
            if f.kind != kind:
                continue
            if direction is not None and f.params.get("direction", "both") not in (
                "both", direction,
            ):
                continue
            return f
        return None

    def all(self, kind: str, direction: str | None = None) -> list[ActiveFault]:
        return [
            f for f in self._faults
            if f.kind == kind
            and (direction is None or f.params.get("direction", "both") in ("both", direction))
        ]

    def __bool__(self) -> bool:
        return bool(self._faults)
