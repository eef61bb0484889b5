"""Per-app environments against a real ByteNite Local: an app folder's ``requirements.txt``
is installed into an environment of its own (never into the server's), which its tasks run
in; two versions of one package run side by side; a build shows in the job's logs and
events, happens once for concurrent jobs, survives a restart, and a failed build fails the
job with the installer's words.

These install small pure-Python packages from PyPI. Most tests share the session's
environments folder (see the root ``conftest.py``), so each requirement set is built once;
those that must watch a build use a folder of their own.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from bytenite_nb.local import LocalServer
from tests.kit.apps import PACKAGE_REPORT, SIDE_BY_SIDE, SMALL_PACKAGE, write_app
from tests.kit.loopback import Api, C, read_events
from tests.kit.servers import TEST_API_KEY, ServerFactory

RUNTIME = "bytenite-local"


def _requirements(*lines: str) -> dict[str, str]:
    return {"app/requirements.txt": "\n".join(lines) + "\n"}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("env-apps")
    write_app(root, "with-package", PACKAGE_REPORT, files=_requirements(SMALL_PACKAGE),
              manifest={"platform_config": {"container": "python:3.11-slim"}})
    for i, pin in enumerate(SIDE_BY_SIDE):
        write_app(root, f"colour-{i}", PACKAGE_REPORT, files=_requirements(pin),
                  template={"params": {"app": {"module": "termcolor"}}})
    write_app(root, "no-requirements", PACKAGE_REPORT)
    return root


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory, apps: Path) -> LocalServer:
    return start_module_server(apps_dirs=[apps], workers=2)


def _run(api: Api, template: str, **body: Any) -> dict[str, Any]:
    return api.run(templateId=template, **body)


def _report(api: Api, job: dict[str, Any]) -> dict[str, Any]:
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    return json.loads(api.results(job["id"])["report.json"])


def _log_lines(api: Api, job_id: str) -> list[dict[str, Any]]:
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job_id})
    lines = logs["partitioner"] + logs["assembler"]
    for task in logs["taskrunner"].values():
        lines += task["logs"]
    return lines


def _runtime_lines(api: Api, job_id: str) -> list[str]:
    return [line["log"] for line in _log_lines(api, job_id) if line["container"] == RUNTIME]


def test_requirements_are_installed_in_the_apps_own_environment(api: Api) -> None:
    report = _report(api, _run(api, "with-package-template"))
    assert report["camel"] == "AppEnvs" and report["version"] == "0.5.1"
    # In an environment of the session's folder (root conftest.py), named by Python version.
    prefix = Path(report["prefix"])
    assert prefix.parent == Path(os.environ["BYTENITE_LOCAL_ENVS_DIR"])
    assert prefix.name.startswith(f"py{sys.version_info.major}.{sys.version_info.minor}-")
    assert report["virtual_env"] == report["prefix"]
    assert Path(report["executable"]).parent == prefix / "bin"
    # The server's own environment never got the package.
    assert importlib.util.find_spec("inflection") is None
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("inflection")


def test_an_app_without_requirements_runs_in_the_servers_python(api: Api) -> None:
    job = _run(api, "no-requirements-template", params={"app": {"module": "jsonschema"}})
    report = _report(api, job)
    assert Path(report["prefix"]) == Path(sys.prefix)
    assert report["version"] == importlib.metadata.version("jsonschema")


def test_two_versions_of_a_package_run_side_by_side(api: Api) -> None:
    # Both jobs run at once, each with its own version of termcolor.
    jobs = [api.create(templateId=f"colour-{i}-template") for i in range(len(SIDE_BY_SIDE))]
    for job in jobs:
        api.ok("POST", f"{C}/jobs/{job['id']}/run")
    versions = [_report(api, api.wait(job["id"]))["version"] for job in jobs]
    assert versions == [pin.split("==")[1] for pin in SIDE_BY_SIDE]
    assert importlib.util.find_spec("termcolor") is None


def test_the_container_is_named_where_the_app_runs_instead(api: Api) -> None:
    job = _run(api, "with-package-template")
    lines = _runtime_lines(api, job["id"])
    said = [line for line in lines if "not in the container python:3.11-slim" in line]
    assert len(said) == 1 and "runs in environment py3." in said[0], lines


def test_a_job_on_a_built_environment_reuses_its_warm_fork_server(api: Api) -> None:
    first = _report(api, _run(api, "with-package-template"))
    second = _report(api, _run(api, "with-package-template"))
    # Both tasks were forked by the same fork server, which runs the environment's Python.
    assert first["ppid"] == second["ppid"]
    zygote = psutil.Process(first["ppid"])
    assert zygote.cmdline()[0] == first["executable"]
    assert zygote.cmdline()[1].endswith("zygote.py")


def test_a_missing_module_is_named_in_the_error_message(api: Api) -> None:
    job = _run(api, "no-requirements-template", params={"app": {"module": "inflection"}})
    assert job["state"] == "JOB_STATE_FAILED"
    message = job["errorMessage"]
    assert "module 'inflection' is not installed" in message, message
    assert "app/requirements.txt" in message


# -- builds, each in a folder of its own ----------------------------------------------------


@pytest.fixture()
def fresh(start_server: ServerFactory, apps: Path, tmp_path: Path) -> tuple[LocalServer, Path]:
    """A server whose environments folder is new (so builds happen)."""
    envs = tmp_path / "envs"
    return start_server(apps_dirs=[apps], workers=2,
                        config_overrides={"envs_dir": envs}), envs


def test_the_build_shows_in_the_jobs_logs_and_events(fresh: tuple[LocalServer, Path]) -> None:
    server, envs = fresh
    api = Api(server.base_url, TEST_API_KEY)
    job = _run(api, "with-package-template")
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    lines = _runtime_lines(api, job["id"])
    assert any(line.startswith("preparing environment for with-package@0.1 from "
                               "app/requirements.txt (1 requirement)") for line in lines), lines
    assert any("inflection" in line and "0.5.1" in line for line in lines), lines  # installer's
    events = read_events(api, 0, lambda got: any(
        e["event"] == "job.state" and e["data"]["state"] == "JOB_STATE_COMPLETE"
        for e in got), jobId=job["id"])
    logged = [e["data"]["log"] for e in events if e["event"] == "job.log"]
    assert any(text.startswith("preparing environment for with-package@0.1") for text in logged)
    assert [p.name for p in envs.iterdir() if not p.name.startswith(".")] == [
        line.rsplit(": ", 1)[1] for line in lines if line.startswith("preparing environment")]


def test_concurrent_jobs_build_an_environment_once(fresh: tuple[LocalServer, Path],
                                                   tmp_path: Path) -> None:
    server, envs = fresh
    api = Api(server.base_url, TEST_API_KEY)
    jobs = [api.create(templateId="with-package-template") for _ in range(3)]
    threads = [threading.Thread(target=api.ok, args=("POST", f"{C}/jobs/{job['id']}/run"))
               for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = [api.wait(job["id"]) for job in jobs]
    assert [job["state"] for job in ended] == ["JOB_STATE_COMPLETE"] * 3
    # The installer ran for one of them; the others waited for it (or found it ready).
    installed = [job for job in ended
                 if any("inflection" in line for line in _runtime_lines(api, job["id"]))]
    assert len(installed) == 1
    assert len([p for p in envs.iterdir() if not p.name.startswith(".")]) == 1


def test_a_failed_build_fails_the_job_with_the_installers_words(
        start_server: ServerFactory, tmp_path: Path) -> None:
    root = tmp_path / "apps"
    write_app(root, "unbuildable", PACKAGE_REPORT,
              files=_requirements("bytenite-nb-no-such-package-0b1c==9.9.9"))
    server = start_server(apps_dirs=[root], config_overrides={"envs_dir": tmp_path / "envs"})
    api = Api(server.base_url, TEST_API_KEY)
    job = _run(api, "unbuildable-template")
    assert job["state"] == "JOB_STATE_FAILED"
    message = job["errorMessage"]
    assert message.startswith("preparing the environment of the app unbuildable@0.1 from "
                              "app/requirements.txt failed: "), message
    assert "bytenite-nb-no-such-package-0b1c" in message  # the installer's own words
    assert "exited with" in message
    # Nothing ran, and no half-built environment is left to be mistaken for a good one.
    assert api.ok("GET", f"{C}/jobs/{job['id']}/tasks")["tasks"] == []
    assert [p for p in (tmp_path / "envs").iterdir() if not p.name.startswith(".")] == []


def test_an_environment_survives_a_restart(apps: Path, tmp_path: Path) -> None:
    # Two servers in turn on one data dir (environments under it, the default place): the
    # second finds the environment the first built.
    data_dir = tmp_path / "data"
    overrides = {"envs_dir": data_dir / "envs"}
    names = []
    for _ in range(2):
        with LocalServer.start(data_dir, in_process=True, reuse=False, apps_dirs=[apps],
                               api_keys=[TEST_API_KEY], config_overrides=overrides) as server:
            api = Api(server.base_url, TEST_API_KEY)
            job = _run(api, "with-package-template")
            assert job["state"] == "JOB_STATE_COMPLETE"
            lines = _runtime_lines(api, job["id"])
            names.append([line for line in lines if line.startswith("preparing environment")])
    assert len(names[0]) == 1 and names[1] == []  # built by the first, reused by the second


def test_no_app_envs_runs_every_app_in_the_servers_python(start_server: ServerFactory,
                                                          apps: Path) -> None:
    server = start_server(apps_dirs=[apps], config_overrides={"app_envs": False})
    api = Api(server.base_url, TEST_API_KEY)
    job = _run(api, "with-package-template")
    assert job["state"] == "JOB_STATE_FAILED"
    assert "module 'inflection' is not installed" in job["errorMessage"]
    assert "--no-app-envs" in job["errorMessage"]
    lines = _runtime_lines(api, job["id"])
    assert any("app/requirements.txt, which is ignored (--no-app-envs)" in line
               for line in lines), lines


@pytest.mark.slow
def test_without_uv_environments_are_built_with_venv_and_pip(start_server: ServerFactory,
                                                             apps: Path, tmp_path: Path) -> None:
    server = start_server(apps_dirs=[apps], config_overrides={
        "envs_dir": tmp_path / "envs", "env_installer": "pip"})
    api = Api(server.base_url, TEST_API_KEY)
    job = _run(api, "with-package-template")
    assert _report(api, job)["camel"] == "AppEnvs"
    lines = _runtime_lines(api, job["id"])
    assert any("Successfully installed inflection-0.5.1" in line for line in lines), lines
