"""Every error leaves in ByteNite's error shape with the right status and a request id."""

from __future__ import annotations

import time

import requests

from bytenite_nb import wire
from bytenite_nb.local import LocalServer
from tests.kit.loopback import Api, C, assert_error
from tests.kit.servers import ServerFactory


def test_customer_endpoints_need_a_token(server: LocalServer) -> None:
    base = server.base_url
    assert_error(requests.get(f"{base}{C}/jobs", timeout=30), 401, "token")
    assert_error(requests.post(f"{base}{C}/jobs", json={"templateId": "hello-world-template"},
                               timeout=30), 401)
    assert_error(requests.get(f"{base}{C}/jobs", headers={"Authorization": "nonsense"},
                              timeout=30), 401, "invalid")
    assert_error(requests.get(f"{base}/v1/computing/info", timeout=30), 401)


def test_a_wrong_api_key_gets_no_token(server: LocalServer) -> None:
    answer = requests.post(f"{server.base_url}/v1/auth/access_token",
                           json={"apiKey": "not-the-key"}, timeout=30)
    assert_error(answer, 401, "api key")


def test_raw_and_bearer_tokens_both_work(server: LocalServer, api_key: str) -> None:
    for bearer in (False, True):
        api = Api(server.base_url, api_key, bearer=bearer)
        assert "pagination" in api.ok("GET", f"{C}/jobs")


def test_an_expired_token_is_refused(start_server: ServerFactory) -> None:
    server = start_server(token_ttl=1)
    api = Api(server.base_url, server.api_key)
    assert api("GET", f"{C}/jobs").status_code == 200
    deadline = time.monotonic() + 30
    while (answer := api("GET", f"{C}/jobs")).status_code == 200:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert_error(answer, 401, "expired")
    # a fresh token works again
    assert Api(server.base_url, server.api_key).ok("GET", f"{C}/jobs")


def test_unknown_job_is_404_everywhere(api: Api) -> None:
    for method, path in [("GET", "/jobs/nope"), ("GET", "/jobs/nope/results"),
                         ("POST", "/jobs/nope/run"), ("POST", "/jobs/nope/abort"),
                         ("DELETE", "/jobs/nope"), ("PATCH", "/jobs/nope/uploadcompleted"),
                         ("GET", "/jobs/nope/tasks")]:
        assert_error(api(method, C + path), 404, "nope")
    assert_error(api("PATCH", f"{C}/jobs/nope/params", json={"app": {}}), 404, "not found")
    assert_error(api("POST", f"{C}/logs", json={"jobId": "nope"}), 404)


def test_unknown_template_and_route(api: Api) -> None:
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "no-such-template"}), 404,
                 "no-such-template")
    assert_error(api("GET", f"{C}/no/such/route"), 404, "route")
    assert_error(api("GET", "/nowhere"), 404)
    assert_error(api("PUT", f"{C}/jobs"), 405)


def test_mutations_after_run_are_refused_naming_the_state(api: Api) -> None:
    job = api.create(name="run me")
    api.ok("POST", f"{C}/jobs/{job['id']}/run")
    for method, path, body in [
        ("PATCH", "params", {"app": {"case": "lower"}}),
        ("PATCH", "jobname", "new name"),
        ("PATCH", "configs", {"taskTimeout": 5}),
        ("PATCH", "datasource", {"dataSource": {"dataSourceDescriptor": "bypass"}}),
        ("PATCH", "uploadcompleted", None),
        ("POST", "run", None),
    ]:
        body_ = assert_error(api(method, f"{C}/jobs/{job['id']}/{path}", json=body), 400)
        assert "JOB_STATE_" in body_["message"]
    # nothing changed
    assert api.job(job["id"])["name"] == "run me"


def test_malformed_json_and_invalid_fields_are_400(api: Api) -> None:
    assert_error(api("POST", f"{C}/jobs", data="{not json",
                     headers={"Content-Type": "application/json"}), 400, "malformed json")
    assert_error(api("POST", f"{C}/jobs", data="{not json"), 400, "malformed json")
    assert_error(api("POST", f"{C}/jobs", json={"name": "x"}), 400, "templateId")
    job = api.create()
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/configs", json={"taskTimeout": "soon"}),
                 400, "taskTimeout")
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/configs", json={"jobTimeout": -1}),
                 400, "jobTimeout")
    assert_error(api("POST", f"{C}/jobs", json={"templateId": "hello-world-template",
                                                "dataSource": {"dataSourceDescriptor": "s3"}}),
                 400, "s3")


def test_results_before_completion_say_so(api: Api) -> None:
    job = api.create()
    assert_error(api("GET", f"{C}/jobs/{job['id']}/results"), 400, "not yet been completed")


def test_deprecated_endpoints_say_what_to_use(api: Api) -> None:
    for path in ("/jobs/templates/hello-world-template/presets", "/schema/x",
                 "/stats/detail/x", "/stats/job_types"):
        assert_error(api("GET", C + path), 410, "deprecated", "use")


def test_result_and_upload_links_need_the_right_token(server: LocalServer) -> None:
    base = server.base_url
    assert_error(requests.get(f"{base}/local/results/guess/file.txt", timeout=30), 404)
    assert_error(requests.put(f"{base}/local/uploads/guess", data=b"x", timeout=30), 404)


def test_uploads_above_the_size_cap_are_refused_and_leave_nothing(
        start_server: ServerFactory) -> None:
    server = start_server(config_overrides={"max_upload_bytes": 10})
    api = Api(server.base_url, server.api_key)
    job = api.create(dataSource=wire.file_source())
    temp_url = job["dataSource"]["params"]["tempUrl"]
    assert_error(requests.put(temp_url, data=b"x" * 11, timeout=30), 413, "limit")

    def chunks() -> object:  # no Content-Length: the cap applies while streaming
        yield b"x" * 8
        yield b"x" * 8

    assert_error(requests.put(temp_url, data=chunks(), timeout=30), 413, "limit")
    assert_error(api("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted"), 400, "tempUrl")
    assert requests.put(temp_url, data=b"small", timeout=30).status_code == 200
    api.ok("PATCH", f"{C}/jobs/{job['id']}/uploadcompleted")
    upload_dir = server.data_dir / "jobs" / job["id"] / "upload"
    assert [p.name for p in upload_dir.iterdir()] == ["upload.bin"]
