"""The README and docs/*.md point only at things that exist.

Checked: every relative link and image (resolved from the file that holds it); every repo path in code
(inline or fenced) that starts with one of the repo's folders, and the test it names after ``::``; every dotted
``engine.…`` / ``gui.…`` module and the first name used from it; the file tree in docs/architecture.md; every
``python -m engine`` command's subcommand and options; the app's options; every ``--set KEY=VALUE`` key and
value; every ``make`` target and pip extra. Placeholders are left alone: paths outside the repo's folders
(``runs/…``, ``RUN/tb``, ``~/photos``), UPPERCASE words (``A_FOLDER``, ``COMMAND``, ``KEY=VALUE``), URLs and anchors.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest

from engine.__main__ import build_parser
from engine.config import field_specs, parse_value
from engine.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
REPO_DIRS = ("engine", "gui", "tests", "docs", "resources")
PACKAGES = ("engine", "gui")

FENCE = re.compile(r"^(```|~~~)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
REPO_PATH = re.compile(rf"(?<![\w./~$-])((?:{'|'.join(REPO_DIRS)})/[\w./-]*)")
TEST_ID = re.compile(r"(?<![\w./-])(tests/[\w/]+\.py)::(\w+)")
MODULE = re.compile(rf"(?<![\w./-])((?:{'|'.join(PACKAGES)})(?:\.\w+)+)")
ENGINE_CMD = re.compile(r"-m\s+engine(?![\w.])([^\n#]*)")
APP_CMD = re.compile(r"(?:python3?\s+main\.py|(?<![\w-])cyclegan-studio)(?![\w.-])([^\n#]*)")
COMMAND_END = re.compile(r"\s(?:&&|\|\||;|\|)\s")
OPTION = re.compile(r"^[\[(]?(--[A-Za-z][\w-]*|-[A-Za-z])(?![\w-])")
SET = re.compile(r"--set[ =]([A-Za-z_]\w*)=([^\s`]+)")
MAKE = re.compile(r"(?<![\w./-])make\s+([a-z][\w-]*)")
PIP_EXTRAS = re.compile(r"pip install[^\n`]*?-e\s+['\"]?\.\[([\w,-]+)\]")


@dataclass(frozen=True)
class Doc:
    path: Path
    blocks: tuple[str, ...]  # fenced code blocks, with backslash-continued lines joined
    spans: tuple[str, ...]   # inline code spans, newlines as spaces
    prose: str               # everything else

    @property
    def name(self) -> str:
        return str(self.path.relative_to(ROOT))

    @property
    def code(self) -> tuple[str, ...]:
        return (*self.blocks, *self.spans)


def _parse(path: Path) -> Doc:
    text = path.read_text(encoding="utf-8")
    blocks = tuple(m.group(2).replace("\\\n", " ") for m in FENCE.finditer(text))
    rest = FENCE.sub("\n", text)
    spans = tuple(" ".join(m.group(2).split()) for m in INLINE.finditer(rest))
    return Doc(path, blocks, spans, INLINE.sub(" ", rest))


DOCS = tuple(_parse(p) for p in DOC_FILES)


def _placeholder(word: str) -> bool:
    """COMMAND, A_FOLDER, VALUE, N, …: a word the reader replaces."""
    letters = re.sub(r"[^A-Za-z]", "", word)
    return (bool(letters) and letters.isupper()) or word in ("…", "...")


def _check(found: list[tuple[str, str]], problems: list[str], what: str) -> None:
    assert found, f"no {what} found in the docs: the collector is broken"
    assert not problems, f"{what} that do not exist:\n  " + "\n  ".join(problems)


def test_the_docs_are_there():
    assert (ROOT / "README.md").is_file()
    names = {p.name for p in DOC_FILES}
    assert {"architecture.md", "cluster.md", "models.md", "performance.md", "quality.md", "wasserstein.md"} <= names


def test_relative_links_and_images_resolve():
    found, problems = [], []
    for doc in DOCS:
        for m in LINK.finditer(doc.prose):
            target = m.group(1)
            if SCHEME.match(target) or target.startswith("#"):
                continue
            found.append((doc.name, target))
            path = (doc.path.parent / unquote(target.split("#", 1)[0])).resolve()
            if not path.exists() or not path.is_relative_to(ROOT):
                problems.append(f"{doc.name}: ({target})")
    _check(found, problems, "relative links")


def test_repo_paths_in_code_exist():
    found, problems = [], []
    for doc in DOCS:
        for text in doc.code:
            for m in REPO_PATH.finditer(text):
                path = m.group(1).rstrip(".,:;")
                found.append((doc.name, path))
                if not (ROOT / path).exists():
                    problems.append(f"{doc.name}: {path}")
            for m in TEST_ID.finditer(text):
                file, test = ROOT / m.group(1), m.group(2)
                if file.is_file() and not re.search(rf"^def {test}\(", file.read_text(encoding="utf-8"), re.M):
                    problems.append(f"{doc.name}: {m.group(0)}")
    _check(found, problems, "repo paths")


def _defines(module: Path, name: str) -> bool:
    """Whether ``module`` defines or imports ``name`` at its top level."""
    src = module.read_text(encoding="utf-8")
    return bool(re.search(rf"^(?:(?:async\s+)?def|class)\s+{name}\b|^{name}\s*[:=]|^(?:from|import)\s.*\b{name}\b"
                          rf"|^\s+{name}\s*(?:,|\)|$)", src, re.M))


def _module_problem(dotted: str) -> str | None:
    parts = dotted.split(".")
    path = ROOT / parts[0]
    for i, part in enumerate(parts[1:], 1):
        if (path / part / "__init__.py").is_file():
            path = path / part
        elif (path / f"{part}.py").is_file():
            rest = parts[i + 1:]
            if rest and not _defines(path / f"{part}.py", rest[0]):
                return f"{'.'.join(parts[:i + 1])} has no {rest[0]}"
            return None
        elif not _defines(path / "__init__.py", part):
            return f"no module or name {'.'.join(parts[:i + 1])}"
        else:
            return None
    return None


def test_dotted_modules_in_code_exist():
    found, problems = [], []
    for doc in DOCS:
        for text in doc.code:
            for m in MODULE.finditer(text):
                found.append((doc.name, m.group(1)))
                if (problem := _module_problem(m.group(1))) is not None:
                    problems.append(f"{doc.name}: {m.group(1)} ({problem})")
    _check(found, problems, "modules")


def _tree(block: str):
    """The paths of a file tree drawn with two spaces a level, a name first on each line, and further
    ``name.py`` entries in a second column; lines indented otherwise continue the line above."""
    stack: list[str] = []
    for line in block.splitlines():
        m = re.match(r"^( *)([\w.-]+/?)(?=\s|$)", line)
        if not m or len(m.group(1)) % 2 or len(m.group(1)) // 2 > len(stack):
            continue
        name = m.group(2)
        if not (name.endswith("/") or "." in name):
            continue
        del stack[len(m.group(1)) // 2:]
        parent = "".join(stack)
        yield parent + name
        if name.endswith("/"):
            stack.append(name)
        for extra in re.findall(r"\s{3,}(\w+\.py)(?=\s)", line[m.end():]):
            yield parent + extra


def test_module_tree_in_architecture_exists():
    doc = next(d for d in DOCS if d.path.name == "architecture.md")
    trees = [b for b in doc.blocks if b.lstrip().startswith("main.py ")]
    assert trees, "docs/architecture.md has no module tree starting with main.py"
    found = [(doc.name, p) for b in trees for p in _tree(b)]
    assert len(found) > 20, found
    _check(found, [f"{doc.name}: {p}" for _, p in found if not (ROOT / p).exists()], "tree entries")


def _commands(pattern: re.Pattern) -> list[tuple[str, list[str]]]:
    """(doc, tokens after the command) for every use of the command in code."""
    out = []
    for doc in DOCS:
        for text in doc.code:
            for m in pattern.finditer(text):
                out.append((doc.name, COMMAND_END.split(m.group(1))[0].split()))
    return out


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return set(parser._option_string_actions)


def _option_problems(doc: str, command: str, tokens: list[str], allowed: set[str] | argparse.ArgumentParser
                     ) -> list[str]:
    """Unknown options; with a parser, also values outside an option's choices (``--format cube``)."""
    actions = allowed._option_string_actions if isinstance(allowed, argparse.ArgumentParser) else {}
    problems = []
    for i, token in enumerate(tokens):
        m = OPTION.match(token)
        if not m:
            continue
        if m.group(1) not in (actions or allowed):
            problems.append(f"{doc}: {command} has no option {m.group(1)}")
            continue
        choices = getattr(actions.get(m.group(1)), "choices", None)
        value = tokens[i + 1].rstrip(",;)]") if i + 1 < len(tokens) else "-"
        if choices and not value.startswith("-"):
            for v in value.split("|"):
                if not _placeholder(v) and v not in choices:
                    problems.append(f"{doc}: {command} {m.group(1)} {v} (not one of {', '.join(map(str, choices))})")
    return problems


