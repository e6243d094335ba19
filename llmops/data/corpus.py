"""Real text that exists offline on every machine: Python standard-library docstrings.

The docstrings are read at run time (never copied into the repository) from two
*disjoint* module lists: ``PRETRAIN_MODULES`` feed the built-in models' pretraining
corpus, ``TASK_MODULES`` feed the ``builtin:docstrings`` task (summarise a docstring
into its first sentence), so that evaluating on the task never means evaluating on
pretraining text. Order is fixed (module list order, then names sorted), so the same
Python version always yields the same corpus; a module missing from a given Python
build is skipped and the corpus sha256 recorded with each model tells them apart.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import inspect
import re
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

# Pure-Python modules present on CPython 3.10+ whose import has no side effects.
# Top-level packages never appear in both lists (checked below).
PRETRAIN_MODULES: tuple[str, ...] = (
    "argparse", "ast", "asyncio.base_events", "asyncio.events", "asyncio.futures", "asyncio.locks",
    "asyncio.queues", "asyncio.streams", "asyncio.tasks", "base64", "bdb", "calendar", "cmd", "code",
    "codecs", "collections", "concurrent.futures._base", "configparser", "contextlib", "copy", "csv",
    "dataclasses", "decimal", "difflib", "dis", "doctest", "email.message", "email.utils",
    "email.header", "enum", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools",
    "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "html.parser", "http.client",
    "http.cookiejar", "http.server", "imaplib", "inspect", "ipaddress", "json.decoder", "json.encoder",
    "locale", "logging", "logging.handlers", "lzma", "mailbox", "mimetypes", "multiprocessing.pool",
    "netrc", "numbers", "opcode", "optparse", "os", "pathlib", "pdb", "pickle", "pkgutil", "platform",
    "plistlib", "poplib", "posixpath", "pprint", "profile", "pstats", "queue", "quopri", "random",
    "re", "reprlib", "runpy", "sched", "secrets", "selectors", "shelve", "shlex", "shutil",
)
TASK_MODULES: tuple[str, ...] = (
    "smtplib", "socket", "socketserver", "sqlite3.dbapi2", "statistics", "string", "subprocess",
    "symtable", "sysconfig", "tabnanny", "tarfile", "tempfile", "textwrap", "threading", "timeit",
    "token", "tokenize", "trace", "traceback", "tracemalloc", "types", "typing", "unittest.case",
    "unittest.mock", "unittest.loader", "unittest.result", "unittest.runner", "unittest.suite",
    "urllib.parse", "urllib.request", "urllib.response", "uuid", "warnings", "wave", "weakref",
    "webbrowser", "wsgiref.handlers", "wsgiref.simple_server", "wsgiref.util", "xml.dom.minidom",
    "xml.etree.ElementTree", "xml.sax.handler", "xml.sax.saxutils", "xmlrpc.client", "xmlrpc.server",
    "zipapp", "zipfile", "zipimport", "zoneinfo", "colorsys", "compileall", "dbm", "graphlib",
    "importlib.abc", "importlib.metadata", "importlib.resources.abc", "importlib.util", "linecache",
    "modulefinder", "ntpath", "operator", "pickletools", "py_compile", "pyclbr", "pydoc", "rlcompleter",
    "ssl", "stat", "venv",
)


CORPUS_FORMAT = 1  # bump when extraction changes


def _top(name: str) -> str:
    return name.split(".", 1)[0]


assert not {_top(m) for m in PRETRAIN_MODULES} & {_top(m) for m in TASK_MODULES}, "module sets must be disjoint"


@dataclass(frozen=True)
class Docstring:
    """One cleaned docstring and the qualified name of the object it documents."""

    source: str  # e.g. "textwrap.TextWrapper.wrap"
    text: str


def _import(name: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except Exception:  # noqa: BLE001 - absent or unimportable on this Python build: skip
        return None


def _walk(module) -> Iterator[tuple[str, object]]:
    """Module, then its own classes/functions (sorted), then each class's own methods (sorted)."""
    modname = module.__name__
    yield modname, module
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != modname:
            continue
        if inspect.isclass(obj):
            yield f"{modname}.{name}", obj
            for attr, member in sorted(vars(obj).items()):
                if attr.startswith("_") and attr != "__init__":
                    continue
                func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                if isinstance(func, property):
                    func = func.fget
                if inspect.isfunction(func):
                    yield f"{modname}.{name}.{attr}", func
        elif inspect.isfunction(obj):
            yield f"{modname}.{name}", obj


