"""The per-text rules of ``corrupted``: pure functions of one text's :class:`TextStats` and the thresholds.

Each rule returns ``(sub-score, reason)``: the sub-score maps the rule's statistic through its
threshold so that the threshold lands on 0.5 (:mod:`uimdata.detectors.scoring`), and the reason is
built only when the sub-score is below 0.5. :func:`check_text` runs them all on one text and keeps
the worst; :func:`check_texts` does so for a batch, its character scans and token-spam statistics
computed for all the texts at once. What each rule flags, and why technical text is not noise:
:mod:`uimdata.detectors.corrupted`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import ftfy

from uimdata.detectors.lexicon import (
    BAD_CHAR_RE,
    BADNESS_RE,
    BADNESS_WIDTH,
    BLOB_PIECE_RE,
    CLASS_SWITCH_RE,
    DIGIT_RE,
    DIGIT_RUN_RE,
    HARD_SYMBOLS,
    HEX_PIECE_RE,
    ID_SEP_RE,
    ID_TOKEN_RE,
    LETTER_RE,
    MARKUP_HINT_RE,
    PLACEHOLDER_MAX_WORDS,
    PLACEHOLDER_STRIP_RE,
    PLACEHOLDERS,
    STOPWORDS,
    TRIM_RE,
    boilerplate_phrases,
    is_code_run,
    is_gibberish,
    is_url,
    markup_matches,
)
from uimdata.detectors.scoring import above, below, per_100_words, snip
from uimdata.detectors.text_stats import (
    TextStats,
    batch_slices,
    boilerplate_for_all,
    codepoints_for_all,
    repetition_for_all,
    stats_of,
)

#: a rule's sub-score and, when it is below 0.5, the reason
RuleResult = tuple[float, str | None]

#: the score of a row caught by a pattern rather than a threshold (placeholder, bare URL, truncated)
PATTERN_SCORE = 0.3
#: ftfy confirms a suspected mojibake on this many characters either side of the first bad sequence
FTFY_WINDOW = 200
#: the n of the repeated n-grams that make token spam in a long text
SPAM_NGRAM = 5


@dataclass(frozen=True)
class CorruptedThresholds:
    """The thresholds of :class:`~uimdata.detectors.corrupted.CorruptedDetector`; every field is a
    constructor keyword.

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
    #: boilerplate: without a strong phrase, weak ones ("log in", "sign up") are chrome only from this
    #: weight on (two weak phrases are a login tool's text)
    min_weak_chrome_weight: float = 1.5
    #: symbols: texts with fewer non-space characters are left to the ``stub`` rule
    symbols_min_chars: int = 5
    #: symbols: alphabetic characters among non-space characters (a doctest full of numbers has 0.39)
    min_alpha_frac: float = 0.25
    #: symbols: words without any letter (or hex-like: "0x5c", "e580"), for texts of at least
    #: ``nonalpha_min_words`` words
    max_nonalpha_word_frac: float = 0.7
    nonalpha_min_words: int = 4
    #: symbols: longest run of non-space characters (URLs and CJK/Thai text are exempt)
    max_run_chars: int = 100
    #: symbols: noise tokens per 100 words - a word with >= ``noise_min_symbols`` symbols of >=
    #: ``noise_min_symbol_kinds`` kinds ("#$%@!&*", "{^*$"!~") or an encoded blob (a base64 / hex piece
    #: of >= 20 characters that switches between digits, lower and upper case all the time)
    max_noise_tokens_per_100_words: float = 0.5
    noise_min_symbols: int = 5
    noise_min_symbol_kinds: int = 4
    #: symbols: a symbol-noise word has fewer letters than this share of its characters ("[--children-max=]"
    #: and "$iter->append_boolean(" are code)
    noise_max_letter_frac: float = 0.3
    #: symbols: an encoded blob's longest part between "-", "_", "." has at least this many characters
    #: (shorter parts are identifiers: "lib64ubsan1-i386-cross") and ``blob_min_digits`` digits
    blob_min_chars: int = 16
    blob_min_digits: int = 2
    #: symbols: ... and at least max(``blob_min_switches``, length / ``blob_chars_per_switch``) switches
    #: between lower case, upper case and digits (CamelCase names switch rarely)
    blob_min_switches: int = 4
    blob_chars_per_switch: int = 6
    #: symbols: the letter-share and letter-less-word rules do not fire when this share of the words
    #: without a majority of letters are identifiers (a letter prefix and digits: "CVE-2026-118331")
    id_list_min_share: float = 0.8
    #: symbols: a hex piece of at most this many digits is a digest or a fingerprint quoted as an identifier
    #: (git commits 40, SHA-256 64: "New upstream snapshot 62b59ea8b734..."), not an encoded blob
    digest_max_hex: int = 64
    #: symbols: in texts of at least ``noise_share_min_words`` words, noise tokens must also hold this share
    #: of the non-space characters (an MD5 digest or a regular expression quoted in a manual is not, nor
    #: ``b'-!*+/'`` in a 25-word Python function)
    min_noise_char_frac: float = 0.05
    noise_share_min_words: int = 20
    #: stub: words that contain a letter (two CJK characters count as one word). One real word is
    #: kept (0.7 % of WordNet's clean glosses are one word: "goldfish"); set 2 to flag those too.
    min_words: int = 1
    #: stub: letters in the whole text ("ok", "n/a", "..." have fewer)
    min_letters: int = 4
    #: stub: a one-word text that looks like keyboard mash ("asdf", "qwerty", "hjkl", "zzzz"), a
    #: placeholder value ("null", "N/A", "TODO", "[deleted]", "no description", "lorem") or a bare URL
    flag_placeholders: bool = True
    #: repetition: characters in runs of >= 4 identical letters, for texts of >= ``char_run_min_chars``
    #: non-space characters ("aaaaaaaa", "hmmmmmmmm")
    max_char_run_frac: float = 0.5
    char_run_min_chars: int = 10
    #: repetition: texts with at least this many tokens are token spam when repeated 5-grams or lines
    #: cover most of them, shorter ones when few tokens are unique (a 60-word docstring with doctests
    #: repeats its class name)
    long_min_words: int = 30
    #: repetition (short texts): unique tokens / tokens, for texts of at least ``unique_min_words`` tokens
    min_unique_ratio: float = 0.4
    unique_min_words: int = 4
    #: repetition (short texts): unique / all content (non-stopword) tokens, when there are at least
    #: ``unique_content_min_words``
    min_unique_content_ratio: float = 0.4
    unique_content_min_words: int = 6
    #: truncated (corpus-calibrated): texts of at most this many characters and ``truncated_max_words``
    #: words whose last word stops inside a word of the corpus ("syste" of "system", "librec-d" of
    #: "librec-dev")
    truncated_max_chars: int = 16
    truncated_max_words: int = 2
    #: truncated: ... and whose log length is this many robust standard deviations (median / 1.4826
    #: MAD of the corpus's log lengths) below the corpus median
    truncated_min_z: float = 2.0
    #: truncated: a text of at most ``truncated_max_chars`` and shorter than this fraction of the
    #: corpus's median length, in a corpus whose median row has at least ``truncated_long_median``
    #: characters (documents, not titles or glosses), is cut whatever its last word
    truncated_max_frac: float = 0.1
    truncated_long_median: int = 100
    #: truncated: a one-word text of at most ``truncated_max_chars`` that is ``truncated_min_z`` below
    #: the median is a stub ("Java", "PROFILING", "gstreamer" among package descriptions) where at
    #: most this share of the corpus's rows are one word (0.0 % of every clean corpus measured; the
    #: planted defects of the benchmarks make 0.5 %); in a corpus of names or tags it says nothing
    one_word_max_share: float = 0.02
    #: truncated: corpora with fewer non-empty rows are not judged
    truncated_min_rows: int = 50
    #: truncated: the corpus's words are read from the first this many characters of each row
    truncated_vocab_chars: int = 2000
    #: repetition (long texts): token spam = the characters in repeated 5-grams or in repeated lines
    #: cover more than this share of the text (Gopher's low-quality thresholds, 0.15 and 0.2, are
    #: ``low_quality``'s business: a manual repeats its option names)
    max_spam_frac: float = 0.5


