"""Secrets on the server side: validation, storage, manifest ids, and what processes get."""

from __future__ import annotations

import datetime as dt
import json
import stat
import threading
from pathlib import Path

import pytest

from bytenite_nb.server.execution.executors import (
    ProcessSpec,
    SubprocessExecutor,
)
from bytenite_nb.server.execution.executors.dask_remote import sealed as sealed_env
from bytenite_nb.server.execution.pipeline import PipelineError, run_pipeline
from bytenite_nb.server.execution.registry import Registry, manifest_secret_ids
from bytenite_nb.server.execution.secrets import JobSecrets, SecretError, validate_secret
from bytenite_nb.server.storage.store import Store
from tests.kit.apps import write_app
from tests.kit.pipeline import Recorder, load_engine, spec

KEY = "sk-unit-very-secret-42"


def _record(secret_id: str, kind: str = "other", key: str = KEY, **extra: object) -> dict:
    return validate_secret(secret_id=secret_id, secret_type=kind, secret_key=key,
                           access_key=extra.pop("access_key", None), **extra)  # type: ignore[arg-type]


# -- validation ---------------------------------------------------------------------------------


def test_valid_secrets_are_normalised() -> None:
    aws = _record("S3_CRED", "S3", access_key="AK", expires_at="2030-01-02T03:04:05+01:00")
    assert aws == {"id": "S3_CRED", "secretType": "aws", "accessKey": "AK",
                   "expiresAt": "2030-01-02T02:04:05.000Z", "params": {}, "name": "",
                   "secretKey": KEY}
    generated = _record("")
    assert generated["id"].startswith("secret_") and generated["secretType"] == "other"
    assert _record(" ")["id"] != generated["id"]


@pytest.mark.parametrize(("kwargs", "words"), [
    ({"secret_type": None}, ["secret.secretType is required", "aws, gcp, storj, other"]),
    ({"secret_type": "azure"}, ["'azure' is not supported", "s3 is accepted as aws"]),
    ({"secret_type": "gcp"}, ["secret.accessKey is required for secretType 'gcp'"]),
    ({"secret_key": ""}, ["secretKey is required", "top level"]),
    ({"secret_key": KEY + "\x00"}, ["secretKey contains a NUL"]),
    ({"secret_id": "a/b"}, ["secret.id 'a/b' is not a valid secret id", "leave it empty"]),
    ({"secret_id": "-x"}, ["is not a valid secret id"]),
    ({"secret_id": "CHUNK_NUMBER"}, ["'CHUNK_NUMBER' is the name of a variable"]),
    ({"expires_at": "tomorrow"}, ["secret.expiresAt 'tomorrow' is not an ISO 8601", "2026-"]),
])
def test_invalid_secrets_name_the_field_and_never_the_key(kwargs: dict, words: list[str]) -> None:
    args = {"secret_id": "ID", "secret_type": "other", "access_key": None, "secret_key": KEY,
            **kwargs}
    with pytest.raises(SecretError) as info:
        validate_secret(**args)
    for word in words:
        assert word in str(info.value)
    assert KEY not in str(info.value)


# -- storage ------------------------------------------------------------------------------------