def iter_docstrings(modules: Iterable[str]) -> Iterator[Docstring]:
    """Docstrings defined in `modules` (not inherited ones), in a deterministic order, deduplicated."""
    seen: set[str] = set()
    for modname in modules:
        module = _import(modname)
        if module is None:
            continue
        for qualname, obj in _walk(module):
            doc = obj.__doc__ if isinstance(obj.__doc__, str) else None
            if not doc:
                continue
            text = inspect.cleandoc(doc).strip()
            if len(text) < 20 or text in seen:
                continue
            seen.add(text)
            yield Docstring(qualname, text)


def _extract_all() -> dict[str, list[list[str]]]:
    """Both corpora, extracted in *this* process (used by the clean subprocess below)."""
    pretrain = list(iter_docstrings(PRETRAIN_MODULES))
    seen = {d.text for d in pretrain}
    task = [d for d in iter_docstrings(TASK_MODULES) if d.text not in seen]
    return {"pretrain": [[d.source, d.text] for d in pretrain], "task": [[d.source, d.text] for d in task]}


@lru_cache(maxsize=1)
def _clean_corpus() -> dict[str, tuple[Docstring, ...]]:
    """The corpora as a fresh interpreter sees them, cached on disk per Python version.

    Reading docstrings in the calling process is not reproducible: which attributes a
    module has depends on what else that process imported or patched (seen: two pytest
    workers extracted 1911 and 1910 docstrings, so two builds got different tokenizers).
    A fresh interpreter that imports nothing but this module sees the same stdlib every
    time; DDP ranks and the model builder then all read the same file.
    """
    import platform
    import subprocess
    import sys

    from llmops.settings import llmops_home

    key = hashlib.sha256(
        json.dumps([CORPUS_FORMAT, PRETRAIN_MODULES, TASK_MODULES, sys.version]).encode()
    ).hexdigest()[:12]
    path = llmops_home() / "corpus" / f"stdlib-docstrings-py{platform.python_version()}-{key}.json"
    if not path.exists():
        code = "import json, sys; from llmops.data.corpus import _extract_all; json.dump(_extract_all(), sys.stdout)"
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(out, encoding="utf-8")
        os.replace(tmp, path)  # atomic: concurrent writers produce identical content
    data = json.loads(path.read_text(encoding="utf-8"))
    return {k: tuple(Docstring(src, text) for src, text in v) for k, v in data.items()}


def pretrain_docstrings() -> tuple[Docstring, ...]:
    return _clean_corpus()["pretrain"]


def task_docstrings() -> tuple[Docstring, ...]:
    """Task docstrings, minus any text that also occurs in the pretraining corpus."""
    return _clean_corpus()["task"]


_SENTENCE_END = re.compile(r"(?<=[.!?])(?=\s)")


def first_sentence(text: str) -> str | None:
    """The first sentence of a docstring's first paragraph, or None if it has no clean one.

    The first paragraph is joined into one line; the sentence ends at the first ``.``,
    ``!`` or ``?`` followed by whitespace (or the paragraph end). Summaries that are
    too short or too long to be a summary are rejected.
    """
    paragraph = " ".join(text.split("\n\n", 1)[0].split())
    parts = _SENTENCE_END.split(paragraph, maxsplit=1)
    sentence = parts[0].strip()
    if not sentence.endswith((".", "!", "?")) or not 3 <= len(sentence.split()) <= 40:
        return None
    return sentence


def summarisation_pairs(docs: Iterable[Docstring], max_chars: int = 2000) -> list[dict[str, str]]:
    """(docstring → first sentence) records; docstrings that are only one sentence are skipped."""
    rows = []
    for d in docs:
        summary = first_sentence(d.text)
        if summary is None or len(d.text) > max_chars or len(d.text) < len(summary) + 20:
            continue
        rows.append({"prompt": d.text, "completion": summary, "source": d.source})
    return rows


def corpus_sha256(docs: Iterable[Docstring]) -> str:
    digest = hashlib.sha256()
    for d in docs:
        digest.update(d.source.encode() + b"\0" + d.text.encode() + b"\0")
    return digest.hexdigest()
