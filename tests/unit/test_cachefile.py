"""Cache entries are believed only while they hold what they were sealed with."""

from __future__ import annotations

from pathlib import Path

from harness import cachefile


def _entry(tmp_path: Path) -> Path:
    e = tmp_path / "tmp-entry"
    e.mkdir()
    (e / "bzImage").write_bytes(b"x" * 4096)
    (e / "sub").mkdir()
    (e / "sub" / "lib.so").write_bytes(b"lib")
    return e


def test_sealed_entry_verifies_and_damage_discards_it(tmp_path: Path) -> None:
    final = tmp_path / "final"
    cachefile.install(_entry(tmp_path), final, "test")
    assert cachefile.verified(final, "test")
    with (final / "bzImage").open("r+b") as f:
        f.truncate(100)
    assert cachefile.problems(final) == ["bzImage: 100 bytes, 4096 when stored"]
    assert not cachefile.verified(final, "test") and not final.exists()


def test_same_size_edit_and_missing_file_are_damage(tmp_path: Path) -> None:
    final = tmp_path / "final"
    cachefile.install(_entry(tmp_path), final, "test")
    (final / "sub" / "lib.so").write_bytes(b"LIB")
    assert cachefile.problems(final) == ["sub/lib.so: content changed since it was stored"]
    (final / "bzImage").unlink()
    assert "bzImage: missing" in cachefile.problems(final)


def test_unsealed_entry_is_not_believed_but_kept_and_install_replaces_it(tmp_path: Path) -> None:
    final = tmp_path / "final"
    final.mkdir()
    (final / "bzImage").write_bytes(b"old")
    assert not cachefile.verified(final, "test") and final.exists()
    cachefile.install(_entry(tmp_path), final, "test")
    assert cachefile.verified(final, "test") and (final / "bzImage").stat().st_size == 4096


def test_install_over_an_intact_entry_keeps_the_winner(tmp_path: Path) -> None:
    final = tmp_path / "final"
    cachefile.install(_entry(tmp_path), final, "test")
    loser = tmp_path / "loser"
    loser.mkdir()
    (loser / "bzImage").write_bytes(b"y")
    cachefile.install(loser, final, "test")
    assert not loser.exists() and (final / "bzImage").read_bytes() == b"x" * 4096
