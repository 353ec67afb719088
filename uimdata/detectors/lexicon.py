"""The lexicon of the text rules (``corrupted``, ``low_quality``): word lists and regular expressions.

What counts as a letter, a word without spaces (CJK, Thai), a bad character, an HTML/XML/wiki
fragment, a page-chrome phrase, a symbol-noise or encoded-blob piece, a stop word, a placeholder
value; plus the small predicates over one token that use them (a URL, a code run, keyboard mash).
Compiled once, at import. Nothing here knows a threshold except :func:`long_run_re`, which compiles
the pattern for the ``max_run_chars`` it is given.

Each pattern is the definition of what it matches. Where one pattern is slow on long texts, the
lexicon also has a search that finds exactly its matches faster: :func:`markup_matches`,
:func:`boilerplate_matches` (the pattern split where the regex engine can jump ahead, the
alternatives factored by first character) and :data:`BADNESS_WIDTH` (ftfy's pattern searched only
around non-ASCII characters).
"""

from __future__ import annotations

import re
from functools import lru_cache

import ftfy.badness

# ------------------------------------------------------------------------------------------------
# letters, scripts, bad characters

# combining marks of scripts whose vowels are marks (Indic, Thai, Arabic/Hebrew points, ...)
_MARKS = ("\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
          "\u0711\u0730-\u074a\u0900-\u0dff\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff"
          "\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u3099\u309a")
_LETTER = rf"(?:[^\W\d_]|[{_MARKS}])"
LETTER_RE = re.compile(_LETTER)
ALPHA_TOKEN_RE = re.compile(rf"(?<!\S)\S*?{_LETTER}\S*")
DEL_ASCII_LETTERS = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# deletes the ASCII spaces of str.split()
DEL_ASCII_SPACES = str.maketrans("", "", "".join(c for c in map(chr, range(128)) if c.isspace()))
# deletes every ASCII character but letters and the spaces of str.split()
KEEP_ASCII_LETTERS_AND_SPACES = str.maketrans(
    "", "", "".join(c for c in map(chr, range(128)) if not (c.isspace() or c.isalpha())))
# scripts written without spaces between words
NOSPACE_SCRIPTS = ("\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fff\u3040-\u30ff"
                    "\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff")
CJK_RE = re.compile(f"[{NOSPACE_SCRIPTS}]")

# ftfy's "badness": unlikely sequences of characters that mojibake leaves
BADNESS_RE = ftfy.badness.BADNESS_RE


def _nonascii_width(rx: re.Pattern[str]) -> int | None:
    """The longest match of a pattern that looks at no character outside its match (no lookaround,
    word boundary or backreference) and every match of which holds a non-ASCII character (each of
    its alternatives has a non-ASCII literal or a class of non-ASCII characters only); None when
    that cannot be shown, or a match can be long."""
    try:
        import re._parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover
        import sre_parse  # type: ignore[no-redef]
    if rx.flags & (re.IGNORECASE | re.MULTILINE):
        return None

    def subpatterns(av: object) -> list:
        if isinstance(av, sre_parse.SubPattern):
            return [av]
        return [s for x in av for s in subpatterns(x)] if isinstance(av, (tuple, list)) else []

    def looks_around(items: object) -> bool:
        for op, av in items:  # type: ignore[attr-defined]
            name = str(op)
            if name in ("ASSERT", "ASSERT_NOT", "GROUPREF", "GROUPREF_EXISTS") or (
                    name == "AT" and str(av) not in ("AT_BEGINNING", "AT_BEGINNING_STRING")):
                return True
            if any(looks_around(sub) for sub in subpatterns(av)):
                return True
        return False

    def nonascii(op: object, av: object) -> bool:
        name = str(op)
        if name == "LITERAL":
            return av >= 0x80  # type: ignore[operator]
        return name == "IN" and all((str(o) == "LITERAL" and a >= 0x80) or (str(o) == "RANGE" and a[0] >= 0x80)
                                    for o, a in av)  # type: ignore[union-attr]

    tree = sre_parse.parse(rx.pattern, rx.flags)
    items = list(tree.data)
    alternatives = items[0][1][1] if len(items) == 1 and str(items[0][0]) == "BRANCH" else [items]
    if looks_around(items) or not all(any(nonascii(op, av) for op, av in alt) for alt in alternatives):
        return None
    width = tree.getwidth()[1]
    return width if width <= 64 else None


