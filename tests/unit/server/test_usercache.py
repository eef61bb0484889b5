"""The user cache's path rules and file handling (the HTTP side is in the integration tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bytenite_nb.server.storage.user_cache import CacheError, UserCache, check_path


@pytest.mark.parametrize("path", [
    "w.bin", "models/w.bin", "a/b/c/d.txt", ".hidden/x", "name with spaces.bin", "é/ü.bin",
    "x" * 255, "/".join(["y" * 200] * 5),
])
def test_good_paths_pass_unchanged(path: str) -> None:
    assert check_path(path) == path


@pytest.mark.parametrize(("path", "words"), [
    (None, ("empty",)),
    ("   ", ("empty",)),
    ("/abs", ("absolute",)),
    ("a/../b", ("'..'",)),
    ("..", ("'..'",)),
    ("a/./b", ("'.'",)),
    ("a//b", ("empty name",)),
    ("a/", ("empty name",)),
    ("a\x00", ("NUL",)),
    ("a\tb", ("control character",)),
    ("a\x7fb", ("control character",)),
    ("a\\b", ("'/'",)),
    ("\udcff", ("UTF-8",)),
    ("/".join(["y" * 200] * 6), ("at most 1024",)),
    ("z" * 256, ("255 bytes",)),
])
def test_bad_paths_name_the_problem_and_the_fix(path: object, words: tuple[str, ...]) -> None:
    with pytest.raises(CacheError) as caught:
        check_path(path)
    assert caught.value.status == 400
    for word in words:
        assert word in caught.value.message
    assert "e.g." in caught.value.message or "shorter" in caught.value.message


def _stored(cache: UserCache, path: str, data: bytes) -> None:
    partial = cache.partial()
    partial.write_bytes(data)
    cache.install(partial, path)
    assert not partial.exists()


def test_install_replaces_and_lists(tmp_path: Path) -> None:
    cache = UserCache(tmp_path)
    _stored(cache, "models/w.bin", b"one")
    _stored(cache, "models/w.bin", b"two!")
    assert (tmp_path / "cache" / "user" / "models" / "w.bin").read_bytes() == b"two!"
    (files,) = cache.files()
    assert (files["path"], files["size"]) == ("models/w.bin", "4")
    assert files["modifiedAt"].endswith("Z")
    cache.clean_incoming()
    assert not cache.incoming.exists()


def test_links_an_app_left_are_never_followed(tmp_path: Path) -> None:
    cache = UserCache(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    cache.root.mkdir(parents=True)
    os.symlink(outside, cache.root / "escape")
    os.symlink(outside / "precious.txt", cache.root / "link.txt")
    with pytest.raises(CacheError) as caught:
        cache.check_writable("escape/precious.txt")
    assert caught.value.status == 409 and "symbolic link" in caught.value.message
    with pytest.raises(CacheError) as caught:
        cache.delete("escape/precious.txt")
    assert caught.value.status == 404
    assert [f["path"] for f in cache.files()] == []  # links are not listed
    assert cache.delete("link.txt") == 1  # removes the link, not what it points at
    assert (outside / "precious.txt").read_text() == "keep me"
    assert cache.delete("escape") == 1
    assert (outside / "precious.txt").read_text() == "keep me"


def test_files_and_folders_in_the_way(tmp_path: Path) -> None:
    cache = UserCache(tmp_path)
    _stored(cache, "a/b.bin", b"x")
    with pytest.raises(CacheError, match="is a folder") as caught:
        cache.check_writable("a")
    assert caught.value.status == 409
    with pytest.raises(CacheError, match="is a file") as caught:
        cache.check_writable("a/b.bin/c")
    assert caught.value.status == 409
    with pytest.raises(CacheError) as caught:
        cache.delete("a/b.bin/c")
    assert caught.value.status == 404
    with pytest.raises(CacheError) as caught:
        cache.delete("nothing-here")
    assert caught.value.status == 404
    assert cache.delete("a") == 1
    assert cache.files() == []
