"""%bytenite / %%bytenite in a real IPython shell against a real ByteNite Local.

Every verb once, %%bytenite with placeholders, -o binding, %config precedence, one-line errors,
login. Waiting, Ctrl-C and cleanup need a slow app: see test_wait.py.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError

from bytenite_nb import wire
from bytenite_nb.api.client import Client
from bytenite_nb.api.jobs import Job
from bytenite_nb.testing import TestingShell

HELLO = "hello-world-template"


@pytest.fixture()
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_key: str) -> Path:
    """Keep the user's config file, keyring-less env and running servers out of the test."""
    monkeypatch.setenv("BYTENITE_CONFIG_FILE", str(tmp_path / "config" / "config.toml"))
    monkeypatch.setenv("BYTENITE_LOCAL_DIR", str(tmp_path / "no-local"))
    monkeypatch.delenv("BYTENITE_BASE_URL", raising=False)
    monkeypatch.setenv("BYTENITE_API_KEY", api_key)
    return tmp_path


@pytest.fixture()
def ip(local_server: Any, isolated_env: Path) -> Iterator[TestingShell]:
    shell = TestingShell.create()
    shell.run_cell(f"%config ByteniteMagics.base_url = '{local_server.base_url}'")
    shell.run_cell(f"%config ByteniteMagics.ledger_path = '{isolated_env / 'ledger.jsonl'}'")
    yield shell
    shell.run_cell("%unload_ext bytenite_nb")
    shell.dispose()


@pytest.fixture()
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("hello from a notebook\n")
    return path


def magic(ip: TestingShell, line: str) -> Any:
    return ip.run_line_magic("bytenite", line)


def test_load_ext_registers_without_touching_the_network(isolated_env: Path) -> None:
    shell = TestingShell.create()
    # A closed port: loading, help and %config must still work (nothing is contacted).
    shell.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:9'")
    assert "bytenite" in shell.magics_manager.magics["line"]
    assert "bytenite" in shell.magics_manager.magics["cell"]
    magic(shell, "help")
    shell.run_cell("%unload_ext bytenite_nb")
    assert "bytenite" not in shell.magics_manager.magics["line"]
    shell.dispose()


def test_templates_and_jobs_are_dataframes(ip: TestingShell) -> None:
    templates = magic(ip, "templates")
    assert isinstance(templates, pd.DataFrame)
    assert HELLO in templates.index


def test_run_uploads_a_local_file_waits_and_loads_results(
    ip: TestingShell, text_file: Path, client: Client
) -> None:
    job = magic(ip, f"run {HELLO} --source {text_file} --param case=upper --name up "
                    "--wait -o job")
    assert isinstance(job, Job)
    assert ip.user_ns["job"] is job
    assert job.state is wire.JobState.COMPLETE
    assert client.job(job.id).params["app"] == {"case": "upper"}
    loaded = magic(ip, f"results {job.id} --load")
    assert loaded == {"hello_world_processed.txt": "HELLO FROM A NOTEBOOK\n"}  # text: str
    files = magic(ip, "results $job")
    assert isinstance(files, pd.DataFrame) and len(files) == 1


def test_cell_with_placeholders_from_the_namespace(
    ip: TestingShell, text_file: Path, client: Client
) -> None:
    ip.user_ns.update({"data_path": text_file, "app_params": {"case": "title"}, "n": 3})
    ip.run_cell(
        "%%bytenite hello_job --wait\n"
        f"templateId: {HELLO}\n"
        "name: run {n} of ${n}\n"
        "source: {data_path}\n"
        "params:\n"
        "  app: $app_params\n"
        "config: {taskTimeout: 60}\n"
    )
    job = ip.user_ns["hello_job"]
    assert job.state is wire.JobState.COMPLETE
    server_side = client.job(job.id)
    assert server_side.name == "run 3 of 3"
    assert server_side.params["app"] == {"case": "title"}
    assert server_side.data_source["dataSourceDescriptor"] == "file"


