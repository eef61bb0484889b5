"""Secrets end to end over loopback: the Auth API's ``/v1/auth/secrets`` routes, their storage,
what every process of a job gets (``SECRETS``, ``<id>``, ``<id>_ACCESS_KEY``/``_SECRET_KEY``),
failures for missing secrets, and that no secret value reaches logs, events, errorMessages,
the server log or any repr/exception of the client."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import requests

from bytenite_nb.api import BadRequestError, Client, NotFoundError, Secret
from bytenite_nb.local import LocalServer
from tests.kit.apps import SECRET_ACROSS_THE_CUT, write_app, write_engine
from tests.kit.loopback import Api, C, assert_error, read_events
from tests.kit.servers import TEST_API_KEY, ServerFactory

S = "/v1/auth/secrets"
LLM_KEY = "sk-live-7Hq2LLMsecretVALUE"
AWS_ACCESS = "AKIAEXAMPLEACCESS01"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYsecretKEY"
VALUES = (LLM_KEY, AWS_SECRET)

# Every process records what it sees; the app also prints its key, and the assembler its own,
# as careless apps do: ByteNite Local masks them in what it records.
PARTITIONER = """
import json, os
secrets = json.loads(os.environ["SECRETS"])
seen = {"ids": sorted(s["id"] for s in secrets), "MY_KEY" : os.environ.get("MY_KEY")}
open(os.path.join(os.environ["CHUNKS_DIR"], "data_0.bin"), "w").write(json.dumps(seen))
"""
APP = """
import json, os
view = {name: os.environ.get(name)
        for name in ("MY_KEY", "S3_CRED_ACCESS_KEY", "S3_CRED_SECRET_KEY")}
view["SECRETS"] = json.loads(os.environ["SECRETS"])
view["partitioner"] = json.loads(open(os.path.join(os.environ["TASK_DIR"], "data.bin")).read())
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "app.json"), "w").write(json.dumps(view))
print("calling the LLM with", os.environ.get("MY_KEY"))
print("SECRETS =", os.environ["SECRETS"])
"""
ASSEMBLER = """
import json, os, shutil, sys
for name in os.listdir(os.environ["TASK_RESULTS_DIR"]):
    shutil.copy(os.path.join(os.environ["TASK_RESULTS_DIR"], name), os.environ["OUTPUT_DIR"])
