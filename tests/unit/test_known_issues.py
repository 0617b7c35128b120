"""Known issues (harness.console.known): loading, validation errors, matching."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.console import classify_text
from harness.console.known import (
    REPO_KNOWN_ISSUES,
    KnownIssue,
    load_known,
    match,
    merge_known,
)
from harness.errors import EXIT_USAGE, UsageError

CORPUS = Path(__file__).resolve().parents[1] / "data" / "console"

GOOD = '''
[[issue]]
id = "vmpressure-uaf"
title = "^KASAN: slab-use-after-free Read in vmpressure_"
culprit = "code"
policy = "fail"
url = "https://lore.kernel.org/r/fixture"
version = 2

[[issue]]
id = "netdev-leak"
signature = "%s"
culprit = "harness"
policy = "warn"
'''


def _write(tmp_path: Path, text: str, name: str = "known.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _netdev_signature() -> str:
    return classify_text((CORPUS / "fmt-netdev-refcount.log").read_text())[0].signature


def test_repo_file_loads_and_matches_its_own_golden() -> None:
    known = load_known(REPO_KNOWN_ISSUES)
    assert known and all(isinstance(k, KnownIssue) for k in known)
    findings = classify_text((CORPUS / "raw-boot-ioapic-timer-panic.log").read_text())
    ((f, issue),) = match(findings, known)
    assert issue is not None and issue.id == "tcg-ioapic-timer" and issue.culprit == "tool"


def test_load_and_match_by_title_and_signature(tmp_path: Path) -> None:
    known = load_known(_write(tmp_path, GOOD % _netdev_signature()))
    assert [(k.id, k.culprit, k.policy, k.version) for k in known] == [
        ("vmpressure-uaf", "code", "fail", 2), ("netdev-leak", "harness", "warn", 1)]
    assert known[0].url.endswith("fixture") and known[1].url == ""
    text = "".join((CORPUS / n).read_text() for n in
                   ("fmt-kasan-mutex-uaf.log", "fmt-netdev-refcount.log", "dbg-warning.log"))
    pairs = match(classify_text(text), known)
    got = [(f.kind, k.id if k else None) for f, k in pairs]
    assert got[0] == ("kasan", "vmpressure-uaf")
    assert ("netdev_refcount", "netdev-leak") in got
    assert ("warning", None) in got  # not known: still reported, unmatched
    assert [f.to_dict() for f, _ in pairs] == [f.to_dict() for f in classify_text(text)]


def test_first_matching_issue_wins_and_merge_replaces_by_id(tmp_path: Path) -> None:
    repo = load_known(_write(tmp_path, GOOD % _netdev_signature(), "a.toml"))
    user = load_known(_write(tmp_path, '''
[[issue]]
id = "vmpressure-uaf"
title = "vmpressure"
culprit = "tool"
policy = "warn"
[[issue]]
id = "any-kasan"
title = "^KASAN"
culprit = "code"
policy = "fail"
''', "b.toml"))
    merged = merge_known(repo, user)
    assert [k.id for k in merged] == ["vmpressure-uaf", "netdev-leak", "any-kasan"]
    assert merged[0].culprit == "tool"  # the user's definition, in the repo's place
    (f,) = classify_text((CORPUS / "fmt-kasan-mutex-uaf.log").read_text())
    assert match([f], merged)[0][1] is merged[0]
    assert match([f], list(reversed(merged)))[0][1] is merged[2]
    assert match([], merged) == []


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('[[issue]]\nid = "a"\ntitle = "x"\nculprit = "code"\npolicy = "fail"\npolcy = "x"\n',
         "issue[0].polcy", "unknown key"),
        ('issues = []\n', ":issues", "unknown key"),
        ('[[issue]]\ntitle = "x"\nculprit = "code"\npolicy = "fail"\n', "issue[0].id", "missing"),
        ('[[issue]]\nid = "a"\nculprit = "code"\npolicy = "fail"\n', "issue[0]",
         "title regex or a signature"),
        ('[[issue]]\nid = "a"\ntitle = "x"\nculprit = "kernel"\npolicy = "fail"\n',
         "issue[0].culprit", "code, tool, harness"),
        ('[[issue]]\nid = "a"\ntitle = "x"\nculprit = "code"\npolicy = "ignore"\n',
         "issue[0].policy", "fail, warn"),
        ('[[issue]]\nid = "a"\ntitle = "(unclosed"\nculprit = "code"\npolicy = "fail"\n',
         "issue[0].title", "bad regex"),
        ('[[issue]]\nid = "a"\nsignature = "xyz"\nculprit = "code"\npolicy = "fail"\n',
         "issue[0].signature", "hex"),
        ('[[issue]]\nid = "a b"\ntitle = "x"\nculprit = "code"\npolicy = "fail"\n',
         "issue[0].id", "only letters"),
        ('[[issue]]\nid = "a"\ntitle = 3\nculprit = "code"\npolicy = "fail"\n',
         "issue[0].title", "must be a string"),
        ('[[issue]]\nid = "a"\ntitle = "x"\nculprit = "code"\npolicy = "fail"\nversion = "1"\n',
         "issue[0].version", "integer"),
        ('[[issue]]\nid = "a"\ntitle = "x"\nculprit = "code"\npolicy = "fail"\n' * 2,
         "issue[1].id", "already defined"),
        ('issue = "x"\n', ":issue", "array of tables"),
        ('[[issue]\n', "", "not valid TOML"),
    ],
)
def test_bad_files_are_usage_errors_naming_file_and_key(
    tmp_path: Path, text: str, where: str, what: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(UsageError) as e:
        load_known(path)
    assert e.value.exit_status == EXIT_USAGE
    assert e.value.culprit.startswith(str(path))
    assert e.value.culprit.endswith(where), e.value.culprit
    assert what in e.value.message


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as e:
        load_known(tmp_path / "nope.toml")
    assert e.value.culprit == str(tmp_path / "nope.toml") and "cannot read" in e.value.message
