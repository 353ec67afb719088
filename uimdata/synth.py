"""Plant known defects into a text corpus: the ground truth behind the demo, the tests and the benchmarks.

Every function takes a polars DataFrame with an ``id`` and a ``text`` column (any other column, such as
``label``, is carried along) and a ``rng`` (a :class:`numpy.random.Generator` or a seed), and returns
``(new_df, truth_df)``:

* ``new_df`` holds every original row, in its original relative order, plus the planted rows inserted at
  random positions. A planted row is a copy of a random original row (so its ``label`` and other columns
  are real), with a fresh ``id`` that follows the corpus's own id pattern and a new ``text``.
* ``truth_df`` has one row per planted row, in ``new_df`` order, with the columns of :data:`TRUTH_SCHEMA`:
  ``id``, ``defect`` (one of :data:`DEFECTS`), ``kind`` and ``source_id`` (the id of the original that a
  duplicate copies; null for corrupted rows).

Guarantees: exact duplicates equal their source verbatim; near duplicates differ from their source and from
every other text in the corpus, with an Indel similarity of at least :data:`MIN_NEAR_SIMILARITY`; corrupted
texts are unique in the corpus. The same seed gives the same output.
"""

from __future__ import annotations

import base64
import difflib
import re
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from uimdata.stages.ingest import normalize

try:  # rapidfuzz is a project dependency; difflib is the fallback
    from rapidfuzz.distance import Indel as _Indel
except ImportError:  # pragma: no cover
    _Indel = None

RngLike = np.random.Generator | int | None

DEFECTS = ("exact_duplicate", "near_duplicate", "corrupted")
#: the edit operations of a near duplicate; a copy's ``kind`` joins the ones applied with "+"
NEAR_EDITS = ("word_deletion", "word_insertion", "synonym", "typo", "casing", "punctuation",
              "whitespace", "suffix")
CORRUPTION_KINDS = ("mojibake", "markup", "boilerplate", "stub", "repetition", "symbols",
                    "replacement_chars")
MIN_NEAR_SIMILARITY = 0.85
#: near-duplicate sources are drawn from texts at least this long when there are enough of them
MIN_NEAR_SOURCE_CHARS = 40
EXACT_KIND = "verbatim"

_MAX_TRIES = 40


def similarity(a: str, b: str) -> float:
    """Normalised Indel similarity in [0, 1] (rapidfuzz's ``fuzz.ratio`` / 100, difflib's ratio)."""
    if _Indel is not None:
        return float(_Indel.normalized_similarity(a, b))
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()  # pragma: no cover


def truth_schema(id_dtype: pl.DataType = pl.Utf8) -> dict[str, pl.DataType]:
    return {"id": id_dtype, "defect": pl.Utf8, "kind": pl.Utf8, "source_id": id_dtype}


TRUTH_SCHEMA = truth_schema()


def _rng(rng: RngLike) -> np.random.Generator:
    return np.random.default_rng(rng)


def _pick(rng: np.random.Generator, seq: Sequence):
    return seq[int(rng.integers(len(seq)))]


# ----------------------------------------------------------------------------------------- near edits

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _r, _row in enumerate(_KEYBOARD_ROWS):
    for _c, _ch in enumerate(_row):
        near = {_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)}
        for _rr in (_r - 1, _r + 1):
            if 0 <= _rr < len(_KEYBOARD_ROWS):
                other = _KEYBOARD_ROWS[_rr]
                near.update(other[j] for j in (_c - 1, _c, _c + 1) if 0 <= j < len(other))
        _NEIGHBOURS[_ch] = "".join(sorted(near))

# "synonym-like" substitutes: close enough that the copy still says the same thing
_SYNONYMS = {
    "large": "big", "big": "large", "small": "little", "little": "small", "person": "individual",
    "people": "persons", "used": "utilized", "use": "usage", "having": "with", "make": "create",
    "made": "created", "usually": "typically", "especially": "particularly", "often": "frequently",
    "very": "highly", "quickly": "rapidly", "begin": "start", "start": "begin", "end": "finish",
    "that": "which", "which": "that", "or": "and/or", "and": "&", "something": "sth",
    "someone": "somebody", "somebody": "someone", "relating": "pertaining", "related": "connected",
    "containing": "including", "part": "portion", "act": "action", "state": "condition",
    "quality": "property", "kind": "type", "type": "kind", "sort": "kind", "area": "region",
    "region": "area", "become": "get", "cause": "make", "give": "provide", "move": "shift",
    "place": "put", "show": "display", "tiny": "small", "tall": "high", "high": "tall",
    "group": "set", "various": "several", "several": "various", "found": "located", "native": "indigenous",
    "genus": "group", "family": "clan", "plant": "herb", "tree": "shrub", "water": "H2O",
    "body": "frame", "also": "too", "about": "around", "around": "about", "before": "prior to",
    "without": "w/o", "with": "w/", "between": "among", "among": "between", "into": "in",
    "having a": "with a", "especially of": "particularly of", "one": "1", "two": "2", "three": "3",
    "characterized": "marked", "marked": "characterized", "usual": "typical", "typical": "usual",
}
_SYNONYM_RE = re.compile(r"\b(" + "|".join(sorted(map(re.escape, _SYNONYMS), key=len, reverse=True))
                         + r")\b", re.IGNORECASE)