view = {name: os.environ.get(name) for name in ("MY_KEY", "S3_CRED_ACCESS_KEY")}
view["ids"] = sorted(s["id"] for s in json.loads(os.environ["SECRETS"]))
open(os.path.join(os.environ["OUTPUT_DIR"], "assembler.json"), "w").write(json.dumps(view))
print("assembler key", os.environ.get("MY_KEY"), file=sys.stderr)
"""
LEAKY_FAIL = """
import os
raise SystemExit("the provider rejected key " + os.environ["MY_KEY"])
"""
# A PEM key, as a service account's private key is: 12 lines, each of them a secret.
PEM_BODY = [f"MIIEv{i:02d}QIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC{i:02d}xyzPEMline"
            for i in range(10)]
PEM = "\n".join(["-----BEGIN PRIVATE KEY-----", *PEM_BODY, "-----END PRIVATE KEY-----"])
#: Prints the key line by line, then fails quoting it (the last stderr line is the END line).
PEM_PRINTER = """
import os, sys
print(os.environ["PEM_KEY"], flush=True)
print("key in the middle of a line:", os.environ["PEM_KEY"].splitlines()[3], "ok", flush=True)
raise SystemExit("this key is not accepted:\\n" + os.environ["PEM_KEY"])
"""


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("secret-apps")
    engines = {"partitioner": "sec-part", "assembler": "sec-asm",
               "dataDestination": {"dataSourceDescriptor": "bucket"}}
    write_engine(root, "sec-part", PARTITIONER, "partitioner")  # lists none: SECRETS only
    # Manifest keys in the casings ByteNite's own tools wrote them.
    write_engine(root, "sec-asm", ASSEMBLER, "assembler",
                 manifest={"Platform_Config": {"Secrets": ["MY_KEY"]}})
    write_app(root, "sec-app", APP, template=engines, manifest={
        "platform_config": {"container": "python:3.12", "secrets": ["MY_KEY", "S3_CRED"]}})
    write_app(root, "plain-app", APP, template=engines)
    write_app(root, "needs-missing", APP, manifest={
        "platformConfig": {"secrets": ["MY_KEY", "NOT_THERE"]}})
    write_app(root, "leaky-fail", LEAKY_FAIL, manifest={
        "platform_config": {"secrets": ["MY_KEY"]}})
    write_app(root, "pem-printer", PEM_PRINTER, manifest={
        "platform_config": {"secrets": ["PEM_KEY"]}})
    write_app(root, "split-printer", SECRET_ACROSS_THE_CUT, manifest={
        "platform_config": {"secrets": ["MY_KEY"]}}, template={"params": {"app": {
            "key": "MY_KEY", "runaway": True}}})
    return root


@pytest.fixture(scope="module")
def server(apps: Path, start_module_server: ServerFactory) -> LocalServer:
    """The real CLI in a child process, so its server.log is the one a user gets."""
    srv = start_module_server(in_process=False, workers=2, apps_dirs=(apps,))
    api = Api(srv.base_url, srv.api_key)
    api.ok("POST", S, json={"secret": {"id": "MY_KEY", "secretType": "other",
                                       "name": "LLM provider"}, "secretKey": LLM_KEY})
    api.ok("POST", S, json={"secret": {"id": "S3_CRED", "secretType": "aws",
                                       "accessKey": AWS_ACCESS,
                                       "params": {"region": "eu-west-1"}},
                            "secretKey": AWS_SECRET})
    return srv


def _run(api: Api, template_id: str) -> dict[str, Any]:
    return api.run(templateId=template_id)


def _result(api: Api, job_id: str, name: str) -> Any:
    links = {r["name"]: r["link"] for r in api.ok("GET", f"{C}/jobs/{job_id}/results")["results"]}
    return json.loads(requests.get(links[name], timeout=30).content)


def _everything_recorded(api: Api, job: dict[str, Any]) -> str:
    """The job, its logs, tasks and every event of it, as one text to search."""
    events = read_events(api, 0, lambda rs: any(
        r["event"] == "job.state" and r["data"]["state"] == job["state"] for r in rs),
        jobId=job["id"])
    return json.dumps([api.job(job["id"]),
                       api.ok("POST", f"{C}/logs", json={"jobId": job["id"]}),
                       api.ok("GET", f"{C}/jobs/{job['id']}/tasks"), events])


# -- the routes ---------------------------------------------------------------------------------


def test_save_list_replace_delete(api: Api) -> None:
    answer = api.ok("POST", S, json={"secret": {"secretType": "gcp", "accessKey": "GOOG1",
                                                "name": "hmac", "expiresAt": "2099-01-02"},
                                     "secretKey": "gcp-secret-value-1"})
    assert answer["ok"] is True and answer["requestId"]
    generated = answer["id"]
    assert generated  # an empty id gets one
    listed = api.ok("GET", S)["secrets"]
    mine = next(s for s in listed if s["id"] == generated)
    assert mine == {"id": generated, "secretType": "gcp", "accessKey": "GOOG1",
                    "expiresAt": "2099-01-02T00:00:00.000Z", "params": {}, "name": "hmac"}
    # the same (secretType, id) again replaces it
    api.ok("POST", S, json={"secret": {"id": generated, "secretType": "gcp",
                                       "accessKey": "GOOG2"}, "secretKey": "gcp-secret-value-2"})
    gcp = api.ok("GET", S, params={"secretType": "gcp"})["secrets"]
    assert [(s["id"], s["accessKey"], s["name"]) for s in gcp] == [(generated, "GOOG2", "")]
    assert "gcp-secret-value" not in json.dumps(api.ok("GET", S))
    api.ok("DELETE", f"{S}/gcp/{generated}")
    assert generated not in {s["id"] for s in api.ok("GET", S)["secrets"]}
    assert_error(api("DELETE", f"{S}/gcp/{generated}"), 404, generated)


def test_list_filters_by_type_and_never_returns_a_key(api: Api) -> None:
    everything = api.ok("GET", S)["secrets"]
    assert {("MY_KEY", "other"), ("S3_CRED", "aws")} <= {(s["id"], s["secretType"])
                                                         for s in everything}
    assert [s["id"] for s in api.ok("GET", S, params={"secretType": "other"})["secrets"]] == [
        "MY_KEY"]
    aws = api.ok("GET", S, params={"secretType": "aws"})["secrets"]
    assert aws == [{"id": "S3_CRED", "secretType": "aws", "accessKey": AWS_ACCESS,
                    "expiresAt": None, "params": {"region": "eu-west-1"}, "name": ""}]
    # s3, the name aws had before ByteNite renamed it, means aws
    assert api.ok("GET", S, params={"secretType": "s3"})["secrets"] == aws
    text = json.dumps(everything)
    assert "secretKey" not in text and not any(v in text for v in VALUES)


def test_bad_requests_name_the_field_and_the_fix(api: Api) -> None:
    assert_error(api("POST", S, json={"secret": {"secretType": "azure", "accessKey": "a"},
                                      "secretKey": "k-123456"}),
                 400, "secretType", "azure", "aws, gcp, storj, other")
    body = assert_error(api("POST", S, json={"secret": {"secretType": "aws", "id": "NOACC"},
                                             "secretKey": "k-123456"}), 400, "accessKey", "aws")
    assert "k-123456" not in json.dumps(body)
    assert_error(api("POST", S, json={"secret": {"secretType": "other"}}), 400, "secretKey")
    assert_error(api("POST", S, json={"secret": {"accessKey": "a"}, "secretKey": "k-123456"}),
                 400, "secretType", "required")
    assert_error(api("POST", S, json={"secret": {"secretType": "other", "id": "a b"},
                                      "secretKey": "k-123456"}), 400, "secret.id")
    assert_error(api("POST", S, json={"secret": {"secretType": "other", "id": "TASK_DIR"},
                                      "secretKey": "k-123456"}), 400, "TASK_DIR")
    assert_error(api("POST", S, json={"secret": {"secretType": "other", "expiresAt": "soon"},
                                      "secretKey": "k-123456"}), 400, "expiresAt", "ISO 8601")
    assert_error(api("GET", S, params={"secretType": "ftp"}), 400, "ftp")
    assert_error(api("DELETE", f"{S}/ftp/MY_KEY"), 400, "ftp")
    assert_error(api("DELETE", f"{S}/other/NO_SUCH"), 404, "NO_SUCH")
    # a refused save changed nothing
    assert {s["id"] for s in api.ok("GET", S)["secrets"]} >= {"MY_KEY", "S3_CRED"}
    assert "NOACC" not in {s["id"] for s in api.ok("GET", S)["secrets"]}


def test_secrets_need_a_token(server: LocalServer) -> None:
    assert_error(requests.get(server.base_url + S, timeout=30), 401, "access token")
    assert_error(requests.post(server.base_url + S, timeout=30, json={
        "secret": {"secretType": "other"}, "secretKey": "x-123456"}), 401)


def test_database_files_are_private(server: LocalServer) -> None:
    files = [server.data_dir / f"bytenite-local.db{suffix}" for suffix in ("", "-wal", "-shm")]
    assert files[0].exists()
    for path in files:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


# -- what processes get -------------------------------------------------------------------------


def test_listed_secrets_are_injected_and_every_process_gets_SECRETS(api: Api) -> None:
    job = _run(api, "sec-app-template")
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    app = _result(api, job["id"], "app.json")
    assert app["MY_KEY"] == LLM_KEY
    assert (app["S3_CRED_ACCESS_KEY"], app["S3_CRED_SECRET_KEY"]) == (AWS_ACCESS, AWS_SECRET)
    by_id = {s["id"]: s for s in app["SECRETS"]}
    assert by_id["MY_KEY"] == {"id": "MY_KEY", "secretType": "other", "expiresAt": None,
                               "accessKey": "", "params": {}, "name": "LLM provider",
                               "secretKey": LLM_KEY}
    assert by_id["S3_CRED"] == {"id": "S3_CRED", "secretType": "aws", "expiresAt": None,
                                "accessKey": AWS_ACCESS, "params": {"region": "eu-west-1"},
                                "name": "", "secretKey": AWS_SECRET}
    # the partitioner lists none: SECRETS only; the assembler lists MY_KEY only
    assert app["partitioner"]["MY_KEY"] is None
    assert {"MY_KEY", "S3_CRED"} <= set(app["partitioner"]["ids"])
    assembler = _result(api, job["id"], "assembler.json")
    assert assembler["MY_KEY"] == LLM_KEY and assembler["S3_CRED_ACCESS_KEY"] is None
    assert {"MY_KEY", "S3_CRED"} <= set(assembler["ids"])
    # what the processes printed is in the logs, the secret keys masked
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})
    lines = [e["log"] for group in logs["taskrunner"].values() for e in group["logs"]]
    assert "calling the LLM with ***" in lines
    assert "assembler key ***" in [e["log"] for e in logs["assembler"]]
    recorded = _everything_recorded(api, job)
    assert not any(value in recorded for value in VALUES)
    assert AWS_ACCESS in recorded  # an access key id is not masked, only secret keys are


def test_an_app_not_listing_secrets_gets_only_SECRETS(api: Api) -> None:
    job = _run(api, "plain-app-template")
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    app = _result(api, job["id"], "app.json")
    assert app["MY_KEY"] is None and app["S3_CRED_ACCESS_KEY"] is None
    assert app["S3_CRED_SECRET_KEY"] is None
    assert {s["id"]: s["secretKey"] for s in app["SECRETS"]}["MY_KEY"] == LLM_KEY


def test_a_missing_secret_fails_the_job_naming_it(api: Api) -> None:
    job = _run(api, "needs-missing-template")
    assert job["state"] == "JOB_STATE_FAILED"
    message = job["errorMessage"]
    assert "NOT_THERE" in message and "POST /v1/auth/secrets" in message
    assert "client.save_secret" in message and "needs-missing@0.1" in message
    assert "'MY_KEY'" not in message  # the one that exists is not blamed
    # nothing ran: no task, no app output; the reason is in the logs too
    assert api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"] == []
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"], "levels": ["ERROR"]})
    assert "NOT_THERE" in json.dumps(logs)
    recorded = _everything_recorded(api, job)
    assert not any(value in recorded for value in VALUES)


def test_a_secret_a_failing_app_prints_is_masked_in_the_error_message(api: Api) -> None:
    job = _run(api, "leaky-fail-template")
    assert job["state"] == "JOB_STATE_FAILED"
    assert "the provider rejected key ***" in job["errorMessage"]
    recorded = _everything_recorded(api, job)
    assert not any(value in recorded for value in VALUES)


def test_a_multi_line_secret_is_masked_on_every_line(api: Api) -> None:
    api.ok("POST", S, json={"secret": {"id": "PEM_KEY", "secretType": "other"},
                            "secretKey": PEM})
    try:
        job = _run(api, "pem-printer-template")
    finally:
        api.ok("DELETE", f"{S}/other/PEM_KEY")
    assert job["state"] == "JOB_STATE_FAILED"
    assert job["errorMessage"].endswith(": ***")  # the END line of the key, masked
    recorded = _everything_recorded(api, job)
    leaked = [line for line in (*PEM_BODY, PEM) if line in recorded]
    assert leaked == []
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})["taskrunner"]["task-0"]
    lines = [entry["log"] for entry in logs["logs"]]
    assert lines.count("***") >= 2 * len(PEM.splitlines())  # printed, then in the exit message
    assert "key in the middle of a line: *** ok" in lines


def test_a_secret_across_the_long_line_cut_is_masked(api: Api) -> None:
    job = _run(api, "split-printer-template")
    assert job["state"] == "JOB_STATE_COMPLETE"
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})["taskrunner"]["task-0"]
    lines = [entry["log"] for entry in logs["logs"]]
    assert max(map(len, lines)) <= 64 * 1024  # lines were cut...
    joined = "".join(lines)
    assert LLM_KEY not in joined  # ...but never through a key, which would unmask it
    assert joined.count("***") == 2 and " and more" in joined
    assert joined.replace("***", "") == ("x" * 65530 + " and more" + "y" * 100000 + "z" * 70000)
    events = read_events(api, 0, lambda rs: any(r["event"] == "job.state" and r["data"][
        "state"] == "JOB_STATE_COMPLETE" for r in rs), jobId=job["id"])
    assert LLM_KEY not in "".join(e["data"]["log"] for e in events if e["event"] == "job.log")


def test_an_expired_secret_is_not_given_to_processes(api: Api) -> None:
    api.ok("POST", S, json={"secret": {"id": "OLD_KEY", "secretType": "other",
                                       "expiresAt": "2020-01-01T00:00:00Z"},
                            "secretKey": "expired-value-123"})
    try:
        job = _run(api, "plain-app-template")
        assert "OLD_KEY" not in {s["id"] for s in _result(api, job["id"], "app.json")["SECRETS"]}
        # (the listing still shows it, so it can be renewed or deleted)
        assert "OLD_KEY" in {s["id"] for s in api.ok("GET", S)["secrets"]}
    finally:
        api.ok("DELETE", f"{S}/other/OLD_KEY")


def test_the_server_log_never_holds_a_secret(api: Api, server: LocalServer) -> None:
    _run(api, "sec-app-template")
    _run(api, "leaky-fail-template")
    log = (server.data_dir / "server.log").read_text()
    assert "ByteNite Local" in log  # the child process's log, as `bytenite-nb serve` writes it
    assert not any(value in log for value in VALUES)


# -- the client against the real server ---------------------------------------------------------


def test_client_save_list_delete(client: Client) -> None:
    secret_id = client.save_secret("other", secret_key="client-secret-value-1",
                                   name="from the client", params={"team": "ml"})
    assert secret_id
    [mine] = [s for s in client.secrets("other") if s.id == secret_id]
    assert isinstance(mine, Secret)
    assert (mine.secret_type, mine.name, mine.params) == ("other", "from the client",
                                                          {"team": "ml"})
    assert client.save_secret("s3", "AK1", secret_key="client-secret-value-2",
                              id="CLIENT_AWS") == "CLIENT_AWS"
    assert [s.id for s in client.secrets("aws") if s.id == "CLIENT_AWS"] == ["CLIENT_AWS"]
    assert not any("client-secret-value" in repr(s) + str(s.raw) for s in client.secrets())
    assert client.delete_secret("other", secret_id)["ok"] is True
    client.delete_secret("aws", "CLIENT_AWS")
    with pytest.raises(NotFoundError, match="CLIENT_AWS"):
        client.delete_secret("aws", "CLIENT_AWS")
    with pytest.raises(BadRequestError, match="accessKey") as info:
        client.save_secret("aws", secret_key="client-secret-value-3", id="NO_ACCESS")
    text = str(info.value) + repr(info.value) + json.dumps(info.value.body)
    assert "client-secret-value-3" not in text
    assert "client-secret-value" not in repr(client)


# -- storage ------------------------------------------------------------------------------------


def test_secrets_survive_a_restart_and_an_older_data_dir_upgrades(tmp_path: Path) -> None:
    # Started here: the test stops the server and opens its data dir again, twice.
    data_dir = tmp_path / "data"
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), in_process=True) as first:
        api = Api(first.base_url, TEST_API_KEY)
        api.ok("POST", S, json={"secret": {"id": "KEEP", "secretType": "storj",
                                           "accessKey": "jw-access"},
                                "secretKey": "storj-secret-1"})
        before = api.ok("GET", S)["secrets"]
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), in_process=True) as second:
        assert Api(second.base_url, TEST_API_KEY).ok("GET", S)["secrets"] == before
    # A data dir of the previous version: no secrets table, a world-readable database.
    db = data_dir / "bytenite-local.db"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE secrets")
    conn.close()
    db.chmod(0o644)
    with LocalServer.start(data_dir, api_keys=(TEST_API_KEY,), in_process=True) as third:
        api = Api(third.base_url, TEST_API_KEY)
        assert api.ok("GET", S)["secrets"] == []
        api.ok("POST", S, json={"secret": {"id": "NEW", "secretType": "other"},
                                "secretKey": "new-secret-1"})
        assert [s["id"] for s in api.ok("GET", S)["secrets"]] == ["NEW"]
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
