"""The environment a study ran on is recorded and shown (the same seeds differ across machines)."""

from __future__ import annotations

import platform
from pathlib import Path

from hub.study.environment import cpu_model, environment, environment_line


def test_the_cpu_model_is_read_from_cpuinfo_and_falls_back_without_it(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU 9000\nflags\t: a b\n")
    assert cpu_model(cpuinfo) == "Example CPU 9000"
    assert cpu_model(tmp_path / "missing") == (platform.processor() or "unknown")


def test_the_record_names_versions_and_cpu_and_renders_as_one_line() -> None:
    record = environment()
    assert record["python"] == platform.python_version() and record["machine"] == platform.machine()
    assert record["packages"]["torch"].startswith("2.14.1")
    line = environment_line(
        {
            "python": "3.11.7",
            "packages": {"torch": "2.14.1", "faiss-cpu": None, "numpy": "2.4.6"},
            "machine": "x86_64",
            "cpu": "Example CPU 9000",
        }
    )
    assert line == "Environment: Python 3.11.7, torch 2.14.1, numpy 2.4.6; Example CPU 9000 (x86_64)."
    assert environment_line(None) is None  # a study.json from before it was recorded
