"""Corrupted text: text that cannot be read as intended, one row at a time (plus one corpus pass).

Each row gets the rule that fired (``corrupted_rule``), a short human reason and a score in
[0, 1] (lower = worse). Every rule turns its statistic into a sub-score through its threshold so
that the threshold lands exactly on 0.5; the row's score is the minimum over the rules, so a row is
flagged exactly when ``score < 0.5`` and the reason names the worst rule. Technical text is not
noise: command-line synopses (``[--region=REGION]``), identifiers (``lib64ubsan1-i386-cross``),
paths, version strings, code, tables and option lists are normal in documentation corpora. The
Gopher / C4 low-quality heuristics (repetition ratios, word length, stop words, boilerplate phrases
at low density) are the ``low_quality`` detector's. The rules, cheapest first:

``empty``
    null, empty or whitespace-only text.
``mojibake``
    text decoded with the wrong codec (UTF-8 read as cp1252 / latin-1 and the like, found and
    confirmed by ``ftfy``), U+FFFD replacement characters and C0/C1 control characters other than
    tab, newline and carriage return.
``markup``
    HTML/XML elements (a bare ``<label>`` only when ``</label>`` is there too: synopses use such
    placeholders), HTML entities, comments / CDATA / doctype, wiki links and templates, BBCode; at
    least ``min_markup_hits`` fragments. Code, CSS and templates such as ``{{.Name}}`` are not markup.
``boilerplate``
    page chrome around a fragment: navigation, share, cookie, policy and copyright phrases at more
    than ``max_chrome_per_100_words`` per 100 actual words (one copyright line in a manual is 0.2).
``symbols``
    symbol / digit noise: few alphabetic characters, many words without any letter (numbers, hex
    codes), unbroken runs of non-space characters that are not synopses or code, noise words (mixed
    symbols with few letters such as "#$%@!&*", base64 / hex blobs; in longer texts only when they
    hold 5 % of the characters, so a quoted digest is not noise).
``stub``
    too short to carry meaning: very few letters ("ok", "n/a", "???"), no word at all, a
    placeholder value ("null", "TODO", "[deleted]"), a bare URL or a one-word keyboard mash ("asdf").
    One real word ("goldfish") is kept by default (``min_words=1``): about 0.7 % of WordNet's
    clean glosses are a single word; ``min_words=2`` flags every one-word text.
``repetition``
    token spam: letter runs ("aaaaaaaa"); few unique words on short texts; on texts of 30 words and
    more, repeated 5-grams or repeated lines covering more than half of the text.
``truncated``
    calibrated on the corpus (:meth:`CorruptedDetector.finish`, after every batch): a text of a few
    characters far shorter than the corpus's texts whose last word stops inside a word of the corpus
    ("syste", "golan", "r-cra", "librec-d"), or any text of a few characters in a corpus of documents.

Letters are Unicode letters (and combining marks), so German, Spanish, Cyrillic, Chinese or Hindi
text is not symbol noise, and non-ASCII letters are never mojibake unless ``ftfy`` can repair them.
Only the first ``max_chars`` characters of a text are analysed, so every rule is linear and a 1 MB
text costs milliseconds.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import ftfy
import numpy as np
import pyarrow as pa
from ftfy.badness import BADNESS_RE

from uimdata.detectors import register
from uimdata.detectors.base import BatchDetector, is_col, reason_col, result_table, score_col, thresholds_with
from uimdata.errors import UimError

ISSUE = "corrupted"
RULE_COL = "corrupted_rule"
#: the rules, in the order that breaks ties between equal scores
RULES = ("empty", "mojibake", "markup", "boilerplate", "symbols", "stub", "repetition", "truncated")


@dataclass(frozen=True)
class CorruptedThresholds:
    """The thresholds of :class:`CorruptedDetector`; every field is a constructor keyword.

    ``max_*`` thresholds flag a row when the statistic is strictly above them, ``min_*`` ones when
    it is strictly below them. "Per 100 words" densities count texts shorter than 100 words as
    100 words, so one hit flags any short text while a long article needs several.
    """

    #: only the first ``max_chars`` characters of a text are analysed (keeps every rule cheap)
    max_chars: int = 100_000
    #: mojibake: bad sequences (ftfy-repairable mojibake, U+FFFD, control characters) tolerated
    max_bad_chars: int = 0
    #: markup: HTML/XML tags, entities, wiki fragments per 100 words (code is not markup)
    max_markup_per_100_words: float = 0.5
    #: markup: fewer fragments than this are never markup (an element has two tags)
    min_markup_hits: int = 2
    #: boilerplate (page chrome): phrase weight per 100 actual words (a strong phrase weighs 1, a weak
    #: one 0.5); one phrase in 40 words. A copyright line in a 500-word manual is 0.2.
    max_chrome_per_100_words: float = 2.5
    #: symbols: texts with fewer non-space characters are left to the ``stub`` rule
    symbols_min_chars: int = 5
    #: symbols: alphabetic characters among non-space characters (a doctest full of numbers has 0.39)
    min_alpha_frac: float = 0.25
    #: symbols: words without any letter (or hex-like: "0x5c", "e580"), for texts of at least 4 words
    max_nonalpha_word_frac: float = 0.7
    #: symbols: longest run of non-space characters (URLs and CJK/Thai text are exempt)
    max_run_chars: int = 100
    #: symbols: noise tokens per 100 words - a word with >= 5 symbols of >= 4 kinds ("#$%@!&*",
    #: "{^*$"!~") or an encoded blob (a base64 / hex piece of >= 20 characters that switches
    #: between digits, lower and upper case all the time)
    max_noise_tokens_per_100_words: float = 0.5
    #: symbols: in texts of at least ``long_min_words`` words, noise tokens must also hold this share
    #: of the non-space characters (an MD5 digest or a regular expression quoted in a manual is not)
    min_noise_char_frac: float = 0.05
    #: stub: words that contain a letter (two CJK characters count as one word). One real word is
    #: kept (0.7 % of WordNet's clean glosses are one word: "goldfish"); set 2 to flag those too.
    min_words: int = 1
    #: stub: letters in the whole text ("ok", "n/a", "..." have fewer)
    min_letters: int = 4
    #: stub: a one-word text that looks like keyboard mash ("asdf", "qwerty", "hjkl", "zzzz"), a
    #: placeholder value ("null", "N/A", "TODO", "[deleted]", "no description", "lorem") or a bare URL
    flag_placeholders: bool = True
    #: repetition: characters in runs of >= 4 identical letters, for texts of >= 10 non-space
    #: characters ("aaaaaaaa", "hmmmmmmmm")
    max_char_run_frac: float = 0.5
    #: repetition: texts with at least this many tokens are token spam when repeated 5-grams or lines
    #: cover most of them, shorter ones when few tokens are unique (a 60-word docstring with doctests
    #: repeats its class name)
    long_min_words: int = 30
    #: repetition (short texts): unique tokens / tokens, for texts of at least 4 tokens
    min_unique_ratio: float = 0.4
    #: repetition (short texts): unique / all content (non-stopword) tokens, when there are >= 6
    min_unique_content_ratio: float = 0.4
    #: truncated (corpus-calibrated): texts of at most this many characters and 2 words whose last
    #: word stops inside a word of the corpus ("syste" of "system", "librec-d" of "librec-dev")
    truncated_max_chars: int = 16
    #: truncated: ... and whose log length is this many robust standard deviations (median / 1.4826
    #: MAD of the corpus's log lengths) below the corpus median
    truncated_min_z: float = 2.0
    #: truncated: a text of at most ``truncated_max_chars`` and shorter than this fraction of the
    #: corpus's median length, in a corpus whose median row has at least ``truncated_long_median``
    #: characters (documents, not titles or glosses), is cut whatever its last word
    truncated_max_frac: float = 0.1
    truncated_long_median: int = 100
    #: repetition (long texts): token spam = the characters in repeated 5-grams or in repeated lines
    #: cover more than this share of the text (Gopher's low-quality thresholds, 0.15 and 0.2, are
    #: ``low_quality``'s business: a manual repeats its option names)
    max_spam_frac: float = 0.5


# ------------------------------------------------------------------------------------------------
# score maps: the threshold lands on 0.5, a flagged statistic below it, a clean one above it


def _above(x: float, t: float) -> float:
    """Sub-score of a statistic flagged when ``x > t`` (x >= 0)."""
    if t <= 0:
        return 1.0 if x <= 0 else 0.5 / (1.0 + x)
    if x <= t:
        return 1.0 - 0.5 * x / t
    return 0.5 * t / x


def _below(x: float, t: float) -> float:
    """Sub-score of a statistic flagged when ``x < t`` (x >= 0)."""
    if t <= 0:
        return 1.0
    if x < t:
        return 0.5 * x / t
    return 1.0 - 0.5 * t / x if x > 0 else 0.5


# ------------------------------------------------------------------------------------------------
# patterns (compiled once)

# combining marks of scripts whose vowels are marks (Indic, Thai, Arabic/Hebrew points, ...)
_MARKS = ("\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed"
          "\u0711\u0730-\u074a\u0900-\u0dff\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff"
          "\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f\u3099\u309a")
_LETTER = rf"(?:[^\W\d_]|[{_MARKS}])"
_LETTER_RE = re.compile(_LETTER)
_ALPHA_TOKEN_RE = re.compile(rf"(?<!\S)\S*?{_LETTER}\S*")
_ASCII_ALPHA_TOKEN_RE = re.compile(r"(?<!\S)[^\sA-Za-z]*[A-Za-z]\S*")
_DEL_ASCII_LETTERS = str.maketrans("", "", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# scripts written without spaces between words
_NOSPACE_SCRIPTS = ("\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fff\u3040-\u30ff"
                    "\u3100-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff")
_CJK_RE = re.compile(f"[{_NOSPACE_SCRIPTS}]")
_WORD_RE = re.compile(r"\w+")

# C0 controls except \t \n \r and \f (page breaks of plain-text documents), DEL, C1 controls
# (latin-1 decoding of UTF-8), U+FFFD
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufffd]")

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
_MARKUP_RE = re.compile(
    "|".join((
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
        r"^[ \t]*={2,}[^=\n]{0,50}[A-Za-z][^=\n]{0,50}={2,}[ \t\r]*$",  # == Heading == (not '''bold''': Python's triple quotes)
        # BBCode, lowercase only ("[SIZE]" is a synopsis placeholder)
        r"(?-i:\[(?:url|img|quote)(?:=[^\]\n]{0,200})?\]|\[/(?:url|img|quote|b|i|u|color|size)\])",
    )),
    re.IGNORECASE | re.MULTILINE,
)
# characters one of the markup patterns needs (a cheap pre-check before the regex)
_MARKUP_HINT_RE = re.compile(r"[<&\[]|\{\{|==")

_BOILERPLATE_STRONG = (
    r"click here", r"click to (?:read|view|see|download|continue|subscribe|learn|enlarge)",
    r"lorem ipsum", r"all rights reserved", r"rights reserved",
    r"cookie (?:policy|settings|preferences|consent)", r"accept (?:all )?cookies",
    r"(?:we|this (?:site|website)) uses? cookies", r"use of cookies", r"privacy policy",
    r"privacy statement", r"terms of (?:use|service)", r"terms (?:and|&) conditions",
    r"subscribe to (?:our|the|my) (?:newsletter|mailing list|channel|blog)",
    r"sign up for (?:our|the) newsletter", r"(?:subscribe|sign up|register) now",
    r"you must be logged in", r"please (?:log|sign) in", r"(?:enable|enabling) javascript",
    r"javascript (?:is|must be) (?:disabled|enabled|required|turned off)",
    r"your browser does not support", r"skip to (?:main )?content", r"skip navigation",
    r"back to top", r"powered by (?:wordpress|blogger|shopify|drupal|joomla)",
    r"add to (?:cart|basket|wishlist|wish list)", r"forgot (?:your )?password",
    r"leave a (?:comment|reply)", r"share (?:this|on) (?:facebook|twitter|post|article|page)",
    r"share this", r"follow us on", r"like us on facebook", r"copyright \u00a9", r"\u00a9 ?(?:19|20)\d\d",
    r"\(c\) (?:19|20)\d\d", r"copyright (?:19|20)\d\d", r"page not found", r"404 not found",
    r"you are here:", r"leave a reply", r"comments \(0\)",
    r"related posts", r"recent posts", r"previous post", r"next post",
    r"reproduction without (?:explicit )?permission",
    r"view (?:this (?:email|message) )?in (?:your )?browser",
    r"manage (?:your )?(?:email )?preferences", r"download (?:our|the) app", r"get it on google play",
    r"(?:available|download) on the app store",
)
_BOILERPLATE_WEAK = (
    r"log ?in to", r"sign ?in to", r"sign up", r"sign in", r"log in", r"read more", r"learn more",
    r"contact us", r"about us", r"posted (?:by|in)", r"view all", r"buy now", r"order now", r"sitemap",
    r"home page", r"comments? \(\d+\)", r"tags:",
    r"unsubscribe", r"google play", r"app store", r"register",
)
# matched against the lowercased text (4x faster than re.IGNORECASE)
_BOILERPLATE_RE = re.compile(
    r"\b(?:(?P<strong>" + "|".join(_BOILERPLATE_STRONG) + r")|(?P<weak>"
    + "|".join(_BOILERPLATE_WEAK) + r"))(?!\w)"
)



def boilerplate_phrases(low: str) -> tuple[float, bool, list[str]]:
    """``(weight, any_strong, distinct phrases)`` of the boilerplate phrases in a lowercased text; each
    distinct phrase counts once (a strong phrase weighs 1, a weak one 0.5)."""
    weight = 0.0
    strong = False
    phrases: list[str] = []
    for m in _BOILERPLATE_RE.finditer(low):
        phrase = " ".join(m.group(0).split())
        if phrase not in phrases:
            phrases.append(phrase)
            is_strong = m.group("strong") is not None
            strong |= is_strong
            weight += 1.0 if is_strong else 0.5
    return weight, strong, phrases


# symbols that prose rarely stacks in one word (not . , ; : ' " ( ) which quoting and abbreviations do)
_HARD_SYMBOLS = "!#$%&*+-/<=>?@[\\]^_`{|}~"
_HARD_SYMBOL_RE = re.compile(r"[!#$%&*+\-/<=>?@\[\\\]^_`{|}~]")
# hex-like words: "0x5c", "e580", "1a6a" (a digit and a hex letter, or the 0x prefix)
_HEX_WORD_RE = re.compile(r"(?<!\S)(?:0[xX][0-9a-fA-F]+"
                          r"|(?=[0-9a-fA-F]*[0-9])(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{4,})[,;.]?(?!\S)")
_LONG_TOKEN_RE = re.compile(r"(?<!\S)\S{20,}")
_BLOB_PIECE_RE = re.compile(r"[A-Za-z0-9+/=_-]{20,}")
# lower->upper and letter<->digit switches: base64 and hex digests switch all the time, CamelCase rarely
_CLASS_SWITCH_RE = re.compile(r"[a-z](?=[A-Z])|[A-Za-z](?=[0-9])|[0-9](?=[A-Za-z])")
_DIGIT_RE = re.compile(r"[0-9]")
_ID_SEP_RE = re.compile(r"[-_.]")
_HEX_PIECE_RE = re.compile(r"[0-9a-f]+|[0-9A-F]+")
# a letter repeated 4+ times: "aaaaaaaa", "hmmmmm" (runs of "-" / "=" / "!" are symbol noise instead)
_CHAR_RUN_RE = re.compile(r"([^\W\d_])\1{3,}")


_LETTER_WORD_RE = re.compile(r"[A-Za-z]{3,}")


def _is_code_run(run: str) -> bool:
    """A long run that is a synopsis or code ("[--disk=[auto-delete=AUTO-DELETE],[boot=BOOT]..."):
    mostly letters, made of several words. Encoded blobs are left to the blob test."""
    words = _LETTER_WORD_RE.findall(run)
    return len(words) >= 3 and sum(map(len, words)) >= 0.5 * len(run)


def _is_url(token: str) -> bool:
    return "://" in token or "www." in token.lower()

# a short multilingual stopword list: content tokens exclude these
_STOPWORDS = frozenset("""
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
# values that forms, exports and scrapers leave in a text field (compared lowercased, letters only)
_PLACEHOLDERS = frozenset((
    "null", "none", "nan", "nil", "na", "n a", "tbd", "tba", "todo", "to do", "fixme", "test", "testing",
    "placeholder", "untitled", "empty", "blank", "deleted", "removed", "draft", "wip", "tmp", "temp",
    "undefined", "lorem", "sample text", "xxx", "same", "same as above", "see above", "idk",
    "no description", "no description available", "description", "not available", "no comment",
    "no comments", "coming soon", "insert text here", "text here", "your text here", "add text",
))
_PLACEHOLDER_STRIP_RE = re.compile(r"[^a-z]+")
_NON_ASCII_LETTERS_RE = re.compile(r"[^a-z]")