_FILLERS = ("the", "a", "very", "also", "really", "just", "an")
_SUFFIXES = (" (see also)", ".", " etc.", " [1]", " ...", " (rare)", " (informal)", " (n.)", "!")


def _edit_typo(t: str, rng: np.random.Generator) -> str | None:
    words = list(re.finditer(r"[A-Za-z]{3,}", t))
    if not words:
        return None
    m = _pick(rng, words)
    i = int(rng.integers(m.start(), m.end() - 1))
    op = int(rng.integers(4))
    ch = t[i]
    nb = _NEIGHBOURS.get(ch.lower(), "e")
    sub = _pick(rng, nb)
    sub = sub.upper() if ch.isupper() else sub
    if op == 0:  # swap adjacent
        if t[i] == t[i + 1]:
            return None
        return t[:i] + t[i + 1] + t[i] + t[i + 2:]
    if op == 1:  # delete
        return t[:i] + t[i + 1:]
    if op == 2:  # insert a neighbouring key (or double the letter)
        ins = ch if rng.random() < 0.3 else sub
        return t[:i + 1] + ins + t[i + 1:]
    return t[:i] + sub + t[i + 1:]  # substitute


def _edit_word_deletion(t: str, rng: np.random.Generator) -> str | None:
    words = list(re.finditer(r"\S+", t))
    if len(words) < 5:
        return None
    j = int(rng.integers(2, len(words)))
    return t[:words[j - 1].end()] + t[words[j].end():]


def _edit_word_insertion(t: str, rng: np.random.Generator) -> str | None:
    words = list(re.finditer(r"\S+", t))
    if len(words) < 2:
        return None
    j = int(rng.integers(1, len(words)))
    m = words[j]
    if rng.random() < 0.5:  # duplicate a word: "of the the"
        return t[:m.end()] + " " + m.group() + t[m.end():]
    return t[:m.start()] + _pick(rng, _FILLERS) + " " + t[m.start():]


def _edit_synonym(t: str, rng: np.random.Generator) -> str | None:
    hits = list(_SYNONYM_RE.finditer(t))
    if not hits:
        return None
    m = _pick(rng, hits)
    word = m.group()
    sub = _SYNONYMS[word.lower()]
    if word[0].isupper():
        sub = sub[0].upper() + sub[1:]
    return t[:m.start()] + sub + t[m.end():]


def _edit_casing(t: str, rng: np.random.Generator) -> str | None:
    if rng.random() < 0.5 and t[:1].isalpha():
        first = t[0].lower() if t[0].isupper() else t[0].upper()
        return first + t[1:]
    words = list(re.finditer(r"[A-Za-z]{2,}", t))
    if not words:
        return None
    m = _pick(rng, words)
    w = m.group()
    new = _pick(rng, (w.capitalize(), w.upper(), w.lower()))
    if new == w:
        new = w.upper() if w != w.upper() else w.lower()
    return t[:m.start()] + new + t[m.end():]


def _edit_punctuation(t: str, rng: np.random.Generator) -> str | None:
    options: list[Callable[[], str]] = []
    if t[-1:].isalnum() or t[-1:] == ")":
        options.append(lambda: t + _pick(rng, (".", ";", "!")))
    if t[-1:] in ".;,!":
        options.append(lambda: t[:-1])
    colon = t.find(": ")
    if colon > 0:
        options.append(lambda: t[:colon] + _pick(rng, (" -", " :", ";", " --", ",")) + t[colon + 1:])
    commas = [m.start() for m in re.finditer(r",", t)]
    if commas:
        c = _pick(rng, commas)
        options.append(lambda: t[:c] + t[c + 1:])
    spaces = [m.start() for m in re.finditer(r"(?<=[a-z]) (?=[a-z])", t)]
    if spaces:
        s = _pick(rng, spaces)
        options.append(lambda: t[:s] + "," + t[s:])
    if not options:
        return None
    return _pick(rng, options)()


def _edit_whitespace(t: str, rng: np.random.Generator) -> str | None:
    spaces = [m.start() for m in re.finditer(" ", t)]
    if not spaces or rng.random() < 0.15:
        return t + " " if rng.random() < 0.5 else " " + t
    s = _pick(rng, spaces)
    return t[:s] + _pick(rng, ("  ", "   ", " \t")) + t[s + 1:]


def _edit_suffix(t: str, rng: np.random.Generator) -> str | None:
    return t + _pick(rng, _SUFFIXES)


