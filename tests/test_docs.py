"""Every reference in the docs resolves (issue 10 item 8).

For README.md and docs/*.md: every relative markdown link points at a file or folder inside the
repository, and its ``#anchor`` (also a bare ``#anchor``) at a heading of the target file
(GitHub's slugs); every inline-code span that looks like a repository path
(``oracle/dispatch/dispatcher.py``, ``contracts/verifiers/``, ``docs/security.md``, ``models/*/train.py``)
exists. Fenced code blocks are shell sessions and config examples: they are not checked.

For the sources (Python, Solidity, the scripts, the Makefile): every ``something.md`` they name
exists in the repository (``docs/cross-chain.md`` relative to the root, a bare name such as
``README.md`` at the root).
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

# Top-level folders whose paths inline code may name.
REPO_DIRS = ("oracle", "listeners", "relayer", "contracts", "docs", "bench", "tests", "scripts", "models")
SOURCE_DIRS = ("oracle", "listeners", "relayer", "contracts", "bench", "tests", "scripts", "models")
SOURCE_SUFFIXES = {".py", ".sol", ".js", ".toml", ".mako", ""}   # "" : scripts/solc, Makefile
ROOT_SOURCES = ("Makefile", "pyproject.toml", "foundry.toml", "package.json", ".ci/run")
SKIP_DIRS = {"node_modules", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "out",
             "cache", "build", ".cache", "fixtures"}

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE = re.compile(r"(`+)(.+?)\1", re.S)
PATH_IN_CODE = re.compile(r"^(?:" + "|".join(REPO_DIRS) + r")/[\w.*/-]*$")
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
MD_IN_SOURCE = re.compile(r"(?<![\w./*-])((?:\.\./)*(?:[\w-]+/)*[\w.-]*\w\.md)\b")


def _prose(text: str) -> str:
    """The markdown without its fenced code blocks (same line count is not needed)."""
    return FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces -> '-'."""
    parts = re.split(r"`([^`]*)`", heading)          # odd parts: code spans, taken literally
    for i in range(0, len(parts), 2):
        t = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", parts[i])          # [text](url) -> text
        parts[i] = re.sub(r"(?<!\w)[*_]{1,3}([^*_]+)[*_]{1,3}(?!\w)", r"\1", t)   # emphasis, not intraword
    text = "".join(parts).strip().lower()
    out = []
    for ch in text:
        if ch in " -_" or unicodedata.category(ch)[0] in "LN":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def anchors(text: str) -> set[str]:
    """The anchors of a markdown text's headings (a repeated heading gets -1, -2, ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for m in HEADING.finditer(_prose(text)):
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def _inside_repo(p: Path) -> bool:
    try:
        p.resolve().relative_to(ROOT)
        return True
    except ValueError:
        return False


def broken_links(md: Path, source: str | None = None) -> list[str]:
    """Why each relative link or repository path of ``md`` (its text: ``source``, else the file)
    does not resolve; empty when all do."""
    source = md.read_text() if source is None else source
    text = _prose(source)
    bad: list[str] = []
    for m in LINK.finditer(text):
        target = m.group(1)
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):      # http:, https:, mailto:
            continue
        path_part, _, frag = target.partition("#")
        dest = (md.parent / path_part).resolve() if path_part else md
        if not _inside_repo(dest):
            bad.append(f"{md.name}: link {target!r} points outside the repository")
            continue
        if path_part and not dest.exists():
            bad.append(f"{md.name}: link {target!r}: {dest.relative_to(ROOT)} does not exist")
            continue
        if frag:
            if dest.suffix != ".md":
                bad.append(f"{md.name}: link {target!r}: an anchor into a file that is not markdown")
            elif frag not in anchors(dest.read_text() if path_part else source):
                bad.append(f"{md.name}: link {target!r}: no heading #{frag} in {dest.relative_to(ROOT)}")
    for m in CODE.finditer(LINK.sub("", text)):
        span = m.group(2).strip()
        if not PATH_IN_CODE.match(span):
            continue
        if "*" in span:
            if not list(ROOT.glob(span.rstrip("/"))):
                bad.append(f"{md.name}: `{span}` matches no file")
        elif not (ROOT / span).exists():
            bad.append(f"{md.name}: `{span}` does not exist")
    return bad


def _sources() -> list[Path]:
    files = [ROOT / f for f in ROOT_SOURCES if (ROOT / f).is_file()]
    for d in SOURCE_DIRS:
        for p in sorted((ROOT / d).rglob("*")):
            rel = p.relative_to(ROOT)
            if p == Path(__file__).resolve():
                continue            # this file names missing docs on purpose (the probe below)
            if p.is_file() and p.suffix in SOURCE_SUFFIXES and not SKIP_DIRS.intersection(rel.parts):
                files.append(p)
    return files


def missing_docs(text: str) -> list[str]:
    """The ``*.md`` names in a source text that are not files of the repository (relative to
    its root, where the sources name them from)."""
    refs = [m.group(1) for m in MD_IN_SOURCE.finditer(text)]
    return [r for r in refs if not (_inside_repo(ROOT / r) and (ROOT / r).is_file())]


def broken_source_refs(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return []
    return [f"{path.relative_to(ROOT)}: names {ref}, which is not a file of the repository"
            for ref in missing_docs(text)]


@pytest.mark.parametrize("md", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_link_and_path_resolves(md: Path) -> None:
    bad = broken_links(md)
    assert not bad, "\n".join(bad)


def test_sources_name_only_existing_docs() -> None:
    files = _sources()
    assert len(files) > 100        # the walk found the tree
    bad = [b for f in files for b in broken_source_refs(f)]
    assert not bad, "\n".join(bad)


def test_the_docs_the_readme_promises_exist() -> None:
    for name in ("architecture", "onchain-interface", "proof-systems", "service", "postgres", "subnet",
                 "cross-chain", "security", "toolchain"):
        assert (ROOT / "docs" / f"{name}.md").is_file(), name


def test_the_checker_sees_breakage() -> None:
    """The checks themselves: a missing file, a missing anchor, a path outside the repository, a
    missing inline-code path and a missing doc named in a source are reported; a fenced block,
    a good anchor and an existing path are not."""
    probe = ROOT / "docs" / "_probe.md"          # never written: its text is passed in
    text = ("# Title here\n\n[ok](#title-here) [gone](nope.md) [anchor](security.md#no-such-heading)\n"
            "[out](../../etc/passwd) [fine](../README.md) `oracle/no_such_module.py` `oracle/dispatch/dispatcher.py`\n"
            "```\n[in a fence](ignored.md) `oracle/in_a_fence.py`\n```\n")
    bad = broken_links(probe, text)
    assert len(bad) == 4, bad
    assert any("nope.md" in b for b in bad) and any("no-such-heading" in b for b in bad)
    assert any("outside" in b for b in bad) and any("no_such_module" in b for b in bad)
    assert missing_docs("# see docs/no-such-doc.md, docs/security.md and README.md; TOOLCHAIN.md\n") == [
        "docs/no-such-doc.md", "TOOLCHAIN.md"]
    assert slug("Gas (risk model: 8 inputs, 3 outputs)") == "gas-risk-model-8-inputs-3-outputs"
    assert slug("Cross-chain: one proof, verified on every chain") == "cross-chain-one-proof-verified-on-every-chain"
    # underscores inside a code span or a word are literal (GitHub); emphasis markers are dropped
    assert slug("Store reads (`bench/bench_store_reads.py`)") == "store-reads-benchbench_store_readspy"
    assert slug("A *really* big_table, _quoted_") == "a-really-big_table-quoted"