def test_store_saves_replaces_lists_and_deletes(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    assert store.save_secret(_record("A", "aws", access_key="AK1")) is False
    assert store.save_secret(_record("B")) is False
    assert store.save_secret(_record("A", "aws", access_key="AK2", key="other-key-1")) is True
    assert [(r.id, r.secret_type, r.access_key) for r in store.secrets()] == [
        ("A", "aws", "AK2"), ("B", "other", "")]
    assert [r.id for r in store.secrets("other")] == ["B"]
    row = store.secrets("aws")[0]
    assert row.record(with_key=True)["secretKey"] == "other-key-1"
    assert "secretKey" not in row.record()
    assert "other-key-1" not in repr(row)
    assert store.delete_secret("aws", "A") is True
    assert store.delete_secret("aws", "A") is False
    store.close()
    reopened = Store(tmp_path / "db.sqlite")
    assert [r.id for r in reopened.secrets()] == ["B"]
    reopened.close()


def test_database_files_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    store = Store(path)
    store.save_secret(_record("A"))
    for suffix in ("", "-wal", "-shm"):
        assert stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode) == 0o600, suffix
    store.close()
    path.chmod(0o644)  # as an earlier version left it
    Store(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- manifests ----------------------------------------------------------------------------------


def test_manifest_secret_ids_any_key_case() -> None:
    assert manifest_secret_ids({"platform_config": {"secrets": ["A", "B", "A"]}}) == ("A", "B")
    assert manifest_secret_ids({"PlatformConfig": {"Secrets": ["MY_KEY"]}}) == ("MY_KEY",)
    assert manifest_secret_ids({"platform_config": {"container": "python"}}) == ()
    assert manifest_secret_ids({}) == ()


def test_a_malformed_secrets_list_is_a_load_problem(tmp_path: Path) -> None:
    write_app(tmp_path, "bad", "", template=False,
              manifest={"platform_config": {"secrets": "MY_KEY"}})
    registry = Registry(bundled=False, dirs=(tmp_path,))
    assert [p.reason for p in registry.problems] == [
        'manifest.json: platform_config.secrets must be a list of secret ids such as '
        '["MY_SECRET_ID"]']


# -- what a run gets ----------------------------------------------------------------------------


def test_job_secrets_env_problems_and_mask() -> None:
    now = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    records = [
        _record("MY_KEY"),
        _record("S3_CRED", "aws", key="aws-secret-9", access_key="AKIA1"),
        _record("OLD", key="old-secret-1", expires_at="2026-01-01T00:00:00Z"),
        _record("TWICE", "aws", key="twice-aws-1", access_key="AK"),
        _record("TWICE", "gcp", key="twice-gcp-1", access_key="GK"),
        _record("my_key2", key="lower-1"),
    ]
    secrets = JobSecrets(records, now)
    assert "OLD" not in {s["id"] for s in json.loads(secrets.secrets_json())}
    env, problems = secrets.env_for("app", "x@0.1", ["MY_KEY", "S3_CRED"])
    assert env == {"MY_KEY": KEY, "S3_CRED_ACCESS_KEY": "AKIA1",
                   "S3_CRED_SECRET_KEY": "aws-secret-9"}
    assert problems == []
    env, problems = secrets.env_for("assembler", "z@1", ["NOPE", "OLD", "TWICE", "MY_KEY2"])
    assert env == {}
    assert "the assembler z@1 needs secret 'NOPE'" in problems[0]
    assert "POST /v1/auth/secrets" in problems[0] and "client.save_secret" in problems[0]
    assert "expired at 2026-01-01T00:00:00.000Z" in problems[1]
    assert "several types (aws, gcp)" in problems[2]
    assert "case-sensitive: you have 'my_key2'" in problems[3]
    text = " ".join(problems) + repr(secrets)
    assert not any(v in text for v in (KEY, "aws-secret-9", "old-secret-1", "twice-aws-1"))
    printed = "key=" + KEY + " json=" + json.dumps({"k": 'a"b-secret'})
    masked = JobSecrets([_record("Q", key='a"b-secret'), _record("K")], now).mask(printed)
    assert masked == 'key=*** json={"k": "***"}'
    assert JobSecrets([_record("S", key="abc")], now).mask("abcdef") == "abcdef"  # too short


def test_process_spec_and_dask_env_reprs_hide_values(tmp_path: Path) -> None:
    shown = repr(ProcessSpec(tmp_path / "main.py", tmp_path, {"MY_KEY": KEY},
                             secret_names=("MY_KEY",)))
    assert KEY not in shown and "main.py" in shown
    sealed = sealed_env({"MY_KEY": KEY, "CHUNK_NUMBER": "0"})
    assert KEY not in repr(sealed) + str(sealed) and sealed()["MY_KEY"] == KEY


DUMP = """
import json, os
out = os.environ.get("TASK_RESULTS_DIR") or os.environ.get("OUTPUT_DIR")
names = ("MY_KEY", "S3_CRED_ACCESS_KEY", "S3_CRED_SECRET_KEY", "SECRETS")
json.dump({n: os.environ.get(n) for n in names}, open(os.path.join(out, "env.json"), "w"))
print("key", os.environ.get("MY_KEY"))
"""


def test_run_injects_listed_secrets_and_masks_their_output(tmp_path: Path,
                                                           executor: object) -> None:
    app = load_engine(tmp_path / "apps", "uses", DUMP,
                      manifest={"platform_config": {"secrets": ["MY_KEY", "S3_CRED"]}})
    records = [_record("MY_KEY"), _record("S3_CRED", "aws", key="aws-key-2", access_key="AK")]
    rec = Recorder()
    s = spec(tmp_path, app, secrets=records)
    assert KEY not in repr(s)
    out = run_pipeline(s, rec, threading.Event(), executor=executor)  # type: ignore[arg-type]
    seen = json.loads((out / "env.json").read_text())
    assert (seen["MY_KEY"], seen["S3_CRED_ACCESS_KEY"], seen["S3_CRED_SECRET_KEY"]) == (
        KEY, "AK", "aws-key-2")
    assert {r["id"]: r["secretKey"] for r in json.loads(seen["SECRETS"])} == {
        "MY_KEY": KEY, "S3_CRED": "aws-key-2"}
    assert "key ***" in [line[3] for line in rec.logs]
    assert KEY not in json.dumps([list(map(str, line)) for line in rec.logs])


def test_run_with_a_missing_secret_fails_before_anything_runs(tmp_path: Path) -> None:
    app = load_engine(tmp_path / "apps", "wants", DUMP,
                      manifest={"platform_config": {"secrets": ["ABSENT"]}})
    rec = Recorder()
    ex = SubprocessExecutor(1)
    with pytest.raises(PipelineError, match=r"the app wants@0\.1 needs secret 'ABSENT'"):
        run_pipeline(spec(tmp_path, app, secrets=[_record("OTHER")]), rec, threading.Event(),
                     executor=ex)
    ex.close()
    assert rec.stages == [] and rec.chunk_count is None and rec.tasks == []
    assert any("ABSENT" in line[3] for line in rec.logs)