#: every match of :data:`BADNESS_RE` holds a non-ASCII character and is at most this long (None: not shown)
BADNESS_WIDTH = _nonascii_width(BADNESS_RE)

# C0 controls except \t \n \r and \f (page breaks of plain-text documents), DEL, C1 controls
# (latin-1 decoding of UTF-8), U+FFFD
BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")

# ------------------------------------------------------------------------------------------------
# markup: HTML/XML, entities, wiki, BBCode

# HTML elements (not short generic words that plain text uses as <placeholders>: path, var, q, s)
_TAGS = ("a|abbr|address|article|aside|audio|b|blockquote|body|br|button|canvas|caption|center|"
         "code|dd|div|dl|dt|em|embed|fieldset|figcaption|figure|font|footer|form|h[1-6]|head|"
         "header|hr|html|i|iframe|img|input|kbd|label|legend|li|link|meta|nav|noscript|ol|"
         "optgroup|option|p|pre|ref|script|section|select|small|span|strike|strong|style|sub|sup|"
         "svg|table|tbody|td|textarea|tfoot|th|thead|title|tr|u|ul|video")
_ENTITIES = ("amp|nbsp|lt|gt|quot|apos|mdash|ndash|hellip|copy|reg|trade|rsquo|lsquo|rdquo|ldquo|"
             "laquo|raquo|bull|middot|deg|euro|pound|cent|yen|times|divide|para|sect|shy|thinsp|"
             "ensp|emsp|zwnj|zwj|lrm|rlm|frac12|frac14|frac34|sup2|sup3|iexcl|iquest|szlig|"
             "[a-zA-Z]{1,2}(?:acute|grave|uml|circ|tilde|cedil|ring|slash|lig)")
# every markup pattern but the heading starts with one of "<&[{" (so the regex engine jumps to those)
_MARKUP_TAG = (
    rf"</(?P<close>{_TAGS})\s*>",                            # </p>, </div>
    r"<(?:br|hr)\s*/?>",                                     # <br>, <br/>, <hr>
    rf"<(?P<open>{_TAGS})\s*/?>",                            # <p>: counted only when </p> is there too
    rf"<(?:{_TAGS})\s[^<>]{{0,300}}?=[^<>]{{0,300}}>",       # <a href="...">
    # </w:p>, <xsl:value-of select="..."/> (not <host:port> placeholders)
    r"</[a-zA-Z]\w*:[a-zA-Z][\w.-]*\s*>|<[a-zA-Z]\w*:[a-zA-Z][\w.-]*\s[^<>]{0,300}=[^<>]{0,300}>",
    r"<!--|<!\[CDATA\[|<!doctype\b|<\?xml\b|<\?php\b",
    rf"&(?:{_ENTITIES}|#\d{{2,7}}|#[xX][0-9a-fA-F]{{2,6}});",  # &amp; &#8217; &#x2019;
    # [[Wiki links]], [[link|text]] (not bash's "[[ -n $x ]]", C++'s [[noreturn]]), {{Templates}} / {{cite|...}} (not Go's {{.Name}})
    r"\[\[(?-i:[A-Z])[^\[\]\n]{0,200}\]\]|\[\[[A-Za-z][^\[\]\n|]{0,100}[|:][^\[\]\n]{0,200}\]\]"
    r"|\{\{(?-i:[A-Z])[^{}\n]{0,200}\}\}"
    r"|\{\{[A-Za-z][^{}\n|]{0,100}\|[^{}\n]{0,200}\}\}",
    # BBCode, lowercase only ("[SIZE]" is a synopsis placeholder)
    r"\[(?-i:(?:url|img|quote)(?:=[^\]\n]{0,200})?\]|/(?:url|img|quote|b|i|u|color|size)\])",
)
# == Heading == (not '''bold''': Python's triple quotes)
_MARKUP_HEADING = r"^[ \t]*={2,}[^=\n]{0,50}[A-Za-z][^=\n]{0,50}={2,}[ \t\r]*$"
#: HTML/XML elements, entities, comments, wiki links and templates, headings, BBCode
MARKUP_RE = re.compile("|".join((*_MARKUP_TAG, _MARKUP_HEADING)), re.IGNORECASE | re.MULTILINE)
_MARKUP_TAG_RE = re.compile("|".join(_MARKUP_TAG), re.IGNORECASE | re.MULTILINE)
_MARKUP_HEADING_RE = re.compile(_MARKUP_HEADING, re.IGNORECASE | re.MULTILINE)