_EDIT_FUNCS: dict[str, Callable[[str, np.random.Generator], str | None]] = {
    "typo": _edit_typo, "word_deletion": _edit_word_deletion, "word_insertion": _edit_word_insertion,
    "synonym": _edit_synonym, "casing": _edit_casing, "punctuation": _edit_punctuation,
    "whitespace": _edit_whitespace, "suffix": _edit_suffix,
}
_EDIT_WEIGHTS = np.array([1.5, 1.5, 1.5, 3.0, 1.0, 1.0, 0.8, 0.8])  # in NEAR_EDITS order
_EDIT_WEIGHTS /= _EDIT_WEIGHTS.sum()
_N_EDITS_P = np.array([0.45, 0.35, 0.20])


def _apply_edits(text: str, names: Sequence[str], rng: np.random.Generator) -> str | None:
    """Apply the edits in :data:`NEAR_EDITS` order (deletion before insertion, punctuation before suffix),
    so that no edit can undo another; None when one of them is not applicable."""
    new, seen = text, [text]
    for name in sorted(names, key=NEAR_EDITS.index):
        out = _EDIT_FUNCS[name](new, rng)
        if out is None or out in seen:
            return None
        new = out
        seen.append(out)
    return new


def near_duplicate_text(text: str, rng: RngLike = None, n_edits: int | None = None) -> tuple[str, str] | None:
    """One near-duplicate of ``text``: 1-3 small edits; returns ``(new_text, kind)`` or None on failure.

    The copy differs from ``text`` after normalisation (see :func:`uimdata.stages.ingest.normalize`),
    so it is never an exact duplicate. ``kind`` names the edits applied, in :data:`NEAR_EDITS` order, joined by "+"; the result differs from
    ``text`` and keeps an Indel similarity >= :data:`MIN_NEAR_SIMILARITY` to it.
    """
    rng = _rng(rng)
    k = int(n_edits or rng.choice(3, p=_N_EDITS_P) + 1)
    order = rng.choice(len(NEAR_EDITS), size=len(NEAR_EDITS), replace=False, p=_EDIT_WEIGHTS)
    chosen: list[str] = []
    result = None
    for e in order:
        if len(chosen) == k:
            break
        trial = [*chosen, NEAR_EDITS[int(e)]]
        out = _apply_edits(text, trial, rng)
        # an edit that only changes case or whitespace makes an exact duplicate (same normalised text)
        if out is None or normalize(out) == normalize(text) or similarity(text, out) < MIN_NEAR_SIMILARITY:
            continue
        chosen, result = trial, out
    if result is None:
        return None
    return result, "+".join(sorted(chosen, key=NEAR_EDITS.index))


# ----------------------------------------------------------------------------------------- corruption

_ACCENTED = ("café", "naïve", "résumé", "façade", "über", "señor", "déjà vu", "piñata", "jalapeño",
             "crème brûlée", "Zürich", "São Paulo", "Ångström", "fiancée", "doppelgänger", "Málaga",
             "Bogotá", "coöperate", "Pokémon", "smörgåsbord", "Ørsted", "garçon", "entrée", "Köln",
             "mañana", "protégé", "soirée", "tête-à-tête", "Montréal", "Gödel", "Dvořák")
_CURLY = (("“", "”"), ("‘", "’"), ("«", "»"), ("„", "“"))
_CP1252 = [bytes([b]).decode("cp1252", errors="replace") for b in range(256)]
_CP1252 = [c if c != "\ufffd" else chr(b) for b, c in enumerate(_CP1252)]  # undefined bytes: latin-1


def mojibake(text: str) -> str:
    """Encode as UTF-8 and decode as Windows-1252 (undefined bytes fall back to Latin-1), as a
    mis-configured pipeline does: "café" -> "cafÃ©", "don’t" -> "donâ€™t"."""
    return "".join(_CP1252[b] for b in text.encode("utf-8"))


def _word_boundaries(t: str) -> list[int]:
    return [0] + [m.end() for m in re.finditer(r" ", t)]


def _fancify(t: str, rng: np.random.Generator) -> str:
    """Typographic text as a word processor writes it: curly quotes, dashes, accented words."""
    t = re.sub(r"`([^`']*)'", "‘\\1’", t).replace("'", "’")
    t = re.sub(r'"([^"]*)"', "“\\1”", t).replace(" -- ", " — ")
    fancy = any(ord(c) >= 0xC0 for c in t)
    n_inserts = int(rng.integers(0 if fancy else 1, 3))
    for _ in range(n_inserts):
        op = int(rng.integers(4))
        if op <= 1:  # an accented word at a word boundary
            pos = _pick(rng, _word_boundaries(t))
            t = t[:pos] + _pick(rng, _ACCENTED) + " " + t[pos:]
        elif op == 2:  # a word in curly quotes
            words = list(re.finditer(r"[A-Za-z]{3,}", t))
            if words:
                m = _pick(rng, words)
                lq, rq = _pick(rng, _CURLY)
                t = t[:m.start()] + lq + m.group() + rq + t[m.end():]
            else:
                t = t + " — " + _pick(rng, _ACCENTED)
        else:  # a dash or an ellipsis
            t = t.replace(": ", _pick(rng, (" — ", " – ", ": … ")), 1) if ": " in t else t + "…"
    if not any(ord(c) >= 0xC0 for c in t):
        t = t + " " + _pick(rng, _ACCENTED)
    return t


