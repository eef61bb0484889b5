"""A notebook saved after a run holds no credential: ``notebooks/quickstart.ipynb`` runs in a
real kernel (nbclient, widget state stored as Jupyter saves it) against a ByteNite Local whose
API key is a sentinel, and the saved file (cell outputs and widget state) is searched for the
key and for every token the run used: access tokens, result links, upload targets."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "quickstart.ipynb"
SENTINEL_KEY = "bnl_SENTINEL-4f1d9c2e7a0b44d6-never-in-a-notebook"
#: What a token of any kind looks like in text (they are URL-safe base64 strings).
_TOKENISH = re.compile(r"[A-Za-z0-9_-]{20,}")


def _credentials(db: Path) -> tuple[set[str], set[str]]:
    """The plain tokens the server issued (result links, upload targets, user-cache upload
    URLs) and the SHA-256 hashes of its access tokens (stored only hashed)."""
    with sqlite3.connect(db) as conn:
        plain = {row[0] for table in ("results", "uploads", "cache_uploads")
                 for row in conn.execute(f"SELECT token FROM {table}")}
        hashes = {row[0] for row in conn.execute("SELECT hash FROM tokens")}
    return plain, hashes


def test_a_saved_quickstart_holds_neither_the_api_key_nor_any_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    data_dir = tmp_path / "local"
    data_dir.mkdir(mode=0o700)
    key_file = data_dir / "api_key"
    key_file.write_text(SENTINEL_KEY + "\n")
    key_file.chmod(0o600)
    # The kernel inherits this environment: ByteNite Local on that data dir, nothing else.
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(data_dir))
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config.toml"))
    for name in ("BYTENITE_API_KEY", "BYTENITE_BASE_URL", "BYTENITE_LOCAL_API_KEYS"):
        monkeypatch.delenv(name, raising=False)

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = tmp_path / "quickstart.ipynb"
    nbformat.write(notebook, saved)
    text = saved.read_text(encoding="utf-8")

    # the run really used the sentinel key and left widgets in the saved state
    plain, hashes = _credentials(data_dir / "bytenite-local.db")
    assert hashes and plain, "the notebook did not talk to this ByteNite Local"
    assert notebook.metadata.get("widgets"), "no widget state was saved"
    assert SENTINEL_KEY not in text
    assert SENTINEL_KEY not in os.environ.get("BYTENITE_API_KEY", "")
    leaked = [word for word in set(_TOKENISH.findall(text))
              if word in plain or hashlib.sha256(word.encode()).hexdigest() in hashes]
    assert leaked == [], "a credential is saved in the notebook"
    assert "bnt_" not in text  # (no access token, whether or not it is still on record)
