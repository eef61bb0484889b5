"""The magics in a real Jupyter kernel: live progress, and the kernel's own interrupt.

A kernel started with jupyter_client runs ``%bytenite run ... --wait``; the test interrupts it
through the kernel manager (SIGINT, what the ⏹ button does) once the job runs on the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bytenite_nb.api.client import Client
from bytenite_nb.api.errors import JobFailedError
from bytenite_nb.local import LocalServer
from bytenite_nb.notebook.ledger import Ledger
from tests.kit.apps import SLEEPY as SLEEPY_APP
from tests.kit.apps import write_app
from tests.kit.servers import ServerFactory

pytestmark = pytest.mark.slow
#: The ``sleepy`` app (one task sleeping ``params.app.seconds``) between passthrough engines.
SLEEPY = "sleepy-template"


@pytest.fixture(scope="module")
def server(start_module_server: ServerFactory,
           tmp_path_factory: pytest.TempPathFactory) -> LocalServer:
    apps = tmp_path_factory.mktemp("magics-kernel-apps")
    write_app(apps, "sleepy", SLEEPY_APP)
    return start_module_server(workers=1, apps_dirs=(apps,))


@pytest.fixture()
def kernel(server: LocalServer, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    import os

    from jupyter_client.manager import start_new_kernel

    env = dict(os.environ, BYTENITE_API_KEY=server.api_key,
               BYTENITE_CONFIG_FILE=str(tmp_path / "config.toml"),
               BYTENITE_LOCAL_DIR=str(tmp_path / "no-local"))
    env.pop("BYTENITE_BASE_URL", None)
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _execute(kc: Any, code: str, *, when: Any = None, then: Any = None) -> list[dict[str, Any]]:
    """Run ``code``; collect its IOPub messages. Calls ``then()`` once ``when()`` is true."""
    msg_id = kc.execute(code)
    messages: list[dict[str, Any]] = []
    fired = False
    deadline = time.monotonic() + 180  # safety net for a wedged kernel, not an assertion
    while time.monotonic() < deadline:
        if when is not None and not fired and when():
            then()
            fired = True
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except Exception:  # queue.Empty: nothing yet
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
        messages.append(msg)
    raise AssertionError(f"the kernel did not finish {code!r}")


def _text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for msg in messages:
        content = msg["content"]
        parts.append(content.get("text", ""))
        parts.append(content.get("data", {}).get("text/plain", ""))
        parts.append("\n".join(content.get("traceback", [])))
    return "\n".join(parts)


def test_wait_progress_and_kernel_interrupt(
    kernel: tuple[Any, Any], server: LocalServer, tmp_path: Path
) -> None:
    km, kc = kernel
    client = Client(api_key=server.api_key, base_url=server.base_url)
    setup = _execute(kc, "%load_ext bytenite_nb\n"
                         f"%config ByteniteMagics.base_url = '{server.base_url}'\n"
                         f"%config ByteniteMagics.ledger_path = '{tmp_path / 'ledger.jsonl'}'")
    assert not [m for m in setup if m["msg_type"] == "error"]

    done = _execute(kc, f"%bytenite run {SLEEPY} --source bypass --param seconds=1 --wait "
                        "--progress-after 0")
    kinds = [m["msg_type"] for m in done]
    assert "error" not in kinds
    assert "update_display_data" in kinds  # the progress view updated in place
    assert "(waited " in _text(done)  # ...and was retired when the wait ended
    assert "COMPLETE" in _text(done)

    known = {j.id for j in client.jobs()}
    ledger = Ledger(tmp_path / "ledger.jsonl")

    def running() -> bool:  # recorded in the ledger: started, about to wait
        last = ledger.last()
        return last is not None and last.job_id not in known

    stopped = _execute(kc, f"%bytenite run {SLEEPY} --source bypass --param seconds=120 "
                           "--wait -o slow", when=running, then=km.interrupt_kernel)
    text = _text(stopped)
    assert "UsageError: Interrupted: aborted job" in text
    assert "Traceback" not in text
    (job,) = [j for j in client.jobs() if j.id not in known]
    if not job.state.is_terminal:
        with pytest.raises(JobFailedError):
            job.wait(timeout=120)
    assert client.job(job.id).state.name == "FAILED"