def check_text(text: str | None, t: CorruptedThresholds) -> tuple[str | None, float, str | None]:
    """``(rule, score, reason)`` of one text; ``rule`` and ``reason`` are None when clean. Ties
    between equal sub-scores go to the earlier rule."""
    return _check(text, stats_of(text, t.max_chars), t)


def check_texts(texts: list[str | None], t: CorruptedThresholds,
                cache: dict | None = None) -> list[tuple[str | None, float, str | None]]:
    """:func:`check_text` of each text; the long texts' code points, token-spam statistics and
    boilerplate candidates are computed for many texts at once. ``cache``: the texts' statistics
    shared with the other detectors of a pass (:func:`~uimdata.detectors.text_stats.stats_of`)."""
    out: list[tuple[str | None, float, str | None]] = []
    spam = max(t.long_min_words, t.unique_min_words)  # token_spam's texts
    for part in batch_slices(texts, t.max_chars):
        stats = [stats_of(text, t.max_chars, cache) for text in texts[part]]
        present = [st for st in stats if st is not None]
        codepoints_for_all(present)
        boilerplate_for_all(present)
        repetition_for_all([st for st in present if st.n_tokens >= spam], top=False, max_n=SPAM_NGRAM)
        out.extend(_check(text, st, t) for text, st in zip(texts[part], stats))
    return out


