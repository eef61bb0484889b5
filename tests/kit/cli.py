"""Running ``bytenite-nb`` commands in a test: through ``main(argv)`` with the output captured
(the ``cli`` fixture of ``tests/integration/cli/conftest.py``), and checking how they ended."""

from __future__ import annotations

import json
from collections.abc import Callable


class Run:
    """One command's exit code and output."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> object:
        return json.loads(self.out)


#: ``cli("app", "list", ...)``: runs the command, returns its `Run`.
Cli = Callable[..., Run]


def ok(run: Run) -> Run:
    """``run``, which must have exited 0."""
    assert run.code == 0, (run.code, run.out, run.err)
    return run


def failed(run: Run, code: int, *words: str) -> str:
    """The one-line error of a failed command, which mentions ``words``."""
    assert run.code == code, (run.code, run.out, run.err)
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    for word in words:
        assert word.lower() in lines[0].lower(), lines[0]
    return lines[0]