def markup_matches(text: str) -> list[tuple[str, str | None, bool]]:
    """``(fragment, open tag, quoted)`` of each match of :data:`MARKUP_RE` (the ``open`` group: a bare
    opening tag; ``quoted``: the fragment alone between quotes, ``"&amp;"`` or ``'<br>'``, a literal in
    code), in order. Faster than the one pattern: the patterns that start with one of "<&[{" and the
    heading pattern (which starts with a space, a tab or "=", so never where another one starts) are
    searched apart and merged as the one pattern would find them, left to right, each match resuming
    after the last."""
    def quoted(m: re.Match[str]) -> bool:
        a, b = m.start(), m.end()
        return a > 0 and b < len(text) and text[a - 1] in "\"'`" and text[b] == text[a - 1]

    if "==" not in text:  # no heading
        return [(m.group(0), m.group("open"), quoted(m)) for m in _MARKUP_TAG_RE.finditer(text)]
    out: list[tuple[str, str | None, bool]] = []
    tag, head = _MARKUP_TAG_RE.search(text), _MARKUP_HEADING_RE.search(text)
    while tag is not None or head is not None:
        if head is None or (tag is not None and tag.start() < head.start()):
            out.append((tag.group(0), tag.group("open"), quoted(tag)))
            pos = tag.end()
        else:
            out.append((head.group(0), None, False))
            pos = head.end()
        if tag is not None and tag.start() < pos:
            tag = _MARKUP_TAG_RE.search(text, pos)
        if head is not None and head.start() < pos:
            head = _MARKUP_HEADING_RE.search(text, pos)
    return out


# characters one of the markup patterns needs (a cheap pre-check before the regex)
MARKUP_HINT_RE = re.compile(r"[<&\[]|\{\{|==")

# ------------------------------------------------------------------------------------------------
# page chrome (boilerplate phrases)

_BOILERPLATE_STRONG = (
    r"click here", r"click to (?:read|view|see|download|continue|subscribe|learn|enlarge)",
    r"lorem ipsum", r"all rights reserved", r"rights reserved",
    r"cookie (?:policy|settings|preferences|consent)", r"accept (?:all )?cookies",
    r"we uses? cookies", r"this (?:site|website) uses? cookies", r"use of cookies", r"privacy policy",
    r"privacy statement", r"terms of (?:use|service)", r"terms (?:and|&) conditions",
    r"subscribe to (?:our|the|my) (?:newsletter|mailing list|channel|blog)",
    r"sign up for (?:our|the) newsletter", r"subscribe now", r"sign up now", r"register now",
    r"you must be logged in", r"please (?:log|sign) in", r"enable javascript",
    r"enabling javascript",
    r"javascript (?:is|must be) (?:disabled|enabled|required|turned off)",
    r"your browser does not support", r"skip to (?:main )?content", r"skip navigation",
    r"back to top", r"powered by (?:wordpress|blogger|shopify|drupal|joomla)",
    r"add to (?:cart|basket|wishlist|wish list)", r"forgot (?:your )?password",
    r"leave a (?:comment|reply)", r"share (?:this|on) (?:facebook|twitter|post|article|page)",
    r"share this", r"follow us on", r"like us on facebook", r"copyright \u00a9",
    r"copyright (?:19|20)\d\d", r"page not found", r"404 not found",
    r"you are here:", r"leave a reply", r"comments \(0\)",
    r"related posts", r"recent posts", r"previous post", r"next post",
    r"reproduction without (?:explicit )?permission",
    r"view (?:this (?:email|message) )?in (?:your )?browser",
    r"manage (?:your )?(?:email )?preferences", r"download (?:our|the) app", r"get it on google play",
    r"available on the app store", r"download on the app store",
)
# strong phrases that start with a symbol (a boundary before them means a word character): (symbol, rest)
_BOILERPLATE_STRONG_SYMBOL = ((r"\u00a9", r" ?(?:19|20)\d\d"), (r"\(", r"c\) (?:19|20)\d\d"))
_BOILERPLATE_WEAK = (
    r"log ?in to", r"sign ?in to", r"sign up", r"sign in", r"log in", r"read more", r"learn more",
    r"contact us", r"about us", r"posted (?:by|in)", r"view all", r"buy now", r"order now", r"sitemap",
    r"home page", r"comments? \(\d+\)", r"tags:",
    r"unsubscribe", r"google play", r"app store", r"register",
)
_WEAK = r"|(?P<weak>" + "|".join(_BOILERPLATE_WEAK) + r"))(?!\w)"
# matched against the lowercased text (4x faster than re.IGNORECASE)
BOILERPLATE_RE = re.compile(
    r"\b(?:(?P<strong>" + "|".join((*_BOILERPLATE_STRONG, *(a + b for a, b in _BOILERPLATE_STRONG_SYMBOL)))
    + ")" + _WEAK)


