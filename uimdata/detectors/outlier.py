"""outlier: out-of-distribution rows: another language, another genre, or isolated.

Every signal is calibrated on the corpus itself (robust z = (s - median) / (1.4826 MAD)), so no
threshold depends on the embedding model or the corpus size:

* ``language``: how surprising a row's characters are under a character-trigram model of the
  whole corpus (mean negative log-likelihood per trigram, weighted by sqrt(length) so that a
  three-word row of rare Latin names does not outrank a sentence in German);
* ``language (cluster)``: the same score averaged over the row's k-means cluster, counted for rows
  that are themselves unusual (row z > 2): the groups that another language forms;
* ``genre``: co-training across two views. The 2 % of rows most isolated in the *embedding* view
  (robust z of the mean cosine distance to the k nearest neighbours, deep kNN OOD, plus the
  Mahalanobis distance to the nearest class mean) become pseudo-positives for a logistic regression
  over the *words* (hashed word uni- and bigrams with punctuation and row boundaries, TF-IDF), scored
  out of fold. Isolated rows of a clean corpus are isolated each for its own reason, so a
  held-out model cannot learn them and their scores stay low; rows of a mixed-in genre (jokes and
  quotations in a dictionary) share their wording, so the model learns it and recognises the whole
  group, not only its most isolated members. Runs on corpora of at least 1,000 rows; above
  100,000 rows the model is fitted on a fixed random sample and scores the rest, and the texts are
  tokenised in one worker process per core (joblib). A row that is itself isolated in the
  embedding view (embedding z > 1) is flagged from a genre z of 4 (``genre_isolated_z``): two
  views that agree need less evidence each;
* ``genre (cluster)``: a group mixed into the corpus, seen at the level of its k-means cluster: the
  cluster's rows are on average far out in the embedding (mean embedding z > 3: the sum of the kNN and
  Mahalanobis z-scores; no cluster of a clean corpus measured went above 2.6, docs/benchmarks.md) and
  their wording is recognised by the genre model (mean genre z > 2). Its rows whose own wording the
  model recognises (genre z > 2) are flagged. A long document of another genre among long
  technical documents is not unusual enough on its own (genre z 2-3.5), but forty of them together
  are; clusters that together hold more than 5 % of the corpus are a part of it and are not flagged;
* ``language (identified)``: the row's identified language (``samples.lang``, py3langid) is not the
  corpus's most common one, holds at most 2 % of the rows (``FOREIGN_MAX_SHARE``) and was identified
  with probability >= 0.9: the character statistics miss a page of German among long English
  documents, whose trigrams are common enough in a technical corpus (flagged whatever the z);
* ``isolation``: the sum of the two embedding z-scores and a character-trigram model of the row's
  *shape* (letters -> a/^, digits -> 0, punctuation kept): single rows far from everything.

Each signal is put on one scale (its robust z, shifted so that at the default ``z_threshold`` of 5
the thresholds are: language z > 4; cluster z > 3.5 with row z > 2; genre z > 5 (4 for isolated
rows); isolation z > 6; genre (cluster): each of its three margins > 0; another ``z_threshold``
moves them all by the same amount). The largest is the row's z: it is flagged when that exceeds
``z_threshold``,
``outlier_score`` = 2 (1 - Phi(z)) (lower = worse) and ``outlier_signal`` names the signal. Rows the
``corrupted`` detector flags are left to it (``defer_to``; their score stays, the summary counts them).
Measured in ``make bench`` against cleanlab Datalab (docs/benchmarks.md).
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
from scipy.stats import norm

from uimdata.detectors import register
from uimdata.detectors.base import Detector, DetectorResult, result_table
from uimdata.knn import neighbour_mean
from uimdata.stages.base import cpu_map
from uimdata.stats import robust_z

BUCKETS = 1 << 20
MAX_CHARS = 400
#: the genre signal's pseudo-positives: this share of the rows, the most isolated in embedding space
GENRE_SEED_FRAC = 0.02
#: corpora smaller than this skip the genre signal (too few pseudo-positives to learn from)
GENRE_MIN_ROWS = 1000
#: the genre model is fitted on at most this many rows (a fixed random sample); the rest are scored by it
GENRE_MAX_TRAIN = 100_000
#: the genre model reads the first this many characters of a text (its wording shows there; the cost of
#: tokenising stays bounded per row on long documents)
GENRE_MAX_CHARS = 2000
#: ``genre (cluster)``: a k-means cluster whose rows are, on average, this far out in the embedding (mean
#: embedding z) and this well recognised by the genre model (mean genre z); its rows that the genre model
#: recognises themselves (genre z above ``GENRE_CLUSTER_ROW_Z``) are flagged
GENRE_CLUSTER_EMBED_Z = 3.0
GENRE_CLUSTER_WORDS_Z = 2.0
GENRE_CLUSTER_ROW_Z = 2.0
#: ... unless such clusters hold more than this share of the corpus: then they are a part of it, not mixed in
GENRE_CLUSTER_MAX_SHARE = 0.05
#: ``language (identified)``: a row whose identified language (``samples.lang``) is not the corpus's main
#: one, holds at most this share of the corpus, and was identified with at least ``FOREIGN_MIN_CONF``
FOREIGN_MAX_SHARE = 0.02
FOREIGN_MIN_CONF = 0.9
# text shapes, in Rust's regex syntax (polars). Its \w and \d differ from Python's on combining marks,
# connector punctuation and No numbers, so Python's letters (L*, Nl, No) and digits (Nd) are spelt out:
# the shapes are those of Python's re with [^\W\d_A-Z]+ (lower-case letters), [A-Z]+ and \d+
_LOWER = r"[\p{L}\p{Nl}\p{No}&&[^A-Z]]+"
_UPPER = r"[A-Z]+"
_DIGITS = r"\p{Nd}+"


def _trigram_hashes(texts: list[str], max_chars: int, lower: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hashed (bigram, trigram) of every character trigram of ``texts``, the text each belongs to,
    and the distinct characters."""
    clipped = [" " + (t[:max_chars].lower() if lower else t[:max_chars]) + " " for t in texts]
    lengths = np.fromiter((len(t) for t in clipped), np.int64, len(clipped))
    codes = np.frombuffer("".join(clipped).encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = np.ones(len(codes), bool)
    ends = starts + lengths
    for off in (1, 2):  # trigrams must not cross a text boundary
        pos[np.clip(ends - off, 0, len(codes) - 1)] = False
    idx = np.flatnonzero(pos[:-2]) if len(codes) > 2 else np.zeros(0, np.int64)
    h2 = (codes[idx] * 1_000_003 + codes[idx + 1]) % BUCKETS
    h3 = (h2 * 1_000_033 + codes[idx + 2]) % BUCKETS
    owner = np.repeat(np.arange(len(clipped)), lengths - 2)  # a padded text of length L has L - 2 trigrams
    return h2, h3, owner, np.unique(codes)


def trigram_surprise(texts: list[str], max_chars: int = MAX_CHARS, lower: bool = True,
                     chunk: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Mean negative log-likelihood of each text's character trigrams under a smoothed trigram model
    P(c | two previous chars) estimated on all the texts (vectorised, hashed), and the trigram counts.
    Two passes over chunks of ``chunk`` texts (counts, then scores), so memory stays bounded: a chunk
    holds about 50 bytes per character of its texts (``max_chars`` each at most), 400 MB at the most
    for 20,000 texts; the answer does not depend on ``chunk``."""
    n3 = np.zeros(BUCKETS, np.int64)
    n2 = np.zeros(BUCKETS, np.int64)
    chars = np.zeros(0, np.int64)
    for start in range(0, len(texts), chunk):
        h2, h3, _, c = _trigram_hashes(texts[start:start + chunk], max_chars, lower)
        n3 += np.bincount(h3, minlength=BUCKETS)
        n2 += np.bincount(h2, minlength=BUCKETS)
        chars = np.union1d(chars, c)
    vocab = max(len(chars), 2)
    out = np.full(len(texts), np.nan)
    count = np.zeros(len(texts), np.int64)
    for start in range(0, len(texts), chunk):
        part = texts[start:start + chunk]
        h2, h3, owner, _ = _trigram_hashes(part, max_chars, lower)
        nll = -np.log((n3[h3] + 0.1) / (n2[h2] + 0.1 * vocab))
        total = np.bincount(owner, weights=nll, minlength=len(part))
        cnt = np.bincount(owner, minlength=len(part))
        out[start:start + len(part)] = np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)
        count[start:start + len(part)] = cnt
    fill = np.nanmedian(out) if np.isfinite(out).any() else 0.0
    return np.where(np.isnan(out), fill, out), count


def length_weighted_z(texts: list[str], lower: bool = True) -> np.ndarray:
    mean_nll, count = trigram_surprise(texts, lower=lower)
    return robust_z((mean_nll - np.median(mean_nll)) * np.sqrt(np.maximum(count, 1)))


def shapes(texts: list[str]) -> list[str]:
    """Each text's shape: its first MAX_CHARS characters with runs of digits -> 0, of A-Z -> ^ and of
    other letters -> a; punctuation and spacing kept. Vectorised with polars."""
    import polars as pl

    return (pl.Series(texts, dtype=pl.Utf8).str.slice(0, MAX_CHARS)
            .str.replace_all(_DIGITS, "0").str.replace_all(_UPPER, "^")
            .str.replace_all(_LOWER, "a").to_list())


def _word_features():  # noqa: ANN202
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=1 << 18, analyzer="word", token_pattern=r"[^\W\d_]+|\d+|[^\w\s]",
                             ngram_range=(1, 2), alternate_sign=False, norm=None, dtype=np.float32,
                             preprocessor=lambda t: "<s> " + t[:MAX_CHARS].lower() + " </s>")


def _hash_words(texts: list[str]):  # noqa: ANN202 - a scipy CSR matrix
    return _word_features().transform(texts)


def genre_z(texts: list[str], seed_score: np.ndarray, frac: float = GENRE_SEED_FRAC, folds: int = 5,
            max_train: int = GENRE_MAX_TRAIN, seed: int = 0, chunk: int = 100_000) -> np.ndarray:
    """Robust z of the out-of-fold logit of a logistic regression on word n-grams that tells the
    ``frac`` highest ``seed_score`` rows from the rest (see the module docstring). Above
    ``max_train`` rows the model is fitted on a fixed random sample (out of fold there) and its first
    fold model scores the other rows."""
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    n = len(texts)
    y = np.zeros(n, np.int64)
    y[np.argsort(-seed_score, kind="stable")[:max(int(frac * n), 10)]] = 1
    rng = np.random.default_rng(seed)
    train = np.arange(n) if n <= max_train else np.sort(rng.choice(n, max_train, replace=False))
    rest = np.setdiff1d(np.arange(n), train, assume_unique=True)

    def counts_of(rows: np.ndarray):  # noqa: ANN202 - hashed word counts of these rows, in worker processes
        heads = [texts[i][:GENRE_MAX_CHARS] for i in rows.tolist()]
        return sp.vstack(cpu_map(_hash_words, [heads[s:s + chunk] for s in range(0, len(heads), chunk)])).tocsr()

    counts = counts_of(train)
    tfidf = TfidfTransformer(sublinear_tf=True).fit(counts)
    x = tfidf.transform(counts)
    del counts
    logit = np.zeros(n)
    splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(train)), y[train])
    first = None
    for tr, te in splits:
        model = LogisticRegression(C=1.0, max_iter=500, solver="liblinear").fit(x[tr], y[train[tr]])
        logit[train[te]] = model.decision_function(x[te])
        if first is None:
            first = model
    # the other rows by the first fold model, so that their logits spread as the out-of-fold ones; a few
    # chunks at a time (their word counts are never all held at once)
    step = chunk * (os.cpu_count() or 1)
    for s in range(0, len(rest), step):
        part = rest[s:s + step]
        logit[part] = first.decision_function(tfidf.transform(counts_of(part)))
    return robust_z(logit)


def foreign_language(samples: pa.Table, max_share: float = FOREIGN_MAX_SHARE,
                     min_conf: float = FOREIGN_MIN_CONF) -> tuple[np.ndarray, list[str | None]]:
    """Rows identified (``samples.lang``, ``lang_conf``) with a language other than the corpus's most
    common one, whose language holds at most ``max_share`` of the rows, at probability >= ``min_conf``;
    and a reason for each. A samples table without ``lang`` gets no such row."""
    n = samples.num_rows
    if "lang" not in samples.column_names or not n:
        return np.zeros(n, bool), [None] * n
    import polars as pl

    df = pl.from_arrow(samples.select(["lang", "lang_conf"]))
    counts = df.drop_nulls("lang").group_by("lang").len()
    if counts.is_empty():
        return np.zeros(n, bool), [None] * n
    main = counts.sort(["len", "lang"], descending=[True, False]).row(0)
    share = dict(zip(counts["lang"].to_list(), (counts["len"] / n).to_list()))
    langs, confs = df["lang"].to_list(), df["lang_conf"].to_list()
    out = np.array([lg is not None and lg != main[0] and share[lg] <= max_share and (c or 0) >= min_conf
                    for lg, c in zip(langs, confs)], dtype=bool)
    why = [f"identified as '{lg}' (p={c:.2f}), a language py3langid guesses for {share[lg]:.1%} of the corpus, "
           f"and '{main[0]}' for {main[1] / n:.0%}: another language?" if f else None
           for lg, c, f in zip(langs, confs, out)]
    return out, why


def mahalanobis_to_means(x: np.ndarray, y: np.ndarray | None, reg: float = 1e-3) -> np.ndarray:
    """Squared Mahalanobis distance to the nearest class mean, shared covariance (rows with y < 0
    and corpora without labels use the global mean)."""
    x = np.asarray(x, dtype=np.float32)
    if y is None or (y >= 0).sum() < 2:
        groups = np.zeros(len(x), np.int64)
    else:
        groups = np.where(y >= 0, y, -1)
    classes = np.unique(groups[groups >= 0]) if (groups >= 0).any() else np.array([0])
    means = np.stack([x[groups == c].mean(axis=0) for c in classes])
    index = np.searchsorted(classes, np.clip(groups, classes[0], None))
    means = means.astype(np.float32)
    labelled = groups >= 0 if (groups >= 0).any() else np.ones(len(x), bool)
    cov = np.zeros((x.shape[1], x.shape[1]), np.float64)
    for start in range(0, len(x), 8192):  # covariance of the residuals, a block at a time
        block = slice(start, start + 8192)
        resid = (x[block] - means[index[block]])[labelled[block]]
        cov += resid.T.astype(np.float64) @ resid
    cov = cov / max(int(labelled.sum()), 1) + reg * np.eye(x.shape[1])
    prec = np.linalg.inv(cov).astype(np.float32)
    mm = np.einsum("ij,jk,ik->i", means, prec, means)[None, :]
    out = np.empty(len(x), np.float32)
    for start in range(0, len(x), 65536):  # a block of rows at a time
        xp = x[start:start + 65536] @ prec
        d = np.einsum("ij,ij->i", xp, x[start:start + 65536])[:, None] - 2 * xp @ means.T + mm
        out[start:start + 65536] = d.min(axis=1)
    return out


@register
class OutlierDetector(Detector):
    issue: ClassVar[str] = "outlier"
    description: ClassVar[str] = ("Out-of-distribution rows: another language (character statistics of the row "
                                  "or its cluster), another genre (a held-out word model of the rows most "
                                  "isolated in embedding space recognises it, alone or as a far-out cluster) or "
                                  "an isolated point, calibrated on the corpus itself.")
    extra_columns: ClassVar[dict[str, pa.DataType]] = {"outlier_signal": pa.string()}
    curate_rule: ClassVar[dict[str, Any]] = {"action": "drop"}
    curate_policies: ClassVar[dict[str, dict[str, Any]]] = {"conservative": {"action": "keep"}}
    tail_guard: ClassVar[tuple[str, ...]] = ("knn",)
    #: broken text is out of distribution too, but ``corrupted`` says what is wrong with it: a row it flags
    #: is left to it (a cluster of page chrome and encoded blobs is otherwise a far-out, recognisable group)
    defer_to: ClassVar[tuple[str, ...]] = ("corrupted",)
    example_columns: ClassVar[tuple[tuple[str, str], ...]] = (("signal", "outlier_signal"),)

    def __init__(self, z_threshold: float = 5.0, min_rows: int = 50, language_z: float = 4.0,
                 cluster_z: float = 3.5, cluster_row_z: float = 2.0, genre_z: float = 5.0,
                 isolation_z: float = 6.0, foreign_max_share: float = FOREIGN_MAX_SHARE,
                 foreign_min_conf: float = FOREIGN_MIN_CONF, genre_isolated_z: float | None = 4.0,
                 isolated_embed_z: float = 1.0, genre_cluster_embed_z: float = GENRE_CLUSTER_EMBED_Z,
                 genre_cluster_words_z: float = GENRE_CLUSTER_WORDS_Z, genre_cluster_row_z: float = GENRE_CLUSTER_ROW_Z,
                 genre_cluster_max_share: float = GENRE_CLUSTER_MAX_SHARE) -> None:
        self.z_threshold = z_threshold
        self.min_rows = min_rows
        #: each signal's own threshold at the default ``z_threshold`` (5); another ``z_threshold`` moves
        #: them all by the same amount
        self.language_z, self.cluster_z, self.cluster_row_z = language_z, cluster_z, cluster_row_z
        self.genre_z, self.isolation_z = genre_z, isolation_z
        self.foreign_max_share, self.foreign_min_conf = foreign_max_share, foreign_min_conf
        self.genre_isolated_z, self.isolated_embed_z = genre_isolated_z, isolated_embed_z
        self.genre_cluster_embed_z, self.genre_cluster_words_z = genre_cluster_embed_z, genre_cluster_words_z
        self.genre_cluster_row_z, self.genre_cluster_max_share = genre_cluster_row_z, genre_cluster_max_share

    def _genre_cluster(self, clusters: np.ndarray, z_embed: np.ndarray, z_genre: np.ndarray,
                       counted: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``genre (cluster)`` signal on the detector's scale (above 5 when the row's cluster has a mean
        embedding z above ``genre_cluster_embed_z`` and a mean genre z above ``genre_cluster_words_z``, and
        the row's own genre z is above ``genre_cluster_row_z``), and each row's cluster mean
        embedding z (for the reason). ``counted``: the rows the means and the share count (default all;
        the scan leaves out rows ``corrupted`` flagged, so a cluster of page chrome neither makes nor
        hides a group)."""
        w = np.ones(len(clusters)) if counted is None else counted.astype(np.float64)
        sizes = np.maximum(np.bincount(clusters, weights=w), 1e-9)
        mean_embed = (np.bincount(clusters, weights=z_embed * w) / sizes)[clusters]
        mean_genre = (np.bincount(clusters, weights=z_genre * w) / sizes)[clusters]
        margin = np.minimum.reduce([mean_embed - self.genre_cluster_embed_z, mean_genre - self.genre_cluster_words_z,
                                    z_genre - self.genre_cluster_row_z])
        in_group = (mean_embed > self.genre_cluster_embed_z) & (mean_genre > self.genre_cluster_words_z)
        if (in_group * w).sum() > self.genre_cluster_max_share * max(w.sum(), 1):  # a part of the corpus
            return np.full(len(clusters), -np.inf), mean_embed
        return margin + 5.0, mean_embed

    def skip_reason(self, ctx: Any) -> str | None:
        if ctx.n < self.min_rows:
            return f"needs at least {self.min_rows} rows to calibrate, the corpus has {ctx.n}"
        return None

    def detect(self, ctx: Any) -> DetectorResult:
        texts = ctx.texts
        g = ctx.graph
        knn = neighbour_mean(g.rows, 1.0 - g.cos)  # mean cosine distance to the present neighbours
        y = ctx.label_codes if ctx.classes else None
        z_embed = robust_z(knn) + robust_z(mahalanobis_to_means(ctx.embeddings, y))
        z_iso = robust_z(z_embed + length_weighted_z(shapes(texts), lower=False))
        z_lang = length_weighted_z(texts)
        clusters = ctx.cluster_ids
        sizes = np.bincount(clusters)
        z_cluster = robust_z((np.bincount(clusters, weights=z_lang) / np.maximum(sizes, 1))[clusters])
        genre = len(texts) >= GENRE_MIN_ROWS
        z_genre = genre_z(texts, z_embed) if genre else np.zeros(len(texts))
        broken = ctx.flagged("corrupted")
        z_gcluster, mean_embed = self._genre_cluster(clusters, z_embed, z_genre, None if broken is None else ~broken) \
            if genre else (np.full(len(texts), -np.inf), np.zeros(len(texts)))
        t = self.z_threshold
        raw = np.stack([z_lang, z_cluster, z_genre, z_iso, mean_embed])
        # each signal shifted so that its own threshold at the default z_threshold (5) lands on 5:
        # language 4, cluster 3.5 with row language 2, genre 5, isolation 6 (module docstring)
        stack = np.stack([z_lang + (5.0 - self.language_z),
                          np.minimum(z_cluster + (5.0 - self.cluster_z), z_lang + (5.0 - self.cluster_row_z)),
                          z_genre + (5.0 - self.genre_z), z_iso + (5.0 - self.isolation_z), z_gcluster])
        # a row that is itself isolated in the embedding (z_embed > isolated_embed_z) needs less evidence
        # from the word model: genre_isolated_z instead of genre_z
        iso_genre = np.full(len(texts), -np.inf)
        if self.genre_isolated_z is not None and genre:
            iso_genre = np.where(z_embed > self.isolated_embed_z, z_genre + (5.0 - self.genre_isolated_z), -np.inf)
            stack[2] = np.maximum(stack[2], iso_genre)
        empty = np.array([not x.strip() for x in texts])  # empty texts are the corrupted detector's business
        stack[:, empty] = -np.inf
        z = stack.max(axis=0)
        flagged = z > t
        which = stack.argmax(axis=0)
        own = raw[which, np.arange(len(texts))]  # the winning signal's own z, for the reason
        names = np.array(["language", "language (cluster)", "genre", "isolation", "genre (cluster)"])
        signal = np.where(flagged, names[which], None)
        why = {
            0: ("unlike the corpus' text (character statistics {:.1f} robust SDs off): another language or "
                "script, code or notation?"),
            1: ("in a cluster whose text is unlike the corpus' ({:.1f} robust SDs off): another language or a "
                "kind of text the corpus lacks?"),
            2: ("worded like a group of the corpus' most isolated rows, as a held-out model of their wording "
                "recognises ({:.1f} robust SDs): another genre or domain?"),
            3: "isolated and unusually written ({:.1f} robust SDs from typical): an outlier?",
            4: ("in a group of rows far from the rest of the corpus in the embedding ({:.1f} robust SDs on "
                "average) whose wording a held-out model recognises: another genre or domain mixed in?"),
        }
        isolated_genre = (which == 2) & (iso_genre >= stack[2])
        isolated_why = ("worded like a group of the corpus' most isolated rows, as a held-out model of their "
                        "wording recognises ({:.1f} robust SDs), and itself isolated in the embedding ({:.1f} "
                        "robust SDs): another genre or domain?")
        reasons = [isolated_why.format(zz, ze) if ig else why[int(w)].format(zz)
                   for w, zz, ig, ze in zip(which, own, isolated_genre, z_embed)]
        score = np.clip(2 * norm.sf(np.maximum(z, 0)), 0, 1)
        foreign, foreign_why = foreign_language(ctx.samples, self.foreign_max_share, self.foreign_min_conf)
        foreign &= ~empty
        if foreign.any():
            flagged = flagged | foreign
            signal = np.where(foreign, "language (identified)", signal)
            reasons = [fw if f else r for r, fw, f in zip(reasons, foreign_why, foreign)]
            score = np.where(foreign, np.minimum(score, 2 * norm.sf(t)), score)
            names = np.append(names, "language (identified)")
        extra: dict[str, Any] = {"z_threshold": self.z_threshold,
                                 "genre_signal": "on" if genre else f"off: needs at least {GENRE_MIN_ROWS} rows"}
        flagged, left_to = self.leave_to(ctx, flagged)  # rows corrupted flagged: score kept, no flag
        if left_to:
            extra["left_to"] = left_to
            signal = np.where(flagged, signal, None)
        table = result_table(self.issue, ctx.ids, flagged, score, reasons,
                             {"outlier_signal": pa.array(signal.tolist(), pa.string())})
        return DetectorResult(self.issue, table, {s: int((signal == s).sum()) for s in names.tolist()} | extra)
