"""bench/README.md says what the benchmarks are and take, and each writes its own part of
docs/ytelse.md (issue 8.7: the README's flags and sizes had drifted from the code).

Read from the sources (ast), so no benchmark runs here: every file the README names exists;
every ``bench_*.py`` that ``make bench`` runs has a README section and a row in its options
table; each section's ``Options:`` paragraph names exactly the flags the script's argparse
declares; every example command uses only flags its script declares and names benchmarks that
exist; each benchmark writes one ``report.Section`` named after its file, which is the marker
bench/run.py splices into docs/ytelse.md (and how it tells which benchmarks wrote nothing).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
README = BENCH / "README.md"
YTELSE = REPO / "docs" / "ytelse.md"
FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]*")
BENCHMARKS = sorted(BENCH.glob("bench_*.py"))  # what bench/run.py runs
SCRIPTS = [*BENCHMARKS, *sorted(BENCH.glob("explore_*.py"))]


def readme_sections() -> dict[str, str]:
    """Each ``## name.py`` heading's text, by the script's file name."""
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", README.read_text(encoding="utf-8"), flags=re.M)[1:]:
        heading, _, body = block.partition("\n")
        named = re.match(r"(\w+\.py)\b", heading)
        if named:
            sections[named.group(1)] = body
    return sections


def declared_flags(script: Path) -> set[str]:
    """Every ``--flag`` given to ``add_argument`` in the script."""
    flags = set()
    for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            flags |= {a.value for a in node.args
                      if isinstance(a, ast.Constant) and str(a.value).startswith("--")}
    return flags


def section_names(script: Path) -> list[object]:
    """The first argument of every ``Section(...)`` the script makes."""
    return [
        node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        and node.func.id == "Section"
    ]


def test_every_file_the_readme_names_exists() -> None:
    text = README.read_text(encoding="utf-8")
    bare = set(re.findall(r"(?<![\w/])((?:bench|explore)_\w+\.py)", text))
    paths = set(re.findall(
        r"(?<![\w/])((?:bench|scripts|tests|pyapp|server|docs)/[\w./-]+\.(?:py|md))", text))
    assert bare and paths
    missing = sorted({n for n in bare if not (BENCH / n).exists()}
                     | {p for p in paths
                        if not p.startswith("bench/out/") and not (REPO / p).exists()})
    assert not missing, f"bench/README.md names files that do not exist: {missing}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_has_its_readme_section(script: Path) -> None:
    assert script.name in readme_sections(), f"bench/README.md has no '## {script.name}'"
    if script in BENCHMARKS:
        assert f"\n| {script.name} |" in README.read_text(encoding="utf-8"), (
            f"{script.name} has no row in bench/README.md's options table")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_readme_options_are_the_scripts_options(script: Path) -> None:
    body = readme_sections()[script.name]
    paragraphs = [p for p in body.split("\n\n") if p.startswith("Options:")]
    assert len(paragraphs) == 1, f"{script.name}: one 'Options:' paragraph in bench/README.md"
    documented = set(FLAG.findall(paragraphs[0]))
    declared = declared_flags(script)
    assert declared, f"{script.name} declares no options"
    assert documented == declared, (
        f"{script.name}: only in bench/README.md {sorted(documented - declared)}, "
        f"only in the script {sorted(declared - documented)}")


def example_commands() -> list[str]:
    """The indented code lines and the inline commands (`` `.venv/bin/python bench/…` ``)."""
    text = README.read_text(encoding="utf-8")
    indented = [line.strip().split("#")[0] for line in text.splitlines()
                if line.startswith("    ")]
    return [*indented, *re.findall(r"`(\.venv/bin/python bench/[^`]+)`", text)]


def test_every_example_command_uses_flags_its_benchmark_takes() -> None:
    names = {s.stem.removeprefix("bench_") for s in BENCHMARKS}
    commands = 0
    for command in example_commands():
        line = command
        script = re.search(r"bench/((?:bench|explore)_\w+\.py)(.*)", command)
        if script:
            commands += 1
            unknown = set(FLAG.findall(script.group(2))) - declared_flags(BENCH / script.group(1))
            assert not unknown, f"{script.group(1)} does not take {sorted(unknown)}: {line}"
        run = re.search(r"bench/run\.py(.*)", command)
        if run:
            commands += 1
            chosen, _, passed = run.group(1).partition(" -- ")
            chosen_names = chosen.split()
            assert set(chosen_names) <= names, f"no such benchmark: {line}"
            for name in chosen_names:
                unknown = set(FLAG.findall(passed)) - declared_flags(BENCH / f"bench_{name}.py")
                assert not unknown, f"bench_{name}.py does not take {sorted(unknown)}: {line}"
    assert commands >= 5


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_each_benchmark_writes_the_section_named_after_it(script: Path) -> None:
    assert section_names(script) == [script.stem.removeprefix("bench_")], (
        f"{script.name} must make one report.Section named "
        f"{script.stem.removeprefix('bench_')!r} (its marker in docs/ytelse.md)")


def test_the_markers_in_ytelse_are_whole_unique_and_of_benchmarks_that_exist() -> None:
    text = YTELSE.read_text(encoding="utf-8")
    opened = re.findall(r"<!-- bench:(\w+) -->", text)
    assert len(opened) == len(set(opened)), f"a marker twice in docs/ytelse.md: {opened}"
    for name in opened:
        assert (BENCH / f"bench_{name}.py").exists(), f"docs/ytelse.md: no bench_{name}.py"
        start, end = text.index(f"<!-- bench:{name} -->"), text.find(f"<!-- /bench:{name} -->")
        assert end > start and "<!-- bench:" not in text[start + 1 : end], (
            f"docs/ytelse.md: {name}'s section is not closed before the next one")
    assert sorted(re.findall(r"<!-- /bench:(\w+) -->", text)) == sorted(opened)
