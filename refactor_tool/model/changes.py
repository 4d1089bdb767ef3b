"""A change to one file of the target, as a phase computes it, and its unified diff."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FileChange:
    path: str
    old: bytes | None  # None: the file is created
    new: bytes | None  # None: the file is deleted
    #: the codemods' tree of the new content and the bytes it prints, so that a later phase
    #: of the same run starts from it instead of parsing ``new`` again (kept only while
    #: ``new`` is still those bytes)
    tree: Any = field(default=None, repr=False, compare=False)
    tree_source: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def kind(self) -> str:
        if self.old is None:
            return "create"
        if self.new is None:
            return "delete"
        return "modify"

    def diff(self) -> str:
        return unified_diff(self.path, self.old, self.new)



def _decode(data: bytes) -> str:
    for encoding in ("utf-8", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")  # pragma: no cover


def unified_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """A unified diff ``git apply`` accepts (handles creation, deletion, missing final EOL)."""
    a = _decode(old).splitlines(keepends=True) if old is not None else []
    b = _decode(new).splitlines(keepends=True) if new is not None else []
    fromfile = f"a/{path}" if old is not None else "/dev/null"
    tofile = f"b/{path}" if new is not None else "/dev/null"
    out: list[str] = []
    for line in difflib.unified_diff(a, b, fromfile=fromfile, tofile=tofile):
        if line.startswith(("---", "+++")):
            out.append(line)
        elif not line.endswith("\n"):
            out.append(line + "\n\\ No newline at end of file\n")
        else:
            out.append(line)
    if not out:
        return ""
    header = f"diff --git a/{path} b/{path}\n"
    if old is None:
        header += "new file mode 100644\n"
    elif new is None:
        header += "deleted file mode 100644\n"
    return header + "".join(out)