def _literal_head(src: str) -> tuple[str, str] | None:
    """``(first character, rest)`` of a pattern that starts with one literal character (not repeated);
    None otherwise."""
    if src.startswith("\\u"):
        head = src[:6]
    elif src.startswith("\\") and len(src) > 1 and not src[1].isalnum():
        head = src[:2]
    elif not src or src[0] in "\\()[]{}.*+?^$|":
        return None
    else:
        head = src[0]
    rest = src[len(head):]
    return None if rest[:1] in ("?", "*", "+", "{") else (head, rest)


def _by_first_character(alternatives: list[str]) -> str:
    """The alternation of ``alternatives`` with their common first characters factored out, level by
    level ("c(?:lick here|ookie policy)"), so that the engine tries only the ones that start with the
    character in front of it. Alternatives with different first characters never match at the same
    place, and the order among those with the same one is kept, so the first that matches is the same."""
    heads = [_literal_head(a) for a in alternatives]
    if any(h is None for h in heads):
        return "|".join(alternatives)
    groups: dict[str, list[str]] = {}
    for head, rest in heads:  # type: ignore[misc]
        groups.setdefault(head, []).append(rest)
    return "|".join(head + rests[0] if len(rests) == 1 else f"{head}(?:{_by_first_character(rests)})"
                    for head, rests in groups.items())


# the same phrases found faster: a phrase that starts with a word character follows a non-word one
# (which the engine jumps to), the alternatives factored by first character; the two that start with
# a symbol follow a word character. A match is strong when its phrase is a strong phrase.
_BOILERPLATE_WORD_RE = re.compile(
    r"\W\b(?:" + _by_first_character([*_BOILERPLATE_STRONG, *_BOILERPLATE_WEAK]) + r")(?!\w)")
_BOILERPLATE_STRONG_RE = re.compile("|".join(_BOILERPLATE_STRONG))
_BOILERPLATE_SYMBOL_RE = re.compile("|".join(rf"{a}(?<=\w{a}){b}(?!\w)" for a, b in _BOILERPLATE_STRONG_SYMBOL))


# any phrase, with the conditions around it left out (word boundaries, the character before a
# symbol) and ``\d`` widened to any character but a newline: it matches wherever BOILERPLATE_RE does
# (and more), so a text it does not match has no boilerplate phrase. A Rust regex (polars), searched
# over many texts at once (text_stats.boilerplate_for_all).
BOILERPLATE_ANY = "|".join(
    p.replace(r"\d", ".").replace(r"\u00a9", "\u00a9")
    for p in (*_BOILERPLATE_STRONG, *_BOILERPLATE_WEAK, *(a + b for a, b in _BOILERPLATE_STRONG_SYMBOL)))


def boilerplate_matches(low: str) -> list[tuple[str, bool]]:
    """``(phrase, strong)`` of each match of :data:`BOILERPLATE_RE` in a lowercased text, in order.
    Searches the phrases that start with a word character after a non-word one and the two that
    start with a symbol apart (they never start at the same place), and merges them as the one
    pattern would find them, each match resuming after the last."""
    out: list[tuple[str, bool]] = []
    pos = 0
    m = BOILERPLATE_RE.match(low)  # a phrase at the very start has no character before it
    if m is not None:
        out.append((m.group(0), m.group("strong") is not None))
        pos = m.end()
    word = _BOILERPLATE_WORD_RE.search(low, max(0, pos - 1))
    sym = _BOILERPLATE_SYMBOL_RE.search(low, pos) if "\u00a9" in low or "(c)" in low else None
    while word is not None or sym is not None:
        if sym is None or (word is not None and word.start() < sym.start()):
            phrase = word.group(0)[1:]
            out.append((phrase, _BOILERPLATE_STRONG_RE.fullmatch(phrase) is not None))
            pos = word.end()
        else:
            out.append((sym.group(0), True))
            pos = sym.end()
        if word is not None and word.start() + 1 < pos:  # the phrase starts after the non-word character
            word = _BOILERPLATE_WORD_RE.search(low, pos - 1)
        if sym is not None and sym.start() < pos:
            sym = _BOILERPLATE_SYMBOL_RE.search(low, pos)
    return out