def test_engine_commands_and_options_exist():
    top = build_parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    found, problems = _commands(ENGINE_CMD), []
    for doc, tokens in found:
        flags = top._option_string_actions
        while len(tokens) > 1 and tokens[0] in flags and flags[tokens[0]].nargs == 0:  # python -m engine -v quality
            tokens = tokens[1:]
        command = tokens[0].rstrip(".,;:)") if tokens else ""
        if not tokens or tokens[0].startswith("-"):
            problems += _option_problems(doc, "python -m engine", tokens, top)
        elif _placeholder(command) or not re.fullmatch(r"[\w-]+", command):
            continue  # python -m engine COMMAND, or (python -m engine …)
        elif command not in subs:
            problems.append(f"{doc}: python -m engine has no command {command!r}")
        else:
            problems += _option_problems(doc, f"python -m engine {command}", tokens[1:], subs[command])
    _check(found, problems, "python -m engine commands")


def test_app_options_exist():
    # Read from gui/app.py's source: this test module must not import Qt.
    src = (ROOT / "gui" / "app.py").read_text(encoding="utf-8")
    allowed = {"-h", "--help"} | set(re.findall(r"add_argument\(\s*\"(-[-\w]+)\"", src))
    found, problems = _commands(APP_CMD), []
    for doc, tokens in found:
        problems += _option_problems(doc, "the app", tokens, allowed)
    assert 'cyclegan-studio = "gui.app:main"' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    _check(found, problems, "app commands")


