"""Golden tests: real kernels' console logs against hand-reviewed findings.

Each ``tests/data/console/<name>.log`` was produced by one of this project's
kernels under QEMU (see regen.py there); ``<name>.expected.json`` lists the
findings a human checked against the log.  Logs named ``*clean*`` must yield
no finding at all.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from harness.console import ConsoleClassifier, classify_text

CORPUS = Path(__file__).resolve().parents[1] / "data" / "console"
LOGS = sorted(CORPUS.glob("*.log"))


def _expected(log: Path) -> list[dict[str, object]]:
    data = json.loads(log.with_suffix(".expected.json").read_text())
    assert isinstance(data, list)
    return data


def test_corpus_is_complete() -> None:
    assert len(LOGS) >= 40
    assert sum("clean" in p.name for p in LOGS) >= 3
    for log in LOGS:
        assert log.with_suffix(".expected.json").exists(), log.name


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_golden(log: Path) -> None:
    got = [f.to_dict() for f in classify_text(log.read_text())]
    assert got == _expected(log)
    if "clean" in log.name:
        assert got == []


@pytest.mark.parametrize("log", LOGS, ids=lambda p: p.stem)
def test_golden_streamed_in_random_chunks(log: Path) -> None:
    """Feeding in arbitrary pieces gives exactly what the whole text gives."""
    text = log.read_text()
    rng = random.Random(log.name)
    c = ConsoleClassifier()
    pos = 0
    while pos < len(text):
        step = rng.choice((1, 7, 64, 500, 4096))
        c.feed(text[pos : pos + step])
        pos += step
    c.close()
    whole = classify_text(text)
    assert [(f.to_dict(), f.block) for f in c.findings] == [
        (f.to_dict(), f.block) for f in whole
    ]


PANIC_LOGS = [p for p in LOGS if "Kernel panic" in p.read_text()]


@pytest.mark.parametrize("log", PANIC_LOGS, ids=lambda p: p.stem)
def test_fatal_published_on_the_panic_line(log: Path) -> None:
    """The VM runtime stops on a FATAL finding: it must come with its first line."""
    lines = log.read_text().splitlines(keepends=True)
    fatal = [f for f in _expected(log) if f["severity"] == "fatal"]
    if not fatal:
        pytest.skip("no fatal finding in this log")
    first = fatal[0]["line"]
    assert isinstance(first, int)
    c = ConsoleClassifier()
    c.feed("".join(lines[:first]))
    assert any(f.severity.value == "fatal" for f in c.findings)