def _check(text: str | None, st: TextStats | None, t: CorruptedThresholds) -> tuple[str | None, float, str | None]:
    """:func:`check_text` of a text and its statistics (None when the text is empty)."""
    if st is None:
        return "empty", 0.0, ("empty: text is null" if text is None else "empty: text is empty or whitespace only")
    best_rule: str | None = None
    best_score = 1.0
    best_reason: str | None = None
    for rule, (score, reason) in (
        ("mojibake", mojibake(st, t)),
        ("markup", markup(st, t)),
        ("boilerplate", boilerplate(st, t)),
        ("symbols", symbols(st, t)),
        ("stub", stub(st, t)),
        ("repetition", repetition(st, t)),
    ):
        if score < best_score:
            best_rule, best_score, best_reason = rule, score, reason
    if best_score >= 0.5:
        return None, best_score, None
    return best_rule, best_score, best_reason


def mojibake(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """Bad sequences: ftfy-repairable mojibake, U+FFFD, control characters."""
    s = st.text
    bad_chars = BAD_CHAR_RE.findall(s)
    n_ftfy = 0
    example = ""
    if not st.is_ascii:
        m = st.search_nonascii(BADNESS_RE, BADNESS_WIDTH)
        if m is not None:
            window = s[max(0, m.start() - FTFY_WINDOW):m.end() + FTFY_WINDOW]
            if ftfy.fix_encoding(window) != window:
                n_ftfy = len(BADNESS_RE.findall(s))
                # the word around the first bad sequence, before and after repair
                a = max(s.rfind(" ", max(0, m.start() - 20), m.start()) + 1, m.start() - 20, 0)
                b = s.find(" ", m.end(), m.end() + 20)
                word = s[a:b if b >= 0 else m.end() + 20]
                example = f"{word!r} sequences (ftfy: {ftfy.fix_encoding(word)!r})"
    score = above(n_ftfy + len(bad_chars), t.max_bad_chars)
    if score >= 0.5:
        return score, None
    if n_ftfy:
        return score, f"mojibake: {example}, text decoded with the wrong codec"
    n_fffd = bad_chars.count("\ufffd")
    if n_fffd:
        return score, f"mojibake: {n_fffd} U+FFFD replacement character(s), bytes lost in decoding"
    kinds = sorted({f"U+{ord(c):04X}" for c in bad_chars})[:3]
    return score, f"mojibake: {len(bad_chars)} control character(s) ({', '.join(kinds)})"


def markup(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """HTML/XML elements, entities, wiki and BBCode fragments per 100 words."""
    low = st.low
    if MARKUP_HINT_RE.search(low) is None:
        return 1.0, None
    hits: list[str] = []
    for fragment, tag, quoted in markup_matches(st.text):
        if quoted:  # s.replace("&", "&amp;"): a literal in code, mentioned, not markup
            continue
        # a bare <label>, <title>, <option> is a placeholder in a synopsis unless it is closed too
        if tag is not None and f"</{tag.lower()}" not in low:
            continue
        hits.append(fragment)
    if len(hits) < t.min_markup_hits:  # one "&gt;" in a docstring about entities is not markup
        return 1.0, None
    score = above(per_100_words(len(hits), st.n_tokens), t.max_markup_per_100_words)
    if score >= 0.5:
        return score, None
    return score, f"markup: {len(hits)} HTML/XML/wiki fragment(s), e.g. {snip(hits[0], 30)!r}"


def boilerplate(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """Page chrome: navigation / cookie / share / copyright lines that make up much of the text
    (a page's frame around a fragment of content). The density is per actual word, so one
    copyright line in a long document is not chrome (``low_quality`` judges lighter doses)."""
    weight, strong, phrases = boilerplate_phrases(st.low, matches=st.boilerplate_matches())
    if not weight:
        return 1.0, None
    density = weight * 100.0 / max(1, st.n_tokens)
    score = above(density, t.max_chrome_per_100_words)
    if not strong and weight < t.min_weak_chrome_weight:
        score = max(score, 0.5)
    if score >= 0.5:
        return score, None
    shown = ", ".join(repr(p) for p in phrases[:3])
    return score, f"boilerplate: page chrome {shown} is {density:.0f} phrase(s) per 100 words"


def symbols(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """Symbol / digit noise: few letters, many words without one, long unbroken runs, noise tokens."""
    nonspace = st.nonspace
    if nonspace < t.symbols_min_chars:
        return 1.0, None
    n_tok = st.n_tokens
    alpha_frac = st.letters / nonspace
    cands: list[tuple[float, int]] = [(below(alpha_frac, t.min_alpha_frac), 0)]
    nonalpha_frac = 0.0
    if n_tok >= t.nonalpha_min_words:
        nonalpha_frac = (n_tok - st.alpha_tokens + st.hex_words()) / n_tok
        cands.append((above(nonalpha_frac, t.max_nonalpha_word_frac), 1))
    longest, run = 0, ""
    if nonspace > t.max_run_chars:
        for g in st.long_runs(t.max_run_chars):
            if len(g) > longest and not is_url(g) and not is_code_run(g):
                longest, run = len(g), g
        if longest:
            cands.append((above(longest, t.max_run_chars), 2))
    noise = noise_tokens(st, t)
    if noise and n_tok >= t.noise_share_min_words and sum(map(len, noise)) < t.min_noise_char_frac * nonspace:
        noise = []  # a digest or a regex quoted in a document, not a document made of noise
    if noise:
        cands.append((above(per_100_words(len(noise), n_tok), t.max_noise_tokens_per_100_words), 3))
    score, which = min(cands)
    if score < 0.5 and which in (0, 1) and _mostly_identifiers(st, t):
        cands = [c for c in cands if c[1] not in (0, 1)] or [(1.0, 0)]
        score, which = min(cands)
    if score >= 0.5:
        return score, None
    if which == 0:
        return score, f"symbols: only {alpha_frac:.0%} of non-space characters are letters"
    if which == 1:
        return score, f"symbols: {nonalpha_frac:.0%} of words are numbers, codes or symbols"
    if which == 2:
        return score, f"symbols: unbroken {longest}-character run {snip(run, 24)!r} (encoded blob?)"
    return score, (f"symbols: {len(noise)} noise token(s) (symbol runs / encoded blobs), "
                   f"e.g. {snip(noise[0], 24)!r}")


def _mostly_identifiers(st: TextStats, t: CorruptedThresholds) -> bool:
    """The text's letter-poor words are identifiers ("CVE-2026-118331", "RFC-2616", "bug#961860"): at
    least ``id_list_min_share`` of its words with a digit or a letter but without a majority of letters
    (bullets and dashes do not count) are a letter prefix followed by digits. A changelog's list of
    security fixes is terse, not noise."""
    poor = [w for w in st.tokens if 2 * len(LETTER_RE.findall(w)) < len(w) and any(c.isalnum() for c in w)]
    return bool(poor) and sum(1 for w in poor if ID_TOKEN_RE.fullmatch(w.strip(".,;:()[]"))) \
        >= t.id_list_min_share * len(poor)


def noise_tokens(st: TextStats, t: CorruptedThresholds) -> list[str]:
    """Words that are symbol noise ("#$%@!&*") or encoded blobs (base64, hex digests)."""
    noise: list[str] = []
    for tok in st.symbol_tokens(t.noise_min_symbols):
        # "[--children-max=]", "$iter->append_boolean(" are code: a word in the symbols
        if (len({c for c in tok if c in HARD_SYMBOLS}) >= t.noise_min_symbol_kinds and not is_url(tok)
                and len(LETTER_RE.findall(tok)) < t.noise_max_letter_frac * len(tok)):
            noise.append(tok)
    for tok in st.long_tokens(20, min_digits=t.blob_min_digits):  # a blob has digits
        if is_url(tok) or tok in noise:
            continue
        for piece in BLOB_PIECE_RE.findall(tok):
            if _is_blob(piece, t):
                noise.append(tok)
                break
    return noise


def _is_blob(piece: str, t: CorruptedThresholds) -> bool:
    """A base64 / hex piece. Identifiers ("lib64ubsan1-i386-cross") are short parts between
    separators; a long all-lowercase one ("libqt6quick3druntimerender6") is a name unless it is all hex;
    a hex digest or key fingerprint (up to ``digest_max_hex`` digits: a git commit, a SHA-256) is an
    identifier too, and so is a mixed-case name whose digits come in one group ("XF86VidModeGetMonitor")."""
    piece = max(ID_SEP_RE.split(piece), key=len)
    if len(piece) < t.blob_min_chars or len(DIGIT_RE.findall(piece)) < t.blob_min_digits:
        return False
    hexlike = HEX_PIECE_RE.fullmatch(piece) is not None and not piece.isdigit()
    if hexlike and len(piece) <= t.digest_max_hex:
        return False
    mixed = (piece.lower() != piece and piece.upper() != piece
             and len(DIGIT_RUN_RE.findall(piece)) >= 2)
    return ((hexlike or mixed) and len(CLASS_SWITCH_RE.findall(piece))
            >= max(t.blob_min_switches, len(piece) // t.blob_chars_per_switch))


def stub(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """Too short to carry meaning; a placeholder value, a bare URL or keyboard mash."""
    tokens, words, letters = st.tokens, st.words, st.letters
    score = min(below(words, t.min_words), below(letters, t.min_letters))
    if score >= 0.5:
        if t.flag_placeholders and len(tokens) == 1 and is_url(tokens[0]):
            return PATTERN_SCORE, f"stub: a bare URL {snip(tokens[0], 30)!r}"
        if t.flag_placeholders and words <= PLACEHOLDER_MAX_WORDS and len(tokens) <= PLACEHOLDER_MAX_WORDS:
            if PLACEHOLDER_STRIP_RE.sub(" ", " ".join(tokens).lower()).strip() in PLACEHOLDERS:
                return PATTERN_SCORE, f"stub: a placeholder value {snip(' '.join(tokens), 20)!r}"
            if len(tokens) == 1 and is_gibberish(tokens[0]):
                # a letter run ("aaaaaaaa", 0.25) scores lower and is reported as repetition
                return PATTERN_SCORE, f"stub: a single non-word {snip(tokens[0], 20)!r}"
        return score, None
    return score, f"stub: too short to carry meaning ({words} word(s), {letters} letter(s))"


def repetition(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """Letter runs; token spam in a long text; few unique words in a short one."""
    if st.nonspace >= t.char_run_min_chars:
        # letter runs: "aaaaaaaa", "hmmmmmmmmm", "哈哈哈哈哈哈"
        runs = st.letter_runs()
        if runs:
            frac = sum(map(len, runs)) / st.nonspace
            score = above(frac, t.max_char_run_frac)
            if score < 0.5:
                return score, (f"repetition: character runs cover {frac:.0%} of the text "
                               f"(e.g. {snip(max(runs, key=len), 16)!r})")
    if st.n_tokens < t.unique_min_words:
        return 1.0, None
    if st.n_tokens >= t.long_min_words:
        return token_spam(st, t)
    return few_unique(st, t)


def token_spam(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """Token spam in a long text: most of it is repeated 5-grams or repeated lines."""
    rs = st.repetition(top=False, max_n=SPAM_NGRAM)
    frac, what = max((rs.dup_ngram_frac[0], "repeated 5-grams"), (rs.dup_line_char_frac, "repeated lines"))
    score = above(frac, t.max_spam_frac)
    if score >= 0.5:
        return score, None
    return score, f"repetition: {what} cover {frac:.0%} of the text"


def few_unique(st: TextStats, t: CorruptedThresholds) -> RuleResult:
    """Few unique words (or content words) in a short text."""
    # whitespace words without their punctuation: code ("read_long4(io.BytesIO(b'\\x02\\x00'))") is
    # one word per token, not a spam of "x00"
    words = [w for w in (TRIM_RE.sub("", w) for w in st.low.split()) if w]
    n = len(words)
    if n < t.unique_min_words:
        return 1.0, None
    counts = Counter(words)
    ratio = len(counts) / n
    score = below(ratio, t.min_unique_ratio)
    content = [w for w in words if w not in STOPWORDS]
    c_ratio = 1.0
    if len(content) >= t.unique_content_min_words:
        c_ratio = len(set(content)) / len(content)
        score = min(score, below(c_ratio, t.min_unique_content_ratio))
    if score >= 0.5:
        return score, None
    top, k = counts.most_common(1)[0]
    if content:
        ctop, ck = Counter(content).most_common(1)[0]
        if ck >= k / 2:
            top, k = ctop, ck
    return score, f"repetition: only {min(ratio, c_ratio):.0%} of tokens are unique ({top!r} x{k})"