def _corrupt_mojibake(t: str, rng: np.random.Generator) -> str:
    out = mojibake(_fancify(t, rng))
    if rng.random() < 0.2:  # double encoding happens too: "Ã" -> "ÃƒÂ"
        out = mojibake(out)
    return out


_HOSTS = ("example", "news-daily", "shopmart", "bestdeals", "myblog", "wiki-info", "techcrunchy",
          "recipes4u", "forum", "cdn", "static", "portal", "travelguide", "healthtips")
_TLDS = ("com", "net", "org", "info", "co.uk", "io", "de", "biz")
_CLASSES = ("content", "post-body", "entry", "main", "article-text", "col-md-8", "field-item", "desc",
            "text-block", "wrapper", "row", "card-body")


def _site(rng: np.random.Generator) -> str:
    return f"{_pick(rng, ('www.', '', 'm.'))}{_pick(rng, _HOSTS)}.{_pick(rng, _TLDS)}"


def _token(rng: np.random.Generator, n: int = 6) -> str:
    return "".join(_pick(rng, "abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


_MARKUP_WRAPPERS = (
    "<p>{t}</p>",
    '<div class="{cls}"><span>{t}</span></div>',
    "<html><head><title>{w}</title></head><body><p>{t}</p></body></html>",
    "{t}<br/><br/>",
    "<br>{t}<br>",
    '<script type="text/javascript">var {v} = document.getElementById("{id}");</script>{t}',
    "<script>window.dataLayer = window.dataLayer || [];</script>\n{t}",
    "<!-- {id} -->{t}<!-- /{id} -->",
    '<a href="https://{site}/{path}">{t}</a>',
    "<ul><li>{t}</li></ul>",
    '<tr><td class="{cls}">{t}</td></tr>',
    "<style>.{cls}{{color:#{hex};margin:0}}</style><p>{t}</p>",
    "<h2>{t}</h2>",
    '<img src="/{path}.png" alt="{w}">{t}',
    '<div id="{id}">{t}&nbsp;&raquo;</div>',
    '<span style="font-weight:bold">{t}</span>',
    "<table><tr><td>{t}</td></tr></table>",
    '<iframe src="https://{site}/embed/{id}"></iframe>{t}',
    "{t} <a href='/{path}'>Read more &raquo;</a>",
)
_INLINE_TAGS = ("b", "i", "em", "strong", "u", "span", "code", "small")
_ENTITIES = (("'", "&#39;"), ('"', "&quot;"), ("&", "&amp;"), (" ", "&nbsp;"), (" - ", " &mdash; "))


def _corrupt_markup(t: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.5:  # a word in an inline tag
        words = list(re.finditer(r"[A-Za-z]{3,}", t))
        if words:
            m = _pick(rng, words)
            tag = _pick(rng, _INLINE_TAGS)
            t = f"{t[:m.start()]}<{tag}>{m.group()}</{tag}>{t[m.end():]}"
    if rng.random() < 0.4:  # entities instead of characters
        src, ent = _pick(rng, _ENTITIES)
        t = t.replace(src, ent, int(rng.integers(1, 4)))
    words = re.findall(r"[A-Za-z]{3,}", t) or ["page"]
    for _ in range(int(rng.integers(1, 3))):
        t = _pick(rng, _MARKUP_WRAPPERS).format(
            t=t, cls=_pick(rng, _CLASSES), w=_pick(rng, words), v="v" + _token(rng, 3), id=_token(rng, 8),
            site=_site(rng), path="/".join(_token(rng, int(rng.integers(3, 9))) for _ in range(2)),
            hex=_token(rng, 6))
    return t


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_SECTIONS = ("News", "Blog", "Products", "Home & Garden", "Health", "Sports", "Archive", "Tech", "Forum")
# the footer lines that give boilerplate away; every boilerplate text has at least one
_BOILER_STRONG = (
    "Click here to subscribe to our newsletter.",
    "Subscribe to our newsletter for the latest updates.",
    "Sign up for our newsletter and get {pct}% off your first order.",
    "All rights reserved.",
    "© {year} {site}. All rights reserved.",
    "Copyright © {year} {brand} Inc. All Rights Reserved.",
    "Copyright {year}-{year2} {brand}",
    "Privacy Policy | Terms of Use",
    "Privacy Policy | Terms of Service | Cookie Policy",
    "Terms & Conditions | Privacy | Sitemap",
    "We use cookies to improve your experience. By continuing to browse, you agree to our use of cookies.",
    "This website uses cookies. Accept all cookies?",
    "By using this site you agree to our Terms and Privacy Policy.",
    "Unsubscribe | Manage preferences | View in browser",
)
_BOILER_OTHER = (
    "Follow us on Facebook, Twitter and Instagram.",
    "Share this: Facebook Twitter Email Print",
    "Powered by WordPress.",
    "Back to top",
    "Contact us | About us | Careers | Advertise",
    "Read more »",
    "Home > {section} > {section2}",
    "Skip to main content",
    "Log in | Register",
    "Loading comments...",
    "You must be logged in to post a comment.",
    "Related posts:",
    "Leave a reply. Your email address will not be published.",
    "Page {p} of {q}",
    "Posted by admin on {month} {day}, {year}",
    "Tags: {section}, {section2}",
    "Previous article | Next article",
    "Download our app on the App Store and Google Play.",
    "Questions? Call us at 1-800-{n3}-{n4}.",
)
_BOILER_SEPS = (" ", " | ", "\n", " · ", " - ", "  ")


def _corrupt_boilerplate(t: str, rng: np.random.Generator) -> str:  # noqa: ARG001
    n_other = int(rng.integers(0, 4))
    n_strong = int(rng.integers(1, 3))
    strong = rng.choice(len(_BOILER_STRONG), size=n_strong, replace=False)
    other = rng.choice(len(_BOILER_OTHER), size=n_other, replace=False)
    lines = [_BOILER_STRONG[i] for i in strong] + [_BOILER_OTHER[i] for i in other]
    lines = [lines[i] for i in rng.permutation(len(lines))]
    year = int(rng.integers(1998, 2025))
    brand = _pick(rng, _HOSTS).replace("-", " ").title()
    text = _pick(rng, _BOILER_SEPS).join(lines)
    return text.format(
        pct=_pick(rng, (5, 10, 15, 20, 25)), year=year, year2=year + int(rng.integers(1, 8)),
        site=_site(rng), brand=brand, section=_pick(rng, _SECTIONS), section2=_pick(rng, _SECTIONS),
        p=int(rng.integers(1, 4)), q=int(rng.integers(4, 40)), month=_pick(rng, _MONTHS),
        day=int(rng.integers(1, 29)), n3=int(rng.integers(200, 999)), n4=int(rng.integers(1000, 9999)))


_STUBS = ("ok", "OK", "n/a", "N/A", "...", "asdf", "TBD", "tbd", "-", "--", "?", "null", "None", "NaN",
          "test", "todo", "TODO", "xxx", "lorem ipsum", "placeholder", "untitled", "no description",
          "(empty)", "[deleted]", "[removed]", "see above", "same", "idk", "qwerty", "abc", "1", "0", ".",
          "na", "nil", "empty", "tmp", "fixme", "<blank>", "none", "?!", "--- ", "test 123", "Lorem",
          "sdfsdf", "aaa", "hi", "yes", "no", "...", "(none)", "TBA", "WIP", "draft", "x", "#N/A")


def _corrupt_stub(t: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.35:  # a lone word out of the source
        words = [w for w in re.findall(r"[A-Za-z]{3,20}", t)]
        if words:
            w = _pick(rng, words)
            return _pick(rng, (w, w.lower(), w.capitalize(), w + ".", w.upper()))
    return _pick(rng, _STUBS)


_SPAM = ("buy cheap pills", "click here", "free money", "best price guaranteed", "make money fast",
         "hot singles near you", "limited offer", "win a free iphone", "cheap viagra", "lol",
         "follow for follow", "subscribe now", "casino bonus", "work from home", "100% free",
         "discount code", "like and share", "visit our website", "replica watches", "earn $$$ online")
_REP_SEPS = (" ", ", ", "! ", " - ", "... ", " | ", "\n", "!!! ")


def _corrupt_repetition(t: str, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.1:  # a character run: "aaaaaaaa..." / "!!!!!!!!..."
        ch = _pick(rng, "a!.?ho-=*zx")
        return ch * int(rng.integers(30, 150))
    if r < 0.55:
        phrase = _pick(rng, _SPAM)
    else:  # a word or phrase of the source
        words = re.findall(r"[A-Za-z]+", t) or ["spam"]
        k = int(rng.integers(1, 4))
        i = int(rng.integers(0, max(1, len(words) - k + 1)))
        phrase = " ".join(words[i:i + k])
    if rng.random() < 0.5:
        phrase = phrase.upper()
    sep = _pick(rng, _REP_SEPS)
    if rng.random() < 0.3:  # the spam follows real text
        n = max(12, 2 * len(t.split())) + int(rng.integers(0, 10))
        return t + " " + sep.join([phrase] * n)
    return sep.join([phrase] * int(rng.integers(6, 40)))


_SYMBOL_CHARS = "#$%@!&*^~|\\/<>{}[]+=-;:?.,`'\"()"


def _symbol_run(rng: np.random.Generator) -> str:
    n = int(rng.integers(6, 40))
    idx = rng.integers(0, len(_SYMBOL_CHARS), size=n)
    return "".join(_SYMBOL_CHARS[i] for i in idx)


def _b64_blob(rng: np.random.Generator) -> str:
    blob = base64.b64encode(rng.bytes(int(rng.integers(24, 180)))).decode("ascii")
    if rng.random() < 0.25:
        blob = _pick(rng, ("data:image/png;base64,", "data:application/octet-stream;base64,",
                           "base64:")) + blob
    return blob


def _hex_dump(rng: np.random.Generator) -> str:
    n = int(rng.integers(6, 30))
    b = rng.bytes(n)
    if rng.random() < 0.5:
        return " ".join(f"0x{x:02x}" for x in b)
    return " ".join(b[i:i + 2].hex() for i in range(0, n, 2))


def _digit_noise(rng: np.random.Generator) -> str:
    parts = [str(int(x)) for x in rng.integers(0, 10 ** rng.integers(1, 7, size=int(rng.integers(5, 25))))]
    return _pick(rng, (" ", ",", ";", "  ", "|")).join(parts)


def _corrupt_symbols(t: str, rng: np.random.Generator) -> str:  # noqa: ARG001
    segs = [(_symbol_run if rng.random() < 0.5 else _b64_blob)(rng)]  # the guaranteed one
    for _ in range(int(rng.integers(0, 3))):
        segs.append(_pick(rng, (_symbol_run, _b64_blob, _hex_dump, _digit_noise))(rng))
    segs = [segs[i] for i in rng.permutation(len(segs))]
    return _pick(rng, (" ", "\n", "", " ... ")).join(segs)


def _corrupt_replacement_chars(t: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.4:  # accented words whose bytes got lost: "caf\ufffd"
        pos = _pick(rng, _word_boundaries(t))
        t = t[:pos] + _pick(rng, _ACCENTED) + " " + t[pos:]
        t = "".join("\ufffd" * int(rng.integers(1, 3)) if ord(c) > 127 else c for c in t)
    letters = [m.start() for m in re.finditer(r"[^\s]", t)]
    k = min(len(letters), int(rng.integers(2, max(3, len(t) // 12))))
    chosen = set(rng.choice(len(letters), size=k, replace=False).tolist()) if k else set()
    chars = list(t)
    for j in sorted(chosen):
        chars[letters[j]] = "\ufffd" * int(rng.choice((1, 1, 2, 3)))
    out = "".join(chars)
    if "\ufffd" not in out:
        out = out + "\ufffd"
    return out


_CORRUPT_FUNCS: dict[str, Callable[[str, np.random.Generator], str]] = {
    "mojibake": _corrupt_mojibake, "markup": _corrupt_markup, "boilerplate": _corrupt_boilerplate,
    "stub": _corrupt_stub, "repetition": _corrupt_repetition, "symbols": _corrupt_symbols,
    "replacement_chars": _corrupt_replacement_chars,
}


def corrupt_text(text: str, kind: str, rng: RngLike = None) -> str:
    """A corrupted text of ``kind`` (one of :data:`CORRUPTION_KINDS`), derived from ``text`` where the kind
    keeps some of it (mojibake, markup, replacement characters, some repetitions and stubs)."""
    if kind not in _CORRUPT_FUNCS:
        raise ValueError(f"unknown corruption kind {kind!r}; expected one of {CORRUPTION_KINDS}")
    return _CORRUPT_FUNCS[kind](text, _rng(rng))


# ----------------------------------------------------------------------------------------- planning

class _Plan:
    """New rows to insert: source row index, text, defect, kind, and a label that overrides the source's
    (a donor's label) or None."""

    def __init__(self) -> None:
        self.src: list[int] = []
        self.text: list[str] = []
        self.defect: list[str] = []
        self.kind: list[str] = []
        self.label: list = []

    def add(self, src: int, text: str, defect: str, kind: str, label=None) -> None:
        self.src.append(src)
        self.text.append(text)
        self.defect.append(defect)
        self.kind.append(kind)
        self.label.append(label)


def _check(df: pl.DataFrame) -> None:
    missing = [c for c in ("id", "text") if c not in df.columns]
    if missing:
        raise ValueError(f"plant: the DataFrame needs columns 'id' and 'text'; missing {missing}")


def _valid_rows(texts: list[str | None]) -> np.ndarray:
    return np.array([i for i, t in enumerate(texts) if t], dtype=np.int64)


def _sample(rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if len(pool) == 0:
        raise ValueError("plant: no row with a non-empty text to copy")
    return rng.choice(pool, size=n, replace=n > len(pool))


def _plan_exact(plan: _Plan, texts: list, pool: np.ndarray, n: int, rng: np.random.Generator) -> None:
    for i in _sample(rng, pool, n):
        plan.add(int(i), texts[i], "exact_duplicate", EXACT_KIND)


def _plan_near(plan: _Plan, texts: list, pool: np.ndarray, n: int, rng: np.random.Generator,
               taken: set[str]) -> None:
    if n == 0:
        return
    long_pool = pool[[len(texts[i]) >= MIN_NEAR_SOURCE_CHARS for i in pool]] if len(pool) else pool
    if len(long_pool) >= n:
        pool = long_pool
    sources = list(_sample(rng, pool, n))
    made = 0
    while made < n:
        i = int(sources[made]) if made < len(sources) else int(rng.choice(pool))
        src = texts[i]
        for _ in range(_MAX_TRIES):
            out = near_duplicate_text(src, rng)
            if out is not None and out[0] not in taken:
                taken.add(out[0])
                plan.add(i, out[0], "near_duplicate", out[1])
                made += 1
                break
        else:  # this source resists editing (too short?): draw another one
            if made < len(sources):
                sources[made] = int(rng.choice(pool))


def _balanced_kinds(rng: np.random.Generator, n: int, kinds: Sequence[str]) -> list[str]:
    base = [kinds[i] for i in rng.permutation(len(kinds))]
    out = [base[i % len(base)] for i in range(n)]
    return [out[i] for i in rng.permutation(n)]


Donors = pl.DataFrame | Sequence[str] | None


def _plan_corrupted(plan: _Plan, texts: list, pool: np.ndarray, n: int, rng: np.random.Generator,
                    taken: set[str], kinds: Sequence[str], donors: Donors = None) -> None:
    if n == 0:
        return
    bad = [k for k in kinds if k not in _CORRUPT_FUNCS]
    if bad or not kinds:
        raise ValueError(f"plant_corrupted: unknown kinds {bad}; expected some of {CORRUPTION_KINDS}")
    donor_texts: list[str] | None = None
    donor_labels: list | None = None
    if donors is not None:
        if isinstance(donors, pl.DataFrame):
            donor_texts = donors["text"].cast(pl.Utf8).to_list()
            donor_labels = donors["label"].to_list() if "label" in donors.columns else None
        else:
            donor_texts = [str(t) for t in donors]
        if not donor_texts:
            raise ValueError("plant_corrupted: donors is empty")
        donor_idx = _sample(rng, np.arange(len(donor_texts)), n)
    for j, (i, kind) in enumerate(zip(_sample(rng, pool, n), _balanced_kinds(rng, n, kinds), strict=True)):
        label = None
        if donor_texts is None:
            src = texts[i]
        else:
            src = donor_texts[donor_idx[j]]
            label = None if donor_labels is None else donor_labels[donor_idx[j]]
        for attempt in range(_MAX_TRIES * 5):
            out = _CORRUPT_FUNCS[kind](src, rng)
            if attempt >= _MAX_TRIES:  # a small pool (stubs): make it unique
                out = out + _pick(rng, (" ", ".", "!", "?", " .", "..", "-", " x")) * (attempt // _MAX_TRIES)
            if out not in taken:
                break
        taken.add(out)
        plan.add(int(i), out, "corrupted", kind, label)


# ----------------------------------------------------------------------------------------- ids, insert

_ID_RE = r"^(.*?)(\d+)$"


def new_ids(ids: pl.Series, n: int, rng: RngLike = None) -> pl.Series:
    """``n`` ids that are not in ``ids`` and look like them: integers continue the sequence, strings that
    end in digits with a common prefix ("demo-00042") continue the numbering; anything else gets random
    12-hex-digit ids."""
    rng = _rng(rng)
    if ids.dtype.is_integer():
        start = int(ids.max()) + 1 if len(ids) else 0
        return pl.Series("id", np.arange(start, start + n), dtype=ids.dtype)
    s = ids.cast(pl.Utf8)
    if len(s):
        prefix = s.str.extract(_ID_RE, 1)
        digits = s.str.extract(_ID_RE, 2)
        if prefix.null_count() == 0 and prefix.n_unique() == 1:
            width = int(digits.str.len_chars().max())
            start = int(digits.cast(pl.Int64).max()) + 1
            p = prefix[0]
            out = pl.Series("id", [f"{p}{k:0{width}d}" for k in range(start, start + n)], dtype=pl.Utf8)
            if not set(out.to_list()) & set(s.to_list()):
                return out
    existing = set(s.to_list())
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        for v in rng.integers(0, 2 ** 48, size=n - len(out)):
            h = f"{int(v):012x}"
            if h not in existing and h not in seen:
                seen.add(h)
                out.append(h)
    return pl.Series("id", out, dtype=pl.Utf8)


def _apply(df: pl.DataFrame, plan: _Plan, rng: np.random.Generator) -> tuple[pl.DataFrame, pl.DataFrame]:
    n, big_n = len(plan.src), df.height
    ids = new_ids(df["id"], n, rng)
    id_dtype = df.schema["id"]
    if n == 0:
        return df, pl.DataFrame(schema=truth_schema(id_dtype))
    src_idx = np.asarray(plan.src, dtype=np.int64)
    new_rows = df[src_idx].with_columns(
        ids.cast(id_dtype).alias("id"), pl.Series("text", plan.text, dtype=pl.Utf8).cast(df.schema["text"]))
    if "label" in df.columns and any(v is not None for v in plan.label):
        labels = [d if d is not None else s for d, s in zip(plan.label, new_rows["label"].to_list(),
                                                              strict=True)]
        new_rows = new_rows.with_columns(pl.Series("label", labels).cast(df.schema["label"]))
    src_ids = df["id"].gather(src_idx)
    truth = pl.DataFrame({
        "id": ids.cast(id_dtype),
        "defect": pl.Series(plan.defect, dtype=pl.Utf8),
        "kind": pl.Series(plan.kind, dtype=pl.Utf8),
        "source_id": src_ids,
    }).with_columns(
        pl.when(pl.col("defect") == "corrupted").then(None).otherwise(pl.col("source_id")).alias("source_id"))
    is_new = np.zeros(big_n + n, dtype=bool)
    is_new[rng.choice(big_n + n, size=n, replace=False)] = True
    order = np.empty(big_n + n, dtype=np.int64)
    order[~is_new] = np.arange(big_n)
    order[is_new] = big_n + rng.permutation(n)
    out = pl.concat([df, new_rows], how="vertical")[order]
    truth = truth[order[is_new] - big_n]
    return out, truth


# ----------------------------------------------------------------------------------------- public API

def plant_exact_duplicates(df: pl.DataFrame, n: int, rng: RngLike = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` verbatim copies of random rows (distinct sources while ``n`` <= rows)."""
    return plant_all(df, n_exact=n, rng=rng)


def plant_near_duplicates(df: pl.DataFrame, n: int, rng: RngLike = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` copies of random rows with 1-3 small edits each (see :data:`NEAR_EDITS`); ``kind`` lists the
    edits applied, joined by "+"."""
    return plant_all(df, n_near=n, rng=rng)


def plant_corrupted(df: pl.DataFrame, n: int, rng: RngLike = None,
                    kinds: Sequence[str] = CORRUPTION_KINDS,
                    donors: Donors = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` copies of random rows whose text is replaced by corrupted text, spread evenly over ``kinds``.

    Mojibake, markup, replacement characters and some repetitions and stubs keep (part of) a text. By
    default that is the copied row's own text, so the corrupted row is also close to its source, which
    stays in the corpus. ``donors`` (texts, or a DataFrame with ``text`` and optionally ``label``, e.g.
    held-out rows) supplies those texts instead; a donor's ``label`` then replaces the copied row's.
    """
    return plant_all(df, n_corrupted=n, rng=rng, corruption_kinds=kinds, donors=donors)


def plant_all(df: pl.DataFrame, n_exact: int = 0, n_near: int = 0, n_corrupted: int = 0,
              rng: RngLike = None, corruption_kinds: Sequence[str] = CORRUPTION_KINDS,
              donors: Donors = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """All three defects at once. Sources are original rows only (never a planted copy); the sources of the
    exact duplicates, the near duplicates and the corrupted rows are disjoint while the corpus is large
    enough (each source is copied once). ``donors``: see :func:`plant_corrupted`."""
    _check(df)
    if min(n_exact, n_near, n_corrupted) < 0:
        raise ValueError("plant: counts must be >= 0")
    rng = _rng(rng)
    texts = df["text"].cast(pl.Utf8).to_list()
    pool = _valid_rows(texts)
    taken = set(texts)
    plan = _Plan()
    _plan_exact(plan, texts, pool, n_exact, rng)
    near_pool = pool
    if n_exact and len(pool) - len(set(plan.src)) >= n_near:
        near_pool = np.setdiff1d(pool, np.asarray(plan.src, dtype=np.int64))
    _plan_near(plan, texts, near_pool, n_near, rng, taken)
    bad_pool = pool
    used = np.unique(np.asarray(plan.src, dtype=np.int64))
    if len(used) and len(pool) - len(used) >= n_corrupted:
        bad_pool = np.setdiff1d(pool, used)
    _plan_corrupted(plan, texts, bad_pool, n_corrupted, rng, taken, corruption_kinds, donors)
    return _apply(df, plan, rng)


def renumber_ids(df: pl.DataFrame, truth: pl.DataFrame, prefix: str, width: int = 5,
                 start: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Give every row the id ``f"{prefix}{k:0{width}d}"`` in row order and map ``truth``'s ``id`` and
    ``source_id`` along: after a shuffle, planted rows carry no tell-tale id."""
    mapping = pl.DataFrame({
        "old": df["id"],
        "new": [f"{prefix}{k:0{width}d}" for k in range(start, start + df.height)],
    })
    out = df.with_columns(mapping["new"].alias("id"))
    old = mapping["old"].to_list()
    new = mapping["new"].to_list()
    truth = truth.with_columns(
        pl.col("id").replace_strict(old, new, return_dtype=pl.Utf8),
        pl.col("source_id").replace_strict(old, new, default=None, return_dtype=pl.Utf8),
    )
    return out, truth