def _is_gibberish(token: str) -> bool:
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


_TRIM_RE = re.compile(r"^[\"'(\[{<]+|[\"'),;:!?.\]}>]+$")


def _snip(s: str, n: int = 40) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[: n - 1] + "\u2026"


# ------------------------------------------------------------------------------------------------


@register
class CorruptedDetector(BatchDetector):
    """Flag text that cannot be read as intended; see the module docstring."""

    issue: ClassVar[str] = ISSUE
    name: ClassVar[str] = ISSUE
    description: ClassVar[str] = (
        "Broken text - empty rows, mojibake, HTML markup or page chrome around a fragment, symbol "
        "noise and encoded blobs, stubs, truncation and token spam - that wastes tokens and teaches "
        "the model junk."
    )
    extra_columns: ClassVar[dict[str, pa.DataType]] = {RULE_COL: pa.string()}
    adds: ClassVar[tuple[str, ...]] = (is_col(ISSUE), score_col(ISSUE), reason_col(ISSUE), RULE_COL)
    rules: ClassVar[tuple[str, ...]] = RULES

    def __init__(self, thresholds: CorruptedThresholds | None = None, **overrides: Any) -> None:
        self.t = thresholds_with(CorruptedThresholds, thresholds, overrides, ISSUE)
        t = self.t
        if t.max_chars < 1 or t.max_run_chars < 1:
            raise UimError(f"bad thresholds for detector '{ISSUE}'",
                           expected="max_chars >= 1 and max_run_chars >= 1",
                           got=f"max_chars={t.max_chars}, max_run_chars={t.max_run_chars}")
        # a non-space run longer than the threshold that is not CJK/Thai text
        self._long_run_re = re.compile(rf"[^\s{_NOSPACE_SCRIPTS}]{{{t.max_run_chars + 1},}}")

    @property
    def thresholds(self) -> dict[str, Any]:
        return asdict(self.t)

    # -- the stage -------------------------------------------------------------------------------

    def process(self, batch: pa.Table) -> pa.Table:
        ids = batch.column("id")
        if isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        texts = batch.column("text").to_pylist()
        n = len(texts)
        scores = np.ones(n, dtype=np.float64)
        reasons: list[str | None] = [None] * n
        rules: list[str | None] = [None] * n
        for i, text in enumerate(texts):
            rule, score, reason = self.check(text)
            scores[i] = score
            if rule is not None:
                rules[i] = rule
                reasons[i] = reason
        flagged = scores < 0.5
        return result_table(ISSUE, ids, flagged, scores, reasons,
                            extras={RULE_COL: pa.array(rules, pa.string())})

    def finish(self, table: pa.Table, texts: list[str | None]) -> pa.Table:
        """The ``truncated`` rule, calibrated on the corpus: see :meth:`truncated`."""
        if table.num_rows != len(texts) or not len(texts):
            return table
        flagged = table.column(is_col(ISSUE)).to_numpy(zero_copy_only=False)
        hits = self.truncated(texts, flagged)
        if not hits:
            return table
        score = table.column(score_col(ISSUE)).to_numpy(zero_copy_only=False).copy()
        reasons = table.column(reason_col(ISSUE)).to_pylist()
        rules = table.column(RULE_COL).to_pylist()
        flagged = flagged.copy()
        for i, reason in hits.items():
            flagged[i], score[i], reasons[i], rules[i] = True, min(score[i], 0.3), reason, "truncated"
        return result_table(ISSUE, table.column("id"), flagged, score, reasons,
                            extras={RULE_COL: pa.array(rules, pa.string())})

    def truncated(self, texts: list[str | None], flagged: np.ndarray | None = None) -> dict[int, str]:
        """Rows cut to a few characters, found against the corpus itself: ``{row: reason}``.

        A row is truncated when it is far shorter than the corpus's rows (its log length at least
        ``truncated_min_z`` robust standard deviations below the median), has at most
        ``truncated_max_chars`` characters and 2 words, and its last word stops inside a word: it is a
        proper prefix of a word that two or more rows of the corpus use, and no other row uses it as a
        word ("syste", "golan", "r-cra", "librec-d"). In a corpus of long documents (median >=
        ``truncated_long_median`` characters) a row under ``truncated_max_frac`` of the median length is
        truncated whatever its last word. Corpora under 50 rows are not judged.
        """
        t = self.t
        n = len(texts)
        lens = np.array([len(x.strip()) if x else 0 for x in texts], dtype=np.float64)
        ok = lens > 0
        if ok.sum() < 50:
            return {}
        logl = np.log(lens[ok])
        med = float(np.median(logl))
        mad = 1.4826 * float(np.median(np.abs(logl - med))) or 1e-9
        median_len = float(np.exp(med))
        z = np.zeros(n)
        z[ok] = (logl - med) / mad
        done = np.zeros(n, bool) if flagged is None else np.asarray(flagged, bool)
        cand = [i for i in np.flatnonzero(ok & ~done & (z <= -t.truncated_min_z))
                if lens[i] <= t.truncated_max_chars and len(texts[i].split()) <= 2]
        out: dict[int, str] = {}
        if median_len >= t.truncated_long_median:
            short = ok & ~done & (lens < t.truncated_max_frac * median_len) & (lens <= t.truncated_max_chars)
            for i in np.flatnonzero(short):
                out[int(i)] = (f"truncated: {int(lens[i])} character(s) {_snip(texts[i], 20)!r} where the "
                               f"corpus's median row has {median_len:,.0f}")
        cand = [i for i in cand if i not in out]
        if not cand:
            return out
        last = {i: _TRIM_RE.sub("", texts[i].split()[-1].lower()) for i in cand}
        wanted = {w for w in last.values() if w}
        # document frequency of the corpus's words (first 2,000 characters of each row)
        df: Counter[str] = Counter()
        for x in texts:
            if x:
                df.update({_TRIM_RE.sub("", w.lower()) for w in x[:2000].split()})
        vocab = sorted(df)
        for i in cand:
            w = last[i]
            if w not in wanted or df.get(w, 0) > 1:  # a word of the corpus (this row is one use)
                continue
            j = bisect.bisect_right(vocab, w)
            if j < len(vocab) and vocab[j].startswith(w) and len(vocab[j]) > len(w):
                out[int(i)] = (f"truncated: {_snip(texts[i], 20)!r} ({int(lens[i])} characters; the corpus's "
                               f"median row has {median_len:,.0f}) stops inside a word ({vocab[j]!r}...)")
        return out

    def summarize(self, table: pa.Table) -> dict[str, Any]:
        """Rows, flagged rows and the count per rule (``n_<rule>``, every rule present)."""
        n = table.num_rows
        counts = Counter(r for r in table.column(RULE_COL).to_pylist() if r is not None)
        flagged = sum(counts.values())
        out: dict[str, Any] = {"n_rows": n, "n_flagged": flagged,
                               "flag_rate": (flagged / n) if n else 0.0}
        out.update({f"n_{rule}": int(counts.get(rule, 0)) for rule in RULES})
        return out

    # -- one text --------------------------------------------------------------------------------

    def check(self, text: str | None) -> tuple[str | None, float, str | None]:
        """``(rule, score, reason)`` of one text; ``rule`` and ``reason`` are None when clean."""
        if text is None:
            return "empty", 0.0, "empty: text is null"
        if not text or text.isspace():
            return "empty", 0.0, "empty: text is empty or whitespace only"
        t = self.t
        s = text[: t.max_chars]
        low = s.lower()
        ascii_ = s.isascii()
        tokens = s.split()
        n_tok = len(tokens)
        nonspace = sum(map(len, tokens))
        if ascii_:
            letters = len(s) - len(s.translate(_DEL_ASCII_LETTERS))
            alpha_tokens = len(_ASCII_ALPHA_TOKEN_RE.findall(s))
            cjk = 0
        else:
            letters = len(_LETTER_RE.findall(s))
            alpha_tokens = len(_ALPHA_TOKEN_RE.findall(s))
            cjk = len(_CJK_RE.findall(s))

        best_rule: str | None = None
        best_score = 1.0
        best_reason: str | None = None

        # each rule: (score, reason-or-None); the reason is only built for a flagged rule
        for rule, (score, reason) in (
            ("mojibake", self._mojibake(s, ascii_)),
            ("markup", self._markup(s, low, n_tok)),
            ("boilerplate", self._boilerplate(low, n_tok)),
            ("symbols", self._symbols(s, tokens, nonspace, letters, alpha_tokens, cjk)),
            ("stub", self._stub(tokens, alpha_tokens, letters, cjk)),
            ("repetition", self._repetition(s, low, tokens, nonspace)),
        ):
            if score < best_score:
                best_rule, best_score, best_reason = rule, score, reason
        if best_score >= 0.5:
            return None, best_score, None
        return best_rule, best_score, best_reason

    # -- the rules: each returns (sub-score, reason when the sub-score is < 0.5) ------------------

    def _mojibake(self, s: str, ascii_: bool) -> tuple[float, str | None]:
        t = self.t
        bad_chars = _BAD_CHAR_RE.findall(s)
        n_ftfy = 0
        example = ""
        if not ascii_:
            m = BADNESS_RE.search(s)
            if m is not None:
                lo, hi = max(0, m.start() - 200), m.end() + 200
                window = s[lo:hi]
                fixed = ftfy.fix_encoding(window)
                if fixed != window:
                    n_ftfy = len(BADNESS_RE.findall(s))
                    # the word around the first bad sequence, before and after repair
                    a = max(s.rfind(" ", max(0, m.start() - 20), m.start()) + 1, m.start() - 20, 0)
                    b = s.find(" ", m.end(), m.end() + 20)
                    word = s[a:b if b >= 0 else m.end() + 20]
                    example = f"{word!r} sequences (ftfy: {ftfy.fix_encoding(word)!r})"
        bad = n_ftfy + len(bad_chars)
        score = _above(bad, t.max_bad_chars)
        if score >= 0.5:
            return score, None
        if n_ftfy:
            return score, f"mojibake: {example}, text decoded with the wrong codec"
        n_fffd = bad_chars.count("\ufffd")
        if n_fffd:
            return score, f"mojibake: {n_fffd} U+FFFD replacement character(s), bytes lost in decoding"
        kinds = sorted({f"U+{ord(c):04X}" for c in bad_chars})[:3]
        return score, f"mojibake: {len(bad_chars)} control character(s) ({', '.join(kinds)})"

    def _markup(self, s: str, low: str, n_tok: int) -> tuple[float, str | None]:
        if _MARKUP_HINT_RE.search(low) is None:
            return 1.0, None
        hits: list[str] = []
        for m in _MARKUP_RE.finditer(s):
            tag = m.group("open")
            # a bare <label>, <title>, <option> is a placeholder in a synopsis unless it is closed too
            if tag is not None and f"</{tag.lower()}" not in low:
                continue
            hits.append(m.group(0))
        if len(hits) < self.t.min_markup_hits:  # one "&gt;" in a docstring about entities is not markup
            return 1.0, None
        density = len(hits) * 100.0 / max(100, n_tok)
        score = _above(density, self.t.max_markup_per_100_words)
        if score >= 0.5:
            return score, None
        return score, f"markup: {len(hits)} HTML/XML/wiki fragment(s), e.g. {_snip(hits[0], 30)!r}"

    def _boilerplate(self, low: str, n_tok: int) -> tuple[float, str | None]:
        """Page chrome: navigation / cookie / share / copyright lines that make up much of the text
        (a page's frame around a fragment of content). The density is per actual word, so one
        copyright line in a long document is not chrome (``low_quality`` judges lighter doses)."""
        weight, strong, phrases = boilerplate_phrases(low)
        if not weight:
            return 1.0, None
        density = weight * 100.0 / max(1, n_tok)
        score = _above(density, self.t.max_chrome_per_100_words)
        if not strong and weight < 1.5:  # two weak phrases ("log in", "sign up") are a login tool's text
            score = max(score, 0.5)
        if score >= 0.5:
            return score, None
        shown = ", ".join(repr(p) for p in phrases[:3])
        return score, f"boilerplate: page chrome {shown} is {density:.0f} phrase(s) per 100 words"

    def _symbols(self, s: str, tokens: list[str], nonspace: int, letters: int, alpha_tokens: int,
                 cjk: int) -> tuple[float, str | None]:
        t = self.t
        if nonspace < t.symbols_min_chars:
            return 1.0, None
        n_tok = len(tokens)
        alpha_frac = letters / nonspace
        cands: list[tuple[float, int]] = [(_below(alpha_frac, t.min_alpha_frac), 0)]
        nonalpha_frac = 0.0
        if n_tok >= 4:
            # hex-like words need a digit (or the 0x prefix): skip the regex for digit-free texts
            hexlike = len(_HEX_WORD_RE.findall(s)) if _DIGIT_RE.search(s) else 0
            nonalpha_frac = (n_tok - alpha_tokens + hexlike) / n_tok
            cands.append((_above(nonalpha_frac, t.max_nonalpha_word_frac), 1))
        longest, run = 0, ""
        if nonspace > t.max_run_chars:
            for m in self._long_run_re.finditer(s):
                g = m.group(0)
                if len(g) > longest and not _is_url(g) and not _is_code_run(g):
                    longest, run = len(g), g
            if longest:
                cands.append((_above(longest, t.max_run_chars), 2))
        noise = self._noise_tokens(s, tokens)
        if noise and n_tok >= t.long_min_words and sum(map(len, noise)) < t.min_noise_char_frac * nonspace:
            noise = []  # a digest or a regex quoted in a document, not a document made of noise
        if noise:
            density = len(noise) * 100.0 / max(100, n_tok)
            cands.append((_above(density, t.max_noise_tokens_per_100_words), 3))
        score, which = min(cands)
        if score >= 0.5:
            return score, None
        if which == 0:
            return score, f"symbols: only {alpha_frac:.0%} of non-space characters are letters"
        if which == 1:
            return score, f"symbols: {nonalpha_frac:.0%} of words are numbers, codes or symbols"
        if which == 2:
            return score, f"symbols: unbroken {longest}-character run {_snip(run, 24)!r} (encoded blob?)"
        return score, (f"symbols: {len(noise)} noise token(s) (symbol runs / encoded blobs), "
                       f"e.g. {_snip(noise[0], 24)!r}")

    @staticmethod
    def _noise_tokens(s: str, tokens: list[str]) -> list[str]:
        """Words that are symbol noise ("#$%@!&*") or encoded blobs (base64, hex digests)."""
        noise: list[str] = []
        if len(_HARD_SYMBOL_RE.findall(s)) >= 5:
            for tok in tokens:
                if len(tok) >= 5:
                    hard = [c for c in tok if c in _HARD_SYMBOLS]
                    # "[--children-max=]", "$iter->append_boolean(" are code: a word in the symbols
                    if (len(hard) >= 5 and len(set(hard)) >= 4 and not _is_url(tok)
                            and len(_LETTER_RE.findall(tok)) < 0.3 * len(tok)):
                        noise.append(tok)
        for m in _LONG_TOKEN_RE.finditer(s):
            tok = m.group(0)
            if _is_url(tok) or tok in noise:
                continue
            for piece in _BLOB_PIECE_RE.findall(tok):
                # identifiers ("lib64ubsan1-i386-cross") are short parts between separators; a long
                # all-lowercase one ("libqt6quick3druntimerender6") is a name unless it is all hex
                piece = max(_ID_SEP_RE.split(piece), key=len)
                if len(piece) < 16 or len(_DIGIT_RE.findall(piece)) < 2:
                    continue
                hexlike = _HEX_PIECE_RE.fullmatch(piece) is not None and not piece.isdigit()
                mixed = piece.lower() != piece and piece.upper() != piece
                if ((hexlike or mixed)
                        and len(_CLASS_SWITCH_RE.findall(piece)) >= max(4, len(piece) // 6)):
                    noise.append(tok)
                    break
        return noise

    def _stub(self, tokens: list[str], alpha_tokens: int, letters: int,
              cjk: int) -> tuple[float, str | None]:
        t = self.t
        words = alpha_tokens + (cjk - 1) // 2 if cjk > 1 else alpha_tokens
        score = min(_below(words, t.min_words), _below(letters, t.min_letters))
        if score >= 0.5:
            if t.flag_placeholders and len(tokens) == 1 and _is_url(tokens[0]):
                return 0.3, f"stub: a bare URL {_snip(tokens[0], 30)!r}"
            if t.flag_placeholders and words <= 3 and len(tokens) <= 3:
                if _PLACEHOLDER_STRIP_RE.sub(" ", " ".join(tokens).lower()).strip() in _PLACEHOLDERS:
                    return 0.3, f"stub: a placeholder value {_snip(' '.join(tokens), 20)!r}"
                if len(tokens) == 1 and _is_gibberish(tokens[0]):
                    # 0.3: a letter run ("aaaaaaaa", 0.25) is reported as repetition
                    return 0.3, f"stub: a single non-word {_snip(tokens[0], 20)!r}"
            return score, None
        return score, f"stub: too short to carry meaning ({words} word(s), {letters} letter(s))"

    def _repetition(self, s: str, low: str, tokens: list[str],
                    nonspace: int) -> tuple[float, str | None]:
        t = self.t
        if nonspace >= 10:
            # letter runs: "aaaaaaaa", "hmmmmmmmmm", "哈哈哈哈哈哈"
            runs = [m.group(0) for m in _CHAR_RUN_RE.finditer(s)]
            if runs:
                frac = sum(map(len, runs)) / nonspace
                score = _above(frac, t.max_char_run_frac)
                if score < 0.5:
                    return score, (f"repetition: character runs cover {frac:.0%} of the text "
                                   f"(e.g. {_snip(max(runs, key=len), 16)!r})")
        if len(tokens) < 4:
            return 1.0, None
        if len(tokens) >= t.long_min_words:
            return self._repetition_long(s, tokens)
        # whitespace words without their punctuation: code ("read_long4(io.BytesIO(b'\\x02\\x00'))") is
        # one word per token, not a spam of "x00"
        words = [w for w in (_TRIM_RE.sub("", w) for w in low.split()) if w]
        n = len(words)
        if n < 4:
            return 1.0, None
        counts = Counter(words)
        ratio = len(counts) / n
        score = _below(ratio, t.min_unique_ratio)
        content = [w for w in words if w not in _STOPWORDS]
        c_ratio = 1.0
        if len(content) >= 6:
            c_ratio = len(set(content)) / len(content)
            score = min(score, _below(c_ratio, t.min_unique_content_ratio))
        if score >= 0.5:
            return score, None
        top, k = counts.most_common(1)[0]
        if content:
            ctop, ck = Counter(content).most_common(1)[0]
            if ck >= k / 2:
                top, k = ctop, ck
        return score, (f"repetition: only {min(ratio, c_ratio):.0%} of tokens are unique "
                       f"({top!r} x{k})")

    def _repetition_long(self, s: str, words: list[str]) -> tuple[float, str | None]:
        """Token spam in a long text: most of it is repeated 5-grams or repeated lines."""
        st = repetition_stats(s, words, top=False, max_n=5)
        frac, what = max((st.dup_ngram_frac[0], "repeated 5-grams"), (st.dup_line_char_frac, "repeated lines"))
        score = _above(frac, self.t.max_spam_frac)
        if score >= 0.5:
            return score, None
        return score, f"repetition: {what} cover {frac:.0%} of the text"


@dataclass
class RepetitionStats:
    """Gopher's repetition statistics of one text (Rae et al. 2021, table A1)."""

    #: character fraction covered by the most frequent 2-, 3-, 4-gram (all its occurrences)
    top_ngram_frac: list[float]
    #: the most frequent 2-, 3-, 4-gram and its count
    top_ngram: list[tuple[str, int]]
    #: character fraction covered by the repeats of duplicated 5..10-grams (fewer when ``max_n`` < 10)
    dup_ngram_frac: list[float]
    #: characters in duplicated lines / all line characters (0 below 3 lines)
    dup_line_char_frac: float
    #: duplicated lines / lines
    dup_line_frac: float


def repetition_stats(s: str, words: list[str], top: bool = True, max_n: int = 10) -> RepetitionStats:
    """Gopher's repetition statistics over whitespace words (as in datatrove's
    GopherRepetitionFilter): the top 2/3/4-gram counts all its occurrences; duplicated 5..10-grams
    and duplicated lines count only the repeats (not the first occurrence), without double-counting
    overlaps. Linear in the number of words (hashing and sorting per n)."""
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(w, len(vocab)) for w in words), dtype=np.uint64, count=len(words))
    lens = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
    total = float(max(1, lens.sum()))
    n = len(words)
    top_frac, top_gram = [0.0, 0.0, 0.0], [("", 0)] * 3
    dup = [0.0] * (max_n - 4)
    csum = np.concatenate(([0], np.cumsum(lens)))
    h = np.zeros(n, dtype=np.uint64)
    mult = np.uint64(0x9E3779B97F4A7C15)
    for k in range(1, max_n + 1):
        m = n - k + 1
        if m < 2:
            break
        # polynomial hash of the k-gram starting at each position (wraps mod 2**64)
        h = h[:m] * mult + ids[k - 1:k - 1 + m] + np.uint64(1)
        if k < 2 or (k <= 4 and not top):
            continue
        _, first, inv, cnt = np.unique(h, return_index=True, return_inverse=True, return_counts=True)
        inv = inv.reshape(-1)
        if k <= 4:
            j = int(cnt.argmax())
            if cnt[j] >= 2:
                pos = int(first[j])
                top_frac[k - 2] = min(1.0, cnt[j] * float(csum[pos + k] - csum[pos]) / total)
                top_gram[k - 2] = (" ".join(words[pos:pos + k]), int(cnt[j]))
        else:
            rep = np.flatnonzero(first[inv] != np.arange(m))
            if not len(rep):
                break  # no k-gram repeats, so no longer one does either
            delta = np.bincount(rep, minlength=n + 1) - np.bincount(rep + k, minlength=n + 1)
            covered = np.cumsum(delta)[:n] > 0
            dup[k - 5] = float(lens[covered].sum()) / total
    lines = [ln.strip() for ln in s.splitlines()]
    lines = [ln for ln in lines if ln]
    dup_chars = dup_lines = 0
    if len(lines) >= 3:
        seen: set[str] = set()
        for ln in lines:
            if ln in seen:
                dup_chars += len(ln)
                dup_lines += 1
            else:
                seen.add(ln)
    return RepetitionStats(top_frac, top_gram, dup, dup_chars / max(1, sum(map(len, lines))),
                           dup_lines / max(1, len(lines)))