def test_options_named_alone_exist():
    """`--tile PX` in a sentence: an option of some engine command or of the app."""
    top = build_parser()
    subs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction)).choices
    src = (ROOT / "gui" / "app.py").read_text(encoding="utf-8")
    app_options = re.findall(r"add_argument\(\s*\"(-[-\w]+)\"", src)
    allowed = _options(top).union(*(_options(p) for p in subs.values()), app_options)
    found, problems = [], []
    for doc in DOCS:
        for span in doc.spans:
            if span.startswith("--") and (m := OPTION.match(span)):
                found.append((doc.name, m.group(1)))
                if m.group(1) not in allowed:
                    problems.append(f"{doc.name}: {m.group(1)}")
    _check(found, problems, "options")


def test_set_keys_and_values_are_settings():
    names = {spec.name for spec in field_specs()}
    found, problems = [], []
    for doc in DOCS:
        for text in doc.code:
            for m in SET.finditer(text):
                key, value = m.group(1), m.group(2).rstrip(",;)")
                if _placeholder(key):
                    continue
                found.append((doc.name, f"{key}={value}"))
                if key not in names:
                    problems.append(f"{doc.name}: --set {key}=… (no such setting)")
                elif not _placeholder(value):
                    try:
                        parse_value(key, value)
                    except ConfigError as e:
                        problems.append(f"{doc.name}: --set {key}={value} ({e})")
    _check(found, problems, "--set settings")


def _pyproject_extras() -> set[str]:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[project.optional-dependencies]", 1)[1]
    section = re.split(r"^\[", section, maxsplit=1, flags=re.M)[0]
    return set(re.findall(r"^([\w-]+)\s*=", section, re.M))


def test_make_targets_and_pip_extras_exist():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    extras = _pyproject_extras()
    found, problems = [], []
    for doc in DOCS:
        for text in doc.code:
            for m in MAKE.finditer(text):
                found.append((doc.name, f"make {m.group(1)}"))
                if not re.search(rf"^{re.escape(m.group(1))}\s*:", makefile, re.M):
                    problems.append(f"{doc.name}: make {m.group(1)} (no such target)")
            for m in PIP_EXTRAS.finditer(text):
                for extra in m.group(1).split(","):
                    found.append((doc.name, f".[{extra}]"))
                    if extra not in extras:
                        problems.append(f"{doc.name}: pip extra {extra!r} (not in pyproject.toml)")
    _check(found, problems, "make targets and pip extras")
    readme = next(d for d in DOCS if d.path.name == "README.md")
    assert any("make test" in text for text in readme.code), "CI runs the README's `make test`"


def test_the_checks_catch_stale_names():
    assert _module_problem("gui.worker") is not None
    assert _module_problem("engine.wasserstein.critic.no_such_name") is not None
    assert _module_problem("engine.training.search.FamilySearch") is None
    tree = "main.py   the app\nengine/   the engine\n  training/   loop\n    step.py   one step     tb.py   logs\n"
    assert list(_tree(tree)) == ["main.py", "engine/", "engine/training/", "engine/training/step.py",
                                 "engine/training/tb.py"]


@pytest.mark.parametrize("text, expected", [
    ("see `engine/training/distributed.py` and [x](img/a.png)", {"engine/training/distributed.py"}),
    ("`runs/demo`, `RUN/tb`, `~/docs/x`, `/shared/engine/x`, `quality/studio3/TASK/grid.png`", set()),
    ("```sh\npytest tests/test_distances.py -q\n```", {"tests/test_distances.py"}),
])
def test_repo_paths_are_told_from_placeholders(tmp_path, text, expected):
    path = tmp_path / "x.md"
    path.write_text(text, encoding="utf-8")
    doc = _parse(path)
    assert {m.group(1).rstrip(".,:;") for t in doc.code for m in REPO_PATH.finditer(t)} == expected