def boilerplate_phrases(low: str, exclude: re.Pattern[str] | None = None,
                        matches: list[tuple[str, bool]] | None = None) -> tuple[float, bool, list[str]]:
    """``(weight, any_strong, distinct phrases)`` of the boilerplate phrases in a lowercased text; each
    distinct phrase counts once (a strong phrase weighs 1, a weak one 0.5). Phrases that ``exclude``
    matches (e.g. :data:`COPYRIGHT_RE`) are not counted. ``matches``: the text's
    :func:`boilerplate_matches` when they are known already."""
    weight = 0.0
    strong = False
    phrases: list[str] = []
    for match, is_strong in boilerplate_matches(low) if matches is None else matches:
        phrase = " ".join(match.split())
        if phrase not in phrases and (exclude is None or exclude.search(phrase) is None):
            phrases.append(phrase)
            strong |= is_strong
            weight += 1.0 if is_strong else 0.5
    return weight, strong, phrases


# ------------------------------------------------------------------------------------------------
# symbol noise, encoded blobs, long runs

# symbols that prose rarely stacks in one word (not . , ; : ' " ( ) which quoting and abbreviations do)
HARD_SYMBOLS = "!#$%&*+-/<=>?@[\\]^_`{|}~"
HARD_SYMBOL_RE = re.compile(r"[!#$%&*+\-/<=>?@\[\\\]^_`{|}~]")
# hex-like words: "0x5c", "e580", "1a6a" (a digit and a hex letter, or the 0x prefix)
_HEX_WORD = r"(?:0[xX][0-9a-fA-F]+|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{4,})[,;.]?"
HEX_WORD_RE = re.compile(rf"(?<!\S){_HEX_WORD}(?!\S)")
# ... one token that is a hex-like word (fullmatch): HEX_WORD_RE matches exactly such tokens
HEX_TOKEN_RE = re.compile(_HEX_WORD)
LONG_TOKEN_RE = re.compile(r"(?<!\S)\S{20,}")
BLOB_PIECE_RE = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
# lower->upper and letter<->digit switches: base64 and hex digests switch all the time, CamelCase rarely
CLASS_SWITCH_RE = re.compile(r"[a-z](?=[A-Z])|[A-Za-z](?=[0-9])|[0-9](?=[A-Za-z])")
DIGIT_RE = re.compile(r"[0-9]")
DIGIT_RUN_RE = re.compile(r"[0-9]+")
# an identifier: a letter prefix, then digits in groups ("CVE-2026-118331", "RFC-2616", "bug#961860")
ID_TOKEN_RE = re.compile(r"[A-Za-z]{2,}[-_#:]?[0-9]+(?:[-_.][0-9A-Za-z]+)*")
ID_SEP_RE = re.compile(r"[-_.]")
HEX_PIECE_RE = re.compile(r"[0-9a-f]+|[0-9A-F]+")
# a letter in the sense of CHAR_RUN_RE (no combining marks)
WORD_LETTER_RE = re.compile(r"[^\W\d_]")
# a letter repeated 4+ times: "aaaaaaaa", "hmmmmm" (runs of "-" / "=" / "!" are symbol noise instead)
CHAR_RUN_RE = re.compile(r"([^\W\d_])\1{3,}")


@lru_cache(maxsize=16)
def long_run_re(max_run_chars: int) -> re.Pattern[str]:
    """A run of more than ``max_run_chars`` non-space characters that are not CJK/Thai text."""
    return re.compile(rf"[^\s{NOSPACE_SCRIPTS}]{{{max_run_chars + 1},}}")


_LETTER_WORD_RE = re.compile(r"[A-Za-z]{3,}")


