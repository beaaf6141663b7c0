"""Host verdicts from the terminal's side: what an acquirer host must do, judged from the
messages one terminal sent and received (a pure core: no sockets).

Each rule names the messages that break it (``#3 0210 STAN 000001 at 0.41 s``):

``answered_or_reversed``
    every request is answered within the terminal's timeout, or the terminal reversed
    it (or repeated it) and that was answered.
``repeat_same_outcome``
    a repeat (0201, 0221, 0401) or a request received twice (the same STAN and terminal
    id answered again) is answered with the original's outcome: the same response code,
    RRN (37), approval code (38) and amount; anything else means it was processed again.
``posted_once``
    the host holds no more than the terminal knows it charged: a status answer (0610 00)
    does not show more standing for a transaction than its approval, and the settlement
    (0510) agrees with the terminal's totals (answered 00, not 95).
``early_reversal_honoured``
    a reversal the host answered 25 (original unknown: it overtook its original) is
    honoured: the original is not approved afterwards.
``fields_echoed``
    each answer names a request of this terminal: its STAN (11) and terminal id (41),
    the response MTI of the request's, and its amount (4), or for a partial approval
    (39 = 10) an amount above zero and below the one asked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from devices.errors import MessageError
from devices.iso8583.message import decode, parse_original

__all__ = ["RULES", "Breach", "Message", "judge_host", "messages_from_log"]

RULES = ("answered_or_reversed", "repeat_same_outcome", "posted_once",
         "early_reversal_honoured", "fields_echoed")
_APPROVED = ("00", "10")


@dataclass(frozen=True)
class Message:
    """One message the terminal sent or received, its fields without the card number."""

    n: int
    t: float
    sent: bool
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def mti(self) -> str:
        return str(self.fields.get("t", "????"))

    def get(self, key: str) -> str:
        value = self.fields.get(key)
        return value if isinstance(value, str) else ""

    def __str__(self) -> str:
        return f"#{self.n} {self.mti} STAN {self.get('11') or '?'} at {self.t:.2f} s"


@dataclass(frozen=True)
class Breach:
    """A rule the host broke, and the messages that show it."""

    rule: str
    detail: str
    messages: tuple[Message, ...]

    def __str__(self) -> str:
        return f"host.{self.rule}: {self.detail} ({', '.join(map(str, self.messages))})"


def messages_from_log(log: list[tuple[float, bool, bytes]]) -> list[Message]:
    """The decodable frames of a transport's log (time, sent, frame) as messages."""
    out = []
    for n, (t, sent, frame) in enumerate(log, 1):
        try:
            fields = decode(frame)
        except MessageError:
            continue
        fields.pop("2", None)
        out.append(Message(n, t, sent, dict(fields)))
    return out


def _answers(request: Message) -> str:
    """The response MTI of a request (0201 and 0200 are both answered 021x)."""
    mti = request.mti
    return mti[:2] + str(int(mti[2]) + 1) if mti[2].isdigit() else ""


def _key(m: Message) -> tuple[str, str, str]:
    """The transaction a message is about: terminal id, STAN and field 7 of the original
    (a reversal's and a status query's from field 90)."""
    if m.mti[:3] in ("040", "041", "060", "061") and m.get("90"):
        try:
            _, stan, f7 = parse_original(m.get("90"))
        except MessageError:
            pass
        else:
            return (m.get("41"), stan, f7)
    return (m.get("41"), m.get("11"), m.get("7"))


def judge_host(messages: list[Message], timeout_s: float) -> list[Breach]:
    """Every rule of :data:`RULES` against one terminal's messages, in order."""
    requests = [m for m in messages if m.sent]
    breaches: list[Breach] = []
    matched: dict[int, list[Message]] = {r.n: [] for r in requests}
    for answer in (m for m in messages if not m.sent):
        request = next((r for r in reversed(requests) if r.n < answer.n
                        and r.get("11") == answer.get("11") and r.get("41") == answer.get("41")
                        and _answers(r)[:3] == answer.mti[:3]), None)
        if request is None:
            breaches.append(Breach("fields_echoed", "an answer names no request this terminal "
                                   f"sent (STAN {answer.get('11')!r}, terminal id "
                                   f"{answer.get('41')!r})", (answer,)))
            continue
        matched[request.n].append(answer)
        _check_amount(request, answer, breaches)
    _check_answered(requests, matched, timeout_s, breaches)
    _check_repeats(requests, matched, breaches)
    _check_reversals(messages, requests, matched, breaches)
    _check_books(requests, matched, breaches)
    return breaches


