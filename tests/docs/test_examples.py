"""Every shell example in the README and docs/ runs as written, on the day it is run.

Each fenced ``sh`` block is run with bash in a fresh folder that holds a link to the checkout's
``.venv`` (so ``.venv/bin/ipis`` works as written) and has the venv first on PATH (so a bare
``ipis`` works, as for an operator who activated it). A block that cannot run inside a test
(``make test`` itself, a command that runs until stopped) says why in an HTML comment on the
line before it: ``<!-- ikke kjørt av testene: <grunn> -->``. No block is skipped silently.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "bench/README.md"]
FENCE = re.compile(r"^```(\w*)\s*$")
NOT_RUN = re.compile(r"<!--\s*ikke kjørt av testene:\s*(\S.*?)\s*-->")
TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class Example:
    document: Path
    line: int
    code: str
    not_run_because: str | None

    def __str__(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"


def shell_examples(document: Path) -> list[Example]:
    examples: list[Example] = []
    lines = document.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        if opening.group(1) in {"sh", "bash", "shell"}:
            previous = lines[index - 1] if index else ""
            reason = NOT_RUN.search(previous)
            examples.append(
                Example(
                    document,
                    index + 1,
                    "\n".join(lines[index + 1 : end]) + "\n",
                    reason.group(1) if reason else None,
                )
            )
        index = end + 1
    return examples


ALL_EXAMPLES = [example for document in DOCUMENTS for example in shell_examples(document)]
RUNNABLE = [example for example in ALL_EXAMPLES if example.not_run_because is None]
# The blocks a test cannot run: the README's two commands (CI runs `make test` itself, `make run`
# serves until stopped). Anything else must run; raise this only with a reason in the document.
MOST_NOT_RUN = 2


def test_the_documents_have_examples() -> None:
    readme = [e for e in ALL_EXAMPLES if e.document.name == "README.md"]
    assert len(readme) >= 3, "the README's two commands and its hand-run block"
    assert any(e.not_run_because is None for e in readme)


def test_only_the_readme_commands_are_not_run() -> None:
    not_run = [e for e in ALL_EXAMPLES if e.not_run_because is not None]
    assert len(not_run) <= MOST_NOT_RUN, [f"{e}: {e.not_run_because}" for e in not_run]
    assert {e.code.strip() for e in not_run} <= {"make run", "make test"}, not_run


@pytest.mark.parametrize("example", RUNNABLE, ids=str)
def test_example_runs_as_written(example: Example, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(REPO / ".venv")
    environment = {
        **os.environ,
        "PATH": f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
    }
    environment.pop("IPIS_INSTANCE", None)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example.code],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, (
        f"{example} failed ({result.returncode}):\n{example.code}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