def is_code_run(run: str) -> bool:
    """A long run that is a synopsis or code ("[--disk=[auto-delete=AUTO-DELETE],[boot=BOOT]..."):
    mostly letters, made of several words. Encoded blobs are left to the blob test."""
    words = _LETTER_WORD_RE.findall(run)
    return len(words) >= 3 and sum(map(len, words)) >= 0.5 * len(run)


def is_url(token: str) -> bool:
    """A URL ("https://...", "www.example.com")."""
    return "://" in token or "www." in token.lower()


# ------------------------------------------------------------------------------------------------
# words: stop words, placeholders, keyboard mash

# a short multilingual stopword list: content tokens exclude these
STOPWORDS = frozenset("""
a an the and or but nor of to in on at by for with from as into onto upon about over under than
then so if is are was were be been being am do does did have has had having it its this that these
those there here which who whom whose what when where why how not no yes all any some each other
such only own same too very can will just should would could may might must shall i me my we our
you your he him his she her they them their one ones also s t
de la le les des du un une et est en que qui dans pour par sur au aux ce se sa son ses il elle
el los las y o del al con por para es lo su sus como mas pero
der die das und ist ein eine einer eines dem den des im zu mit von auf nicht sich auch als
il lo gli di da con per che non una uno e
o os as um uma do da dos das em no na com por para que
""".split())

_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
#: a placeholder value has at most this many words ("no description available")
PLACEHOLDER_MAX_WORDS = 3
# values that forms, exports and scrapers leave in a text field (compared lowercased, letters only)
PLACEHOLDERS = frozenset((
    "null", "none", "nan", "nil", "na", "n a", "tbd", "tba", "todo", "to do", "fixme", "test", "testing",
    "placeholder", "untitled", "empty", "blank", "deleted", "removed", "draft", "wip", "tmp", "temp",
    "undefined", "lorem", "sample text", "xxx", "same", "same as above", "see above", "idk",
    "no description", "no description available", "description", "not available", "no comment",
    "no comments", "coming soon", "insert text here", "text here", "your text here", "add text",
))
PLACEHOLDER_STRIP_RE = re.compile(r"[^a-z]+")
_NON_ASCII_LETTERS_RE = re.compile(r"[^a-z]")


def is_gibberish(token: str) -> bool:
    """A one-word text that is keyboard mash: "asdf", "qwerty", "hjkl", "xkcd", "zzzz"."""
    w = _NON_ASCII_LETTERS_RE.sub("", token.lower())
    if len(w) < 4 or len(w) != len(token):
        return False
    if len(set(w)) <= 2 or not any(v in w for v in "aeiouy"):
        return True
    for row in _KEY_ROWS:
        if all(c in row for c in w):
            # three adjacent keys in a row, left to right or right to left
            back = row[::-1]
            return any(w[i:i + 3] in row or w[i:i + 3] in back for i in range(len(w) - 2))
    return False


# a word's surrounding quotes, brackets and punctuation (stripped before comparing words)
TRIM_RE = re.compile(r"^[\"'(\[{<]+|[\"'),;:!?.\]}>]+$")


# ------------------------------------------------------------------------------------------------
# Gopher / C4 (``low_quality``)

#: Gopher's stop words (Rae et al. 2021): a document needs at least two of them
GOPHER_STOPWORDS = frozenset(("the", "be", "to", "of", "and", "that", "have", "with"))
# copyright notices: not C4 boilerplate (normal in documentation, code and books)
COPYRIGHT_RE = re.compile(r"copyright|rights reserved|\u00a9|\(c\) (?:19|20)")
BULLET_RE = re.compile(r"^\s*(?:[\u2022\u2023\u25b6\u25cf\u25e6\u2013\u2043*-]|\d+[.)])\s")
ELLIPSIS_RE = re.compile(r"(?:\.\.\.|\u2026)")
ELLIPSES = ("...", "\u2026")
# lowercase ASCII words (the stop-word count)
ASCII_WORD_RE = re.compile(r"[a-z]+")
# each stop word as an ASCII_WORD_RE word of the lowercased text (no [a-z] either side); the word
# leads the pattern, so the engine jumps from one occurrence to the next
GOPHER_STOPWORD_RES = tuple(re.compile(rf"{w}(?![a-z])(?<![a-z]{w})") for w in sorted(GOPHER_STOPWORDS))
