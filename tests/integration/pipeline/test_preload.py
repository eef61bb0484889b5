"""``serve --preload``: modules every task starts with, through the real command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bytenite_nb.cli import main
from bytenite_nb.local import LOG_FILE
from bytenite_nb.server.config import ServerConfig
from tests.kit.apps import write_app
from tests.kit.loopback import Api, C
from tests.kit.servers import ServerFactory

# Reports, before importing anything, whether its interpreter already has these modules.
APP = """\
import sys
print("loaded:", sorted(m for m in ("decimal", "fractions") if m in sys.modules))
import os
open(os.path.join(os.environ["TASK_RESULTS_DIR"], "done.txt"), "w").write("ok")
"""


def test_preloaded_modules_are_loaded_in_every_task(tmp_path: Path,
                                                    start_server: ServerFactory) -> None:
    apps = tmp_path / "apps"
    write_app(apps, "probe", APP)
    # Out of process: LocalServer passes --preload on to `bytenite-nb serve`.
    server = start_server(in_process=False, apps_dirs=[apps], preload=["decimal"], workers=1)
    banner = (server.data_dir / LOG_FILE).read_text()
    assert "local fork server (1 worker, preloading decimal)" in banner
    api = Api(server.base_url, server.api_key)
    job = api.run(templateId="probe-template",
                  dataSource={"dataSourceDescriptor": "bypass"},
                  dataDestination={"dataSourceDescriptor": "bucket"})
    assert job["state"] == "JOB_STATE_COMPLETE", job["errorMessage"]
    logs = api.ok("POST", f"{C}/logs", json={"jobId": job["id"]})["taskrunner"]
    assert [e["log"] for e in logs["task-0"]["logs"]] == ["loaded: ['decimal']"]


def test_preload_names_are_split_deduplicated_and_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = ServerConfig(data_dir=tmp_path, preload=("numpy, pandas", "numpy"))
    assert config.preload == ("numpy", "pandas")
    with pytest.raises(ValueError, match="'numpy pandas' is not a module name"):
        ServerConfig(data_dir=tmp_path, preload=("numpy pandas",))
    assert main(["serve", "--data-dir", str(tmp_path), "--port", "0",
                 "--preload", "2fast"]) == 2
    assert "preload: '2fast' is not a module name" in capsys.readouterr().err
