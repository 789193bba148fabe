"""Message templates mined with Drain3, so that error messages differing only in their values
("stock for EGG-6 below reorder level" / "stock for LIME-12 below ...") are one issue.

Messages arrive already parameterised (grouping.parameterize masks numbers, ids, quoted values);
Drain3 then finds the remaining variable tokens by comparing messages of the same length whose
first tokens agree. A template is named by a hash of the message that founded its cluster: the
name never changes while the cluster's template text widens as more messages join it, and two
processes whose states differ can split a template between two names but never give one name to
two templates (Drain3's own cluster ids are counters, which would).

The state lives in AUTOFIX_HOME/drain3.json (Drain3's own snapshot format). `session()` takes a file
lock, reloads the state another process may have saved, and saves on the way out, so a follower
and an ingest running side by side never hand out one cluster id for two templates.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from drain3.drain import Drain, Node
from drain3.persistence_handler import PersistenceHandler
from drain3.template_miner import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

from pipeline.file_lock import exclusive

log = structlog.get_logger(__name__)

STATE_FILE = "drain3.json"
NAMES_FILE = "drain3-names.json"  # Drain3 cluster id -> the name it was given when it was founded
# The share of a message's tokens that must equal its template's (a template's <*> counts as equal:
# see _Drain). Drain3's 0.4 merges "failed to connect to <ip>" with "failed to parse file <x>"; 0.8
# keeps "stock for <x> above reorder level" apart from "... below reorder level".
SIMILARITY = 0.8


class _Snapshot(PersistenceHandler):  # type: ignore[misc]
    """Drain3's persistence port on one file, written atomically; saved only when asked."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save_state(self, state: bytes) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(state)
        os.replace(tmp, self.path)

    def load_state(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None


class _Drain(Drain):  # type: ignore[misc]
    """Drain whose similarity counts a template's <*> as matching: Drain3 counts it as a mismatch
    when it adds a message, so a template with several parameters (an SDK's logging template)
    could never take in the lines it formats at a threshold that keeps near misses apart."""

    def tree_search(self, root_node: Node, tokens: list[str], sim_th: float, include_params: bool) -> object:
        return super().tree_search(root_node, tokens, sim_th, True)


class _Miner(TemplateMiner):  # type: ignore[misc]
    def __init__(self, handler: PersistenceHandler | None, config: TemplateMinerConfig) -> None:
        super().__init__(None, config)
        self.drain = _Drain(
            sim_th=config.drain_sim_th, depth=config.drain_depth, max_children=config.drain_max_children,
            max_clusters=config.drain_max_clusters, extra_delimiters=config.drain_extra_delimiters,
            param_str=config.mask_prefix + "*" + config.mask_suffix,
            parametrize_numeric_tokens=config.parametrize_numeric_tokens,
        )
        self.persistence_handler = handler
        if handler is not None:
            self.load_state()

    def get_snapshot_reason(self, change_type: str, cluster_id: int) -> str | None:
        return None  # Templates.save decides when; Drain3 would rewrite the file per new cluster


def _config() -> TemplateMinerConfig:
    config = TemplateMinerConfig()
    config.drain_sim_th = SIMILARITY
    config.snapshot_compress_state = False
    config.parametrize_numeric_tokens = True
    return config


class Templates:
    """Names parameterised messages by their Drain3 cluster; state in `home`, or in memory."""

    def __init__(self, home: Path | None = None) -> None:
        self._path = home / STATE_FILE if home is not None else None
        self._miner, self._names = self._load()
        self._dirty = False
        self._loaded_stamp = self._stamp()

    def name(self, text: str) -> str:
        """The template name of a parameterised message, learning from it."""
        result = self._miner.add_log_message(text)
        cluster = int(result["cluster_id"])
        if cluster not in self._names:
            self._names[cluster] = hashlib.sha256(text.encode()).hexdigest()[:16]
        self._dirty = self._dirty or result["change_type"] != "none"
        return self._names[cluster]

    def template(self, name: str) -> str | None:
        """The current template text of the cluster called `name`."""
        for cluster, given in self._names.items():
            if given == name:
                found = self._miner.drain.id_to_cluster.get(cluster)
                return None if found is None else str(found.get_template())
        return None

    def __call__(self, text: str) -> str:
        return self.name(text)

    @contextmanager
    def session(self) -> Iterator[Templates]:
        """Exclusive use of the state file: reloaded if another process saved it, saved after."""
        if self._path is None:
            yield self
            return
        with exclusive(self._path.with_suffix(".lock")):
            if self._stamp() != self._loaded_stamp:
                (self._miner, self._names), self._dirty = self._load(), False
            yield self
            self.save()

    def save(self) -> None:
        if self._path is None or not self._dirty:
            return
        self._miner.save_state("batch")
        names = self._path.with_name(NAMES_FILE)
        names.with_suffix(".tmp").write_text(json.dumps({str(k): v for k, v in self._names.items()}))
        os.replace(names.with_suffix(".tmp"), names)
        self._dirty = False
        self._loaded_stamp = self._stamp()
        log.debug("templates.saved", path=str(self._path), clusters=len(self._miner.drain.clusters))

    def _load(self) -> tuple[TemplateMiner, dict[int, str]]:
        if self._path is None:
            return _Miner(None, _config()), {}
        miner = _Miner(_Snapshot(self._path), _config())
        try:
            stored = json.loads(self._path.with_name(NAMES_FILE).read_text())
        except FileNotFoundError:
            stored = {}
        return miner, {int(k): str(v) for k, v in stored.items()}

    def _stamp(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)
