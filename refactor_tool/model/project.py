"""The target tree as the codemods see it.

A :class:`Project` is a root directory plus an in-memory *overlay* of contents that earlier
phases produced but did not write (``--dry-run --all``) or that a test supplies (fixture
pairs). Every read goes through the overlay first, and every parse goes through one cache keyed
by the file's bytes, so a file is parsed at most once for as long as its content is unchanged,
however many phases and analyses look at it.
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Iterator

import libcst as cst

from .config import STATE_DIR, Config, load_config, python_files_under


def location(path: str, line: int | None) -> str:
    """``path:line``, or ``path`` alone where the line is not known (None or 0)."""
    return f"{path}:{line}" if line else path


@dataclass
class InputError(Exception):
    """Bad input: always names the file (relative to the target) and, where known, the line."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{location(self.path, self.line)}: {self.message}"


class Project:
    def __init__(
        self,
        root: Path,
        config: Config | None = None,
        overlay: dict[str, bytes | None] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.config = config if config is not None else load_config(self.root)
        # relpath -> bytes (content) or None (deleted by an earlier, unwritten phase)
        self.overlay: dict[str, bytes | None] = dict(overlay or {})
        self._parse_cache: dict[tuple[str, bytes], cst.Module] = {}  # (rel, content) -> tree
        self._printed: set[int] = set()  # ids of cached trees that print their content
        self._reads: dict[str, tuple[tuple[int, int, int, int], bytes]] = {}
        self._root_str = str(self.root)
        self._listing: list[str] | None = None
        #: the run state (``refactor_tool.model.state.state_of`` loads it on first use)
        self.run_state: Any = None  # a RunState
        self.parse_count = 0
        #: analyses' results kept with what they were computed from (each checks its own)
        self.memo: dict[str, object] = {}

    #: where the tool keeps its own files in the target (baseline, run state, journal)
    STATE_DIR = STATE_DIR

    def refresh(self) -> None:
        """Forget the cached file listing (after files were created or removed on disk)."""
        self._listing = None

    # ---------------------------------------------------------------- files
    def python_files(self) -> list[str]:
        """Every ``.py`` file of the target (relative POSIX paths, sorted), overlay included."""
        if self._listing is None:
            found: set[str] = set()
            if self.root.is_dir():
                found.update(self._walk())
            self._listing = sorted(found)
        files = set(self._listing)
        for rel, content in self.overlay.items():
            if rel.endswith(".py"):
                if content is None:
                    files.discard(rel)
                else:
                    files.add(rel)
        return sorted(files)

    def _walk(self) -> Iterator[str]:
        return python_files_under(self.root, self.config.exclude)

    def path_str(self, rel: str) -> str:
        """``str(self.path(rel))``, without building the Path."""
        return os.path.join(self._root_str, rel)

    def path(self, rel: str) -> Path:
        return self.root / PurePosixPath(rel)

    def exists(self, rel: str) -> bool:
        if rel in self.overlay:
            return self.overlay[rel] is not None
        return os.path.isfile(os.path.join(self._root_str, rel))

    def read_bytes(self, rel: str) -> bytes:
        if rel in self.overlay:
            content = self.overlay[rel]
            if content is None:
                raise FileNotFoundError(rel)
            return content
        # every phase's prefilter reads every file: keep the bytes while the file's size,
        # modification time and inode say it is the same file
        path = os.path.join(self._root_str, rel)
        info = os.stat(path)
        key = (info.st_mtime_ns, info.st_ctime_ns, info.st_size, info.st_ino)
        cached = self._reads.get(rel)
        if cached is not None and cached[0] == key:
            return cached[1]
        with open(path, "rb") as handle:
            data = handle.read()
        self._reads[rel] = (key, data)
        return data

    def read_text(self, rel: str) -> str:
        """Decoded source, for cheap text checks (the prefilter); never written back."""
        return self.read_bytes(rel).decode("utf-8", errors="replace")

    def grep(self, rels: Iterable[str], *needles: str) -> list[str]:
        """The cheap text prefilter: files whose raw bytes contain any of ``needles``."""
        encoded = [n.encode() for n in needles]
        out = []
        for rel in rels:
            data = self.read_bytes(rel)
            if any(n in data for n in encoded):
                out.append(rel)
        return out

    # ---------------------------------------------------------------- parsing
    def parse(self, rel: str) -> cst.Module:
        source = self.read_bytes(rel)
        key = (rel, source)  # bytes hash once per object, and compare by identity first
        module = self._parse_cache.get(key)
        if module is None:
            module = parse_source(rel, source)
            self.parse_count += 1
            self._parse_cache[key] = module
        return module

    def is_parsed(self, rel: str) -> bool:
        """Whether ``rel``'s current content is in the parse cache."""
        return (rel, self.read_bytes(rel)) in self._parse_cache

    def share_caches(self, other: Project) -> None:
        """Use ``other``'s parse cache and file listing (same root): parses are keyed by
        content, so a file parsed by either is never parsed again by the other."""
        if other.root == self.root:
            self._parse_cache = other._parse_cache
            self._printed = other._printed
            self._listing = other._listing
            self.memo = other.memo

    def apply(self, changes: Iterable["object"]) -> None:
        """Record changes in the overlay (used between phases of an unwritten run).

        A change that carries the codemods' tree of its new content (``tree``, printing
        exactly ``tree_source``) puts that tree in the cache, so nothing parses what a phase
        has just printed. Trees of earlier contents stay: the gates read each phase's tree
        on disk after the run computed every phase.
        """
        for change in changes:
            self.overlay[change.path] = change.new  # type: ignore[attr-defined]
            tree = getattr(change, "tree", None)
            new = change.new  # type: ignore[attr-defined]
            if tree is not None and new is not None and new == getattr(change, "tree_source", None):
                self._parse_cache[(change.path, new)] = tree  # type: ignore[attr-defined]
                self._printed.add(id(tree))

    def prints_exactly(self, tree: cst.Module) -> bool:
        """Whether ``tree`` is known to print exactly the content it is cached under (a tree
        a phase printed, handed on by :meth:`apply`; the cache keeps it alive)."""
        return id(tree) in self._printed

    def module_name(self, rel: str) -> str:
        return self.config.module_name(rel)

    def module_file(self, dotted: str) -> str | None:
        """The file of the project's module ``dotted`` (``x/y.py`` or ``x/y/__init__.py``,
        below the source root in a src layout), None when the project has none: the
        inverse of :meth:`module_name`."""
        base = dotted.replace(".", "/")
        roots = [self.config.source_root] if self.config.source_root else []
        for root in [*roots, ""]:
            prefix = f"{root}/" if root else ""
            for candidate in (f"{prefix}{base}.py", f"{prefix}{base}/__init__.py"):
                if self.exists(candidate):
                    return candidate
        return None


def first_party(root: Path, module_name: str = "") -> frozenset[str]:
    """The top-level module names an import sorter counts as the project's own (ruff's
    isort by default): the package of ``module_name`` (the module being changed) and the
    packages and modules the project's root, or its ``src/``, holds."""
    names = {module_name.split(".")[0]} if module_name else set()
    for folder in (root, root / "src"):
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            stem, dot, suffix = entry.partition(".")
            if stem.isidentifier() and (
                (not dot and os.path.isdir(os.path.join(folder, entry)))
                or (suffix in ("py", "pyi"))
            ):
                names.add(stem)
    return frozenset(names)


def parse_source(rel: str, source: bytes) -> cst.Module:
    """Parse with libcst, turning any failure into an :class:`InputError` with file and line."""
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        # libcst's line is often the one after the error (or 1 for tokenizer errors); when
        # Python's own compiler rejects the file too, its line and message are the exact ones
        line, message = exc.raw_line, exc.message
        try:
            compile(source, rel, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        except SyntaxError as py_exc:
            line, message = py_exc.lineno or line, py_exc.msg
        except (ValueError, UnicodeDecodeError):
            pass
        raise InputError(rel, line, f"cannot parse: {message}") from None
    except (SyntaxError, UnicodeDecodeError, LookupError) as exc:
        line = getattr(exc, "lineno", None)
        raise InputError(rel, line, f"cannot parse: {exc}") from None
