"""The demo's corpus: every doc and source file under a root, indexed with SQLite FTS5 (bm25 ranking).

The ranking is SQLite's, not ours; this module only walks files and phrases queries.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Kind = Literal["doc", "code"]

DOC_SUFFIXES = frozenset({".md", ".rst", ".txt", ".adoc"})
CODE_SUFFIXES = frozenset(
    {".py", ".js", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".rb", ".sh", ".toml"}
)
SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "build"}
)
MAX_FILE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Hit:
    path: str
    score: float
    snippet: str


@dataclass
class Corpus:
    root: Path
    files: dict[Kind, list[str]] = field(default_factory=lambda: {"doc": [], "code": []})
    db: sqlite3.Connection = field(default_factory=lambda: sqlite3.connect(":memory:", check_same_thread=False))

    @classmethod
    def build(cls, root: Path) -> Corpus:
        corpus = cls(root.resolve())
        corpus.db.execute("CREATE VIRTUAL TABLE files USING fts5(kind UNINDEXED, path UNINDEXED, body)")
        for path in sorted(corpus._walk(corpus.root)):
            kind: Kind | None = (
                "doc" if path.suffix in DOC_SUFFIXES else "code" if path.suffix in CODE_SUFFIXES else None
            )
            if kind is None or path.stat().st_size > MAX_FILE_BYTES:
                continue
            relative = path.relative_to(corpus.root).as_posix()
            body = path.read_text("utf-8", errors="replace")
            corpus.db.execute("INSERT INTO files (kind, path, body) VALUES (?, ?, ?)", (kind, relative, body))
            corpus.files[kind].append(relative)
        corpus.db.commit()
        return corpus

    @staticmethod
    def _walk(root: Path) -> list[Path]:
        found: list[Path] = []
        stack = [root]
        while stack:
            directory = stack.pop()
            try:
                entries = list(directory.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and not entry.is_symlink():
                    if entry.name not in SKIP_DIRS and not entry.name.endswith(".egg-info"):
                        stack.append(entry)
                elif entry.is_file():
                    found.append(entry)
        return found

    def search(self, kind: Kind, query: str, limit: int) -> list[Hit]:
        """The best ``limit`` files of one kind for ``query``: all words if possible, else any."""
        words = re.findall(r"\w+", query)
        if not words:
            return []
        quoted = ['"' + word.replace('"', "") + '"' for word in words]
        for phrase in (" ".join(quoted), " OR ".join(quoted)):
            rows = self.db.execute(
                "SELECT path, bm25(files), snippet(files, 2, '[', ']', ' … ', 12) FROM files "
                "WHERE files MATCH ? AND kind = ? ORDER BY bm25(files) LIMIT ?",
                (f"body: ({phrase})", kind, limit),
            ).fetchall()
            if rows:
                return [Hit(path, -score, " ".join(snippet.split())) for path, score, snippet in rows]
        return []


def default_root() -> Path:
    """The project's own docs and source: the checkout when run from one, else the installed package."""
    package = Path(__file__).resolve().parents[1]
    checkout = package.parents[1]
    if (checkout / "README.md").exists() and (checkout / "pyproject.toml").exists():
        return checkout
    return package