def _check_amount(request: Message, answer: Message, breaches: list[Breach]) -> None:
    asked, got, code = request.get("4"), answer.get("4"), answer.get("39")
    if request.mti[:2] != "02" or not asked.isdigit():
        return
    if code == "10":
        if not got.isdigit() or not 0 < int(got) < int(asked):
            breaches.append(Breach("fields_echoed", f"a partial approval of {asked} carries "
                                   f"amount {got or 'none'}", (request, answer)))
    elif got and got != asked:
        breaches.append(Breach("fields_echoed", f"amount {got} answered for {asked} asked",
                               (request, answer)))


def _check_answered(requests: list[Message], matched: dict[int, list[Message]],
                    timeout_s: float, breaches: list[Breach]) -> None:
    for request in requests:
        if request.mti[:3] not in ("020", "022", "050"):
            continue
        in_time = [a for a in matched[request.n] if a.t - request.t <= timeout_s + 1e-9]
        if in_time:
            continue
        key = _key(request)
        later = [r for r in requests if r.n > request.n and _key(r) == key
                 and r.mti[:3] in ("020", "022", "040", "050")]
        if any(matched[r.n] for r in later):
            continue
        late = matched[request.n]
        detail = (f"answered {late[0].t - request.t:.2f} s after, past the terminal's "
                  f"{timeout_s:g} s, and never reversed" if late else
                  "never answered, and no reversal or repeat of it answered")
        breaches.append(Breach("answered_or_reversed", detail, (request, *late[:1], *later)))


def _check_repeats(requests: list[Message], matched: dict[int, list[Message]],
                   breaches: list[Breach]) -> None:
    first: dict[tuple[str, str, str, str], Message] = {}
    for request in requests:
        for answer in matched[request.n]:
            group = (answer.mti[:3], *_key(request)) if request.mti[:3] != "040" else (
                answer.mti[:3], request.get("41"), request.get("11"), request.get("7"))
            original = first.setdefault(group, answer)
            if original is answer or answer.get("39") in ("", "30", "63", "96", "91"):
                continue
            if original.get("39") in ("30", "63", "96", "91"):
                first[group] = answer
                continue
            differs = [f for f in ("39", "37", "38", "4") if original.get(f) != answer.get(f)]
            if differs:
                breaches.append(Breach(
                    "repeat_same_outcome", "the same transaction answered again with another "
                    "outcome (" + ", ".join(f"field {f}: {original.get(f) or '-'} then "
                                            f"{answer.get(f) or '-'}" for f in differs)
                    + "): processed twice", (original, request, answer)))


def _check_reversals(messages: list[Message], requests: list[Message],
                     matched: dict[int, list[Message]], breaches: list[Breach]) -> None:
    for reversal in (r for r in requests if r.mti[:3] == "040"):
        unknown = [a for a in matched[reversal.n] if a.get("39") == "25"]
        if not unknown:
            continue
        key = _key(reversal)
        for request in requests:
            if request.mti[:3] not in ("020", "022") or _key(request) != key:
                continue
            approved = [a for a in matched[request.n]
                        if a.get("39") in _APPROVED and a.n > unknown[0].n]
            if approved:
                breaches.append(Breach(
                    "early_reversal_honoured", "a reversal answered 25 (original unknown), "
                    "then the original approved: the host posted it after the reversal",
                    (reversal, unknown[0], request, approved[0])))


def _check_books(requests: list[Message], matched: dict[int, list[Message]],
                 breaches: list[Breach]) -> None:
    approved: dict[tuple[str, str, str], int] = {}
    reversed_ok: set[tuple[str, str, str]] = set()
    for request in requests:
        for answer in matched[request.n]:
            if request.mti[:3] in ("020", "022") and answer.get("39") in _APPROVED:
                amount = answer.get("4") or request.get("4")
                if amount.isdigit():
                    approved[_key(request)] = int(amount)
            elif request.mti[:3] == "040" and answer.get("39") == "00":
                reversed_ok.add(_key(request))
    for request in requests:
        for answer in matched[request.n]:
            if request.mti[:3] == "060" and answer.get("39") == "00":
                key = _key(request)
                stands = int(answer.get("4")) if answer.get("4").isdigit() else 0
                charged = 0 if key in reversed_ok else approved.get(key, 0)
                if stands > charged:
                    breaches.append(Breach(
                        "posted_once", f"the status answer shows {stands} standing where the "
                        f"terminal was charged {charged}", (request, answer)))
            elif request.mti[:3] == "050" and answer.get("39") not in ("00", ""):
                breaches.append(Breach(
                    "posted_once", f"the settlement was answered {answer.get('39')}: the "
                    "host's totals differ from what the terminal knows it charged",
                    (request, answer)))
