"""Corrupted texts: mojibake, markup, boilerplate, stubs, repetition spam, symbol noise, U+FFFD."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable

import numpy as np

from uimdata.synth.common import (
    CORRUPTION_KINDS,
    RngLike,
    pick,
    rng_of,
)

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
            pos = pick(rng, _word_boundaries(t))
            t = t[:pos] + pick(rng, _ACCENTED) + " " + t[pos:]
        elif op == 2:  # a word in curly quotes
            words = list(re.finditer(r"[A-Za-z]{3,}", t))
            if words:
                m = pick(rng, words)
                lq, rq = pick(rng, _CURLY)
                t = t[:m.start()] + lq + m.group() + rq + t[m.end():]
            else:
                t = t + " — " + pick(rng, _ACCENTED)
        else:  # a dash or an ellipsis
            t = t.replace(": ", pick(rng, (" — ", " – ", ": … ")), 1) if ": " in t else t + "…"
    if not any(ord(c) >= 0xC0 for c in t):
        t = t + " " + pick(rng, _ACCENTED)
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
    return f"{pick(rng, ('www.', '', 'm.'))}{pick(rng, _HOSTS)}.{pick(rng, _TLDS)}"


def _token(rng: np.random.Generator, n: int = 6) -> str:
    return "".join(pick(rng, "abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


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
            m = pick(rng, words)
            tag = pick(rng, _INLINE_TAGS)
            t = f"{t[:m.start()]}<{tag}>{m.group()}</{tag}>{t[m.end():]}"
    if rng.random() < 0.4:  # entities instead of characters
        src, ent = pick(rng, _ENTITIES)
        t = t.replace(src, ent, int(rng.integers(1, 4)))
    words = re.findall(r"[A-Za-z]{3,}", t) or ["page"]
    for _ in range(int(rng.integers(1, 3))):
        t = pick(rng, _MARKUP_WRAPPERS).format(
            t=t, cls=pick(rng, _CLASSES), w=pick(rng, words), v="v" + _token(rng, 3), id=_token(rng, 8),
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
    brand = pick(rng, _HOSTS).replace("-", " ").title()
    text = pick(rng, _BOILER_SEPS).join(lines)
    return text.format(
        pct=pick(rng, (5, 10, 15, 20, 25)), year=year, year2=year + int(rng.integers(1, 8)),
        site=_site(rng), brand=brand, section=pick(rng, _SECTIONS), section2=pick(rng, _SECTIONS),
        p=int(rng.integers(1, 4)), q=int(rng.integers(4, 40)), month=pick(rng, _MONTHS),
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
            w = pick(rng, words)
            return pick(rng, (w, w.lower(), w.capitalize(), w + ".", w.upper()))
    return pick(rng, _STUBS)


_SPAM = ("buy cheap pills", "click here", "free money", "best price guaranteed", "make money fast",
         "hot singles near you", "limited offer", "win a free iphone", "cheap viagra", "lol",
         "follow for follow", "subscribe now", "casino bonus", "work from home", "100% free",
         "discount code", "like and share", "visit our website", "replica watches", "earn $$$ online")
_REP_SEPS = (" ", ", ", "! ", " - ", "... ", " | ", "\n", "!!! ")


def _corrupt_repetition(t: str, rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.1:  # a character run: "aaaaaaaa..." / "!!!!!!!!..."
        ch = pick(rng, "a!.?ho-=*zx")
        return ch * int(rng.integers(30, 150))
    if r < 0.55:
        phrase = pick(rng, _SPAM)
    else:  # a word or phrase of the source
        words = re.findall(r"[A-Za-z]+", t) or ["spam"]
        k = int(rng.integers(1, 4))
        i = int(rng.integers(0, max(1, len(words) - k + 1)))
        phrase = " ".join(words[i:i + k])
    if rng.random() < 0.5:
        phrase = phrase.upper()
    sep = pick(rng, _REP_SEPS)
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
        blob = pick(rng, ("data:image/png;base64,", "data:application/octet-stream;base64,",
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
    return pick(rng, (" ", ",", ";", "  ", "|")).join(parts)


def _corrupt_symbols(t: str, rng: np.random.Generator) -> str:  # noqa: ARG001
    segs = [(_symbol_run if rng.random() < 0.5 else _b64_blob)(rng)]  # the guaranteed one
    for _ in range(int(rng.integers(0, 3))):
        segs.append(pick(rng, (_symbol_run, _b64_blob, _hex_dump, _digit_noise))(rng))
    segs = [segs[i] for i in rng.permutation(len(segs))]
    return pick(rng, (" ", "\n", "", " ... ")).join(segs)


def _corrupt_replacement_chars(t: str, rng: np.random.Generator) -> str:
    if rng.random() < 0.4:  # accented words whose bytes got lost: "caf\ufffd"
        pos = pick(rng, _word_boundaries(t))
        t = t[:pos] + pick(rng, _ACCENTED) + " " + t[pos:]
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


def _corrupt_truncation(t: str, rng: np.random.Generator) -> str:
    """The text cut after 3-10 characters, inside a word ("syste", "r-cra", "librec-d"): a field
    truncated by a fixed-width export or a failed read."""
    t = t.lstrip()
    cuts = [k for k in range(3, min(11, len(t))) if t[k - 1].isalnum() and t[k].isalnum()]
    if not cuts:  # no word long enough to cut inside: cut anywhere
        return t[:int(rng.integers(3, max(4, min(11, len(t)))))].rstrip() or "x"
    return t[:pick(rng, cuts)]


_CHROME_BEFORE = (
    "Skip to main content", "Home > {section} > {section2}", "Home | {section} | {section2} | Contact",
    "Menu \u2630 Search", "You are here: Home \u203a {section}", "Log in | Register",
    "Posted by admin on {month} {day}, {year}",
    "Share this: Facebook Twitter Email Print",
)
_CHROME_AFTER = (
    "Read more \u00bb", "Share this: Facebook Twitter Email Print", "Related posts:", "Leave a reply",
    "Privacy Policy | Terms of Use", "\u00a9 {year} {site}. All rights reserved.", "Back to top",
    "We use cookies to improve your experience. Accept all cookies?", "Subscribe to our newsletter",
    "Previous post | Next post", "Tags: {section}, {section2}", "Comments (0)",
)


def _corrupt_page_chrome(t: str, rng: np.random.Generator) -> str:
    """A short fragment of the text (20-160 characters, from its start or a later line) between
    page-chrome lines: navigation, breadcrumbs, share / cookie / copyright footers."""
    lines = [ln.strip() for ln in t.splitlines() if len(ln.strip()) >= 20] or [t.strip()]
    src = pick(rng, lines) if rng.random() < 0.5 else lines[0]
    limit = int(rng.integers(20, 161))
    frag = src if len(src) <= limit else src[:src.rfind(" ", 0, limit) if " " in src[:limit] else limit]
    before = [_CHROME_BEFORE[i] for i in rng.choice(len(_CHROME_BEFORE), size=int(rng.integers(1, 3)),
                                                     replace=False)]
    after = [_CHROME_AFTER[i] for i in rng.choice(len(_CHROME_AFTER), size=int(rng.integers(2, 4)), replace=False)]
    sep = pick(rng, ("\n", "\n", " | ", "  "))
    fill = {"section": pick(rng, _SECTIONS), "section2": pick(rng, _SECTIONS), "month": pick(rng, _MONTHS),
            "day": int(rng.integers(1, 29)), "year": int(rng.integers(1998, 2025)), "site": _site(rng)}
    return sep.join([ln.format(**fill) for ln in before] + [frag] + [ln.format(**fill) for ln in after])


CORRUPTORS: dict[str, Callable[[str, np.random.Generator], str]] = {
    "mojibake": _corrupt_mojibake, "markup": _corrupt_markup, "boilerplate": _corrupt_boilerplate,
    "stub": _corrupt_stub, "repetition": _corrupt_repetition, "symbols": _corrupt_symbols,
    "replacement_chars": _corrupt_replacement_chars, "truncation": _corrupt_truncation,
    "page_chrome": _corrupt_page_chrome,
}


def corrupt_text(text: str, kind: str, rng: RngLike = None) -> str:
    """A corrupted text of ``kind`` (one of :data:`CORRUPTION_KINDS`), derived from ``text`` where the kind
    keeps some of it (mojibake, markup, replacement characters, some repetitions and stubs)."""
    if kind not in CORRUPTORS:
        raise ValueError(f"unknown corruption kind {kind!r}; expected one of {CORRUPTION_KINDS}")
    return CORRUPTORS[kind](text, rng_of(rng))

