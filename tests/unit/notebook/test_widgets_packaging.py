"""The wheel ships the widgets' JS (hatch force-include), and an installed copy finds it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import bytenite_nb

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_wheel_contains_js_and_installed_package_loads_it(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-q", "-w", str(wheels)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = wheels.glob("bytenite_nb-*.whl")
    # The package's version is written once, in bytenite_nb/_version.py; pyproject reads it.
    assert wheel.name.startswith(f"bytenite_nb-{bytenite_nb.__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {name.removeprefix("bytenite_nb/static/") for name in names
               if name.startswith("bytenite_nb/static/")}
    # every asset of js/ (the node tests in js/tests stay in the repository)
    assert shipped == {p.name for p in (REPO / "js").iterdir() if p.is_file()}
    assert shipped >= {"monitor.js", "monitor_logic.js", "dashboard.js", "dashboard_logic.js",
                       "throttle.js", "bytenite.css"}
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=300)
    probe = (
        "from bytenite_nb.notebook.widgets import _assets as a\n"
        "print(a.asset_dir())\n"
        "assert 'export default' in a.esm_source('monitor.js')\n"
    )
    # -I: isolated mode, so the editable install of the checkout is not on sys.path.
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, "
                          f"{str(target)!r})\n{probe}"], check=True, capture_output=True,
                         text=True, cwd=tmp_path, timeout=120)
    assert out.stdout.strip() == str(target / "bytenite_nb" / "static")