def test_cell_with_an_undefined_name_is_a_clear_error(
    ip: TestingShell, capsys: pytest.CaptureFixture[str], client: Client
) -> None:
    before = {j.id for j in client.jobs()}
    with pytest.raises(UsageError, match="name 'nowhere' is not defined"):
        ip.run_cell(f"%%bytenite j\ntemplateId: {HELLO}\nsource: $nowhere\n")
    assert "Traceback" not in capsys.readouterr().err
    assert {j.id for j in client.jobs()} == before  # nothing was created
    assert "j" not in ip.user_ns


def test_dry_run_submits_nothing(ip: TestingShell, client: Client) -> None:
    before = {j.id for j in client.jobs()}
    ip.user_ns["p"] = {"app": {"case": "lower"}}
    spec = magic(ip, f"run {HELLO} --params $p --source bypass --dry-run")
    assert spec == {"templateId": HELLO, "dataSource": wire.bypass(),
                    "params": {"app": {"case": "lower"}}}
    assert {j.id for j in client.jobs()} == before


def test_every_job_verb(
    ip: TestingShell, client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    job = magic(ip, f"run {HELLO} --source bypass --wait")
    handle = magic(ip, f"job {job.id} -o again")
    assert handle == job and ip.user_ns["again"] == job
    status = magic(ip, f"status {job.id}")
    assert status.state == "complete" and job.id in str(status)

    logs = magic(ip, f"logs {job.id}")
    assert isinstance(logs, pd.DataFrame) and len(logs) >= 1
    assert len(magic(ip, f"logs {job.id} --level error")) == 0
    assert len(magic(ip, f"logs {job.id} --task 0")) >= 1

    ip.user_ns["handle"] = job
    attached = magic(ip, "attach $handle")
    assert attached == job
    last = magic(ip, "attach --last -o last_job")
    assert last == job and ip.user_ns["last_job"] == job

    jobs = magic(ip, "jobs --state complete --template hello-world-template")
    assert job.id in jobs.index
    assert (jobs["status"] == "complete").all()

    draft = client.create_job(HELLO)
    magic(ip, f"abort {draft.id}")
    assert "had not started, so it was deleted" in capsys.readouterr().out

    magic(ip, f"delete {job.id}")
    assert f"Deleted job {job.id}" in capsys.readouterr().out
    with pytest.raises(LookupError):
        client.job(job.id)


def test_o_binds_dataframes_without_displaying_them(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    assert magic(ip, "templates -o tpl") is None
    assert isinstance(ip.user_ns["tpl"], pd.DataFrame)
    assert "Stored" in capsys.readouterr().out


def test_config_precedence_flags_beat_config(
    ip: TestingShell, client: Client, local_server: Any
) -> None:
    for _ in range(3):
        client.submit(HELLO, source=None, run=False)
    ip.run_cell("%config ByteniteMagics.display_limit = 1")
    assert len(magic(ip, "jobs")) == 1
    assert len(magic(ip, "jobs --limit 2")) == 2

    ip.run_cell("%config ByteniteMagics.wait = True")
    assert magic(ip, f"run {HELLO} --source bypass").state.is_terminal  # config: wait

    ip.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:9'")
    with pytest.raises(UsageError, match="APIConnectionError"):
        magic(ip, "templates")
    assert HELLO in magic(ip, f"templates --base-url {local_server.base_url}").index


def test_errors_are_one_line_without_traceback(
    ip: TestingShell, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError) as err:
        ip.run_cell("%bytenite status no-such-job")
    assert type(err.value) is UsageError
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0] == ("UsageError: NotFoundError: Job 'no-such-job' not found. "
                        "Hint: `%bytenite jobs` lists your jobs")
    assert "Traceback" not in captured.err + captured.out

    with pytest.raises(UsageError, match="Did you mean 'status'"):
        ip.run_cell("%bytenite staus x")
    assert "Traceback" not in capsys.readouterr().err


def test_debug_shows_the_real_exception(ip: TestingShell) -> None:
    from bytenite_nb.api.errors import NotFoundError

    with pytest.raises(NotFoundError):
        magic(ip, "status no-such-job --debug")
    ip.run_cell("%config ByteniteMagics.short_errors = False")
    with pytest.raises(NotFoundError):
        magic(ip, "status no-such-job")


def test_job_failure_while_waiting_is_one_line_and_keeps_the_job(
    ip: TestingShell, client: Client
) -> None:
    missing = "http://127.0.0.1:9/missing.txt"  # the partitioner cannot fetch it
    with pytest.raises(UsageError) as err:
        magic(ip, f"run {HELLO} --source {missing} --wait -o failed")
    assert str(err.value).startswith("JobFailedError: job ")
    assert "--level error" in str(err.value)
    job = ip.user_ns["failed"]
    assert client.job(job.id).state is wire.JobState.FAILED


def test_key_on_the_line_is_refused(
    ip: TestingShell, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-live-do-not-echo-me"
    with pytest.raises(UsageError, match="Refusing an API key on the magic line"):
        ip.run_cell(f"%bytenite login {secret}")
    with pytest.raises(UsageError, match="Refusing an API key"):
        ip.run_cell(f"%bytenite login --api-key={secret}")
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err
    assert "Traceback" not in captured.err
    assert not (isolated_env / "config").exists()


def test_login_prompts_verifies_and_stores_0600(
    ip: TestingShell, isolated_env: Path, api_key: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = iter(["wrong-key-000000", api_key])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:  # the terminal's hidden prompt, scripted
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    config_file = isolated_env / "config" / "config.toml"
    with pytest.raises(UsageError, match=r"AuthenticationError: .*nothing was stored"):
        magic(ip, "login")
    assert not config_file.exists()
    magic(ip, "login")
    assert "input hidden" in prompts[0]
    assert stat.S_IMODE(os.stat(config_file).st_mode) == 0o600
    assert api_key in config_file.read_text()
    out = capsys.readouterr()
    assert api_key not in out.out + out.err
    assert "accepted by" in out.out
    info = magic(ip, "info")
    assert api_key not in str(info) and api_key not in info._repr_html_()
    assert "entered in this session" in info.get("API key")
    assert info.get("reachable").startswith("yes")


def test_info_reports_an_unreachable_server_without_raising(ip: TestingShell) -> None:
    ip.run_cell("%config ByteniteMagics.base_url = 'http://127.0.0.1:9'")
    info = ip.run_line_magic("bytenite", "info")
    assert info.get("reachable").startswith("no: APIConnectionError")
    assert "%config ByteniteMagics.base_url" in info.get("server")


def test_login_other_stores(
    ip: TestingShell, isolated_env: Path, api_key: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import importlib.util

    monkeypatch.setattr("getpass.getpass", lambda prompt="": api_key)
    magic(ip, "login --store session")
    assert "for this session only" in capsys.readouterr().out
    assert not (isolated_env / "config").exists()
    if importlib.util.find_spec("keyring") is None:
        with pytest.raises(UsageError, match="'keyring' package is not installed"):
            magic(ip, "login --store keyring")
    assert not (isolated_env / "config").exists()
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "   ")
    with pytest.raises(UsageError, match="no key entered; nothing changed"):
        magic(ip, "login")


def test_secrets_set_from_hidden_prompts_list_and_delete(
    ip: TestingShell, client: Client, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value, access, aws_secret = "sk-magic-0123456789", "AKIAMAGIC0000WXYZ", "aws-secret-98765"
    answers = iter([value, access, aws_secret])
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:  # the hidden prompts, scripted
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert magic(ip, "secrets set MAGIC_LLM_KEY --name 'for the summariser'") is None
    assert magic(ip, "secrets set MAGIC_S3 --type aws") is None
    assert all("input hidden" in p for p in prompts) and len(prompts) == 3
    out = capsys.readouterr().out
    assert "read it as $MAGIC_LLM_KEY." in out
    assert "$MAGIC_S3_ACCESS_KEY and $MAGIC_S3_SECRET_KEY" in out
    saved = {s.id: s for s in client.secrets()}
    assert saved["MAGIC_LLM_KEY"].secret_type == "other"
    assert saved["MAGIC_LLM_KEY"].name == "for the summariser"
    assert saved["MAGIC_S3"].access_key == access

    frame = magic(ip, "secrets")
    assert isinstance(frame, pd.DataFrame)
    assert {"MAGIC_LLM_KEY", "MAGIC_S3"} <= set(frame.index)
    assert frame.loc["MAGIC_S3", "secret_type"] == "aws"
    assert frame.loc["MAGIC_S3", "access_key"] == "…WXYZ"  # the frame is saved in the notebook
    shown = frame.to_string() + frame.to_html()
    assert not any(s in shown for s in (value, access, aws_secret))
    assert magic(ip, "secrets --type aws -o mine") is None
    assert list(ip.user_ns["mine"].index) == ["MAGIC_S3"]

    magic(ip, "secrets delete MAGIC_LLM_KEY")
    magic(ip, "secrets delete MAGIC_S3 --type aws")
    assert "Deleted secret MAGIC_LLM_KEY (other)." in capsys.readouterr().out
    assert not {"MAGIC_LLM_KEY", "MAGIC_S3"} & {s.id for s in client.secrets()}
    with pytest.raises(UsageError, match="no secret has the id 'MAGIC_LLM_KEY'"):
        magic(ip, "secrets delete MAGIC_LLM_KEY")


def test_secret_values_are_refused_on_the_line_and_never_echoed(
    ip: TestingShell, client: Client, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    value = "sk-on-the-line-4242"
    for line in (f"secrets set LINE_KEY {value}", f"secrets set LINE_KEY --secret={value}"):
        with pytest.raises(UsageError) as info:
            magic(ip, line)
        assert "Refusing a secret value" in str(info.value) and value not in str(info.value)
        assert "%bytenite secrets set ID" in str(info.value)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "   ")
    with pytest.raises(UsageError, match="nothing entered; nothing was saved"):
        magic(ip, "secrets set LINE_KEY")
    with pytest.raises(UsageError, match="give the secret's id"):
        magic(ip, "secrets set")
    # a value the server refuses (a NUL byte): its message names the field, never the value
    monkeypatch.setattr("getpass.getpass", lambda prompt="": value + "\x00")
    with pytest.raises(UsageError, match="secretKey contains a NUL character") as info:
        magic(ip, "secrets set LINE_KEY")
    assert value not in str(info.value) and "nothing was saved" in str(info.value)
    captured = capsys.readouterr()
    assert value not in captured.out + captured.err
    assert "LINE_KEY" not in {s.id for s in client.secrets()}


def test_client_verb_gives_a_client_with_the_sessions_server_and_key(
    ip: TestingShell, local_server: Any, api_key: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bytenite_nb.api.errors import MissingCredentialsError

    # A key typed at the prompt for this session only: Client() alone cannot find it.
    monkeypatch.delenv("BYTENITE_API_KEY")
    monkeypatch.setattr("getpass.getpass", lambda prompt="": api_key)
    magic(ip, "login --store session")
    with pytest.raises(MissingCredentialsError):
        Client(base_url=local_server.base_url).templates()
    c = magic(ip, "client")
    assert isinstance(c, Client)
    assert c.base_url.rstrip("/") == local_server.base_url.rstrip("/")
    assert HELLO in {t.id for t in c.templates()}
    assert api_key not in repr(c)
    c.close()  # the caller's own: the magics keep working
    assert HELLO in magic(ip, "templates").index
    assert magic(ip, "client -o mine") is None
    assert "Stored a client in `mine`." in capsys.readouterr().out
    assert isinstance(ip.user_ns["mine"], Client)
