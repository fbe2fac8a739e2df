"""Check engines' counts against the producer's ledger, word by word, with a clear verdict."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field

from helpers.consumers.base import Snapshot


@dataclass(frozen=True)
class Reconciliation:
    """The ledger and each engine's counts side by side; ``match`` is True only if all agree."""

    ledger: dict[str, int]
    engines: dict[str, dict[str, int]]
    # the counters' snapshots when given: a mismatch then says whether an engine was behind or failed
    snapshots: dict[str, Snapshot] = field(default_factory=dict)

    @property
    def engine_match(self) -> dict[str, bool]:
        """Engine -> True when it equals the ledger exactly."""
        return {name: counts == self.ledger for name, counts in self.engines.items()}

    @property
    def match(self) -> bool:
        """True when every engine equals the ledger."""
        return all(self.engine_match.values())

    def rows(self) -> list[dict]:
        """One row per word: the ledger's count and each engine's."""
        words = sorted(set(self.ledger).union(*self.engines.values()))
        return [
            {
                "word": word,
                "ledger": self.ledger.get(word, 0),
                **{name: counts.get(word, 0) for name, counts in self.engines.items()},
            }
            for word in words
        ]

    def verdict(self) -> str:
        """One line: which engines match the ledger and which do not."""
        total = sum(self.ledger.values())
        parts = [
            f"{name} ✓" if ok else f"{name} ✗ ({self._difference(name)})"
            for name, ok in self.engine_match.items()
        ]
        head = "MATCH" if self.match else "MISMATCH"
        return f"{head}: {total} words in the ledger; " + ", ".join(parts)

    def _difference(self, name: str) -> str:
        """How an engine is off: its total against the ledger's, and how many words differ."""
        counts = self.engines[name]
        total = sum(counts.values())
        off = sum(
            1 for w in set(self.ledger) | set(counts) if counts.get(w, 0) != self.ledger.get(w, 0)
        )
        snap = self.snapshots.get(name)
        behind = ""
        if snap is not None:
            behind += "" if snap.lag is None else f", lag {snap.lag}"
            behind += f", {snap.lost} records lost unread" if snap.lost else ""
            behind += f", error: {snap.error}" if snap.error else ""
        return f"{total - sum(self.ledger.values()):+d} words in all, {off} words' counts differ{behind}"

    def as_json(self) -> dict:
        """The demo's JSON shape."""
        return {
            "ledger": dict(sorted(self.ledger.items())),
            "engines": {
                name: {"counts": dict(sorted(counts.items())), "match": counts == self.ledger}
                for name, counts in self.engines.items()
            },
            "match": self.match,
        }

    def __str__(self) -> str:
        rows = self.rows()
        columns = ["word", "ledger", *self.engines]
        width = max([len(c) for c in columns] + [len(str(r["word"])) for r in rows]) + 2
        lines = ["".join(c.ljust(width) for c in columns)]
        for row in rows:
            marks = ["" if row[n] == row["ledger"] else " ✗" for n in self.engines]
            cells = [str(row["word"]), str(row["ledger"])] + [
                f"{row[n]}{m}" for n, m in zip(self.engines, marks, strict=True)
            ]
            lines.append("".join(c.ljust(width) for c in cells))
        return "\n".join([*lines, self.verdict()])

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in ["word", "ledger", *self.engines])
        body = []
        for row in self.rows():
            cells = [f"<td>{html.escape(row['word'])}</td><td>{row['ledger']}</td>"]
            for name in self.engines:
                style = "" if row[name] == row["ledger"] else ' style="background:#fdd"'
                cells.append(f"<td{style}>{row[name]}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        color = "green" if self.match else "crimson"
        return (
            f"<table><tr>{head}</tr>{''.join(body)}</table>"
            f'<p style="color:{color};font-weight:bold">{html.escape(self.verdict())}</p>'
        )


def reconcile(
    ledger: Mapping[str, int], engines: Mapping[str, Mapping[str, int] | Snapshot]
) -> Reconciliation:
    """Compare ``ledger`` with each engine's counts (a dict or a counter's Snapshot)."""
    counts = {
        name: dict(value.counts if isinstance(value, Snapshot) else value)
        for name, value in engines.items()
    }
    snapshots = {name: value for name, value in engines.items() if isinstance(value, Snapshot)}
    return Reconciliation(ledger=dict(ledger), engines=counts, snapshots=snapshots)
