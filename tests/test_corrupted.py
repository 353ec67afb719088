"""uimdata.detectors.corrupted: planted broken text is flagged with the right rule, clean text is not."""

from __future__ import annotations

import base64
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from uimdata.detectors import REGISTRY, get
from uimdata.detectors.base import is_col, reason_col, score_col
from uimdata.detectors.corrupted import RULE_COL, RULES, CorruptedDetector
from uimdata.errors import UimError

GLOSSES = Path(__file__).resolve().parents[1] / "uimdata" / "data" / "wordnet" / "glosses.parquet"


@pytest.fixture(scope="module")
def det() -> CorruptedDetector:
    return CorruptedDetector()


def run(det: CorruptedDetector, texts: list[str | None]) -> pa.Table:
    ids = pa.array([f"r{i}" for i in range(len(texts))])
    batch = pa.table({"id": ids, "text": pa.array(texts, pa.string())})
    return det.process(batch)


def cp1252(s: str) -> str:
    """UTF-8 bytes read as Windows-1252: the classic mojibake."""
    return s.encode("utf-8").decode("cp1252", errors="replace")


# --------------------------------------------------------------------------------------- planted defects

_B64 = base64.b64encode(bytes(random.Random(3).getrandbits(8) for _ in range(150))).decode()

PLANTED: dict[str, list[str | None]] = {
    "empty": [None, "", "   ", "\n\t \r\n"],
    "mojibake": [
        cp1252("Le café est très bon à Paris, où il fait beau."),
        cp1252("Müller's naïve façade in Zürich"),
        cp1252("Ångström units measure tiny distances"),
        cp1252("Привет мир, как дела?"),
        cp1252("She said “don’t” — and left…"),
        "We donâ€™t ship to PoznaÅ„ anymore.",
        "crÃƒÂ¨me brÃƒÂ»lÃƒÂ©e is a dessert",  # double-encoded
        "caf\ufffd au lait and cr\ufffd\ufffdpes",
        "The value was\x00\x00\x01 corrupted by a null byte.",
        "Some \x1b[0m terminal escape left in the text",
        "Latin-1 read of UTF-8: caf\u00c3\u00a9 and r\u00c3\u00a9sum\u00c3\u00a9",
    ],
    "markup": [
        '<div class="post-body"><p>The river flows north.</p></div>',
        "<p>A small town in Ohio.</p>",
        '<a href="https://example.com/page">Read the full story</a>',
        "The menu&nbsp;&raquo; includes pasta &amp; pizza",
        '<script type="text/javascript">var x = document.getElementById("main");</script>Hello there',
        "<style>.content{color:#333;margin:0}</style><h2>Our history</h2>",
        "{{Infobox settlement | name = Springfield}} '''Springfield''' is a city in [[Illinois]].",
        "== Early life ==\nHe was born in [[Vienna]] in 1890.",
        "<!-- begin content -->The museum opens at nine.<!-- end content -->",
        "[url=http://spam.example]cheap watches[/url] great deals",
    ],
    "boilerplate": [
        "Copyright © 2023 Acme Inc. All rights reserved.",
        "Privacy Policy | Terms of Use | Cookie Policy",
        "We use cookies to improve your experience. By continuing to browse, you agree to our use of "
        "cookies.",
        "Click here to subscribe to our newsletter!",
        "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
        "Skip to main content\nHome > News > Sports\nLog in | Sign up",
        "Please enable JavaScript to view the comments powered by Disqus.",
        "Share this: Facebook Twitter Email Print\nLeave a reply",
        "Add to cart | Add to wishlist | Compare",
        "Unsubscribe | Manage preferences | View in browser",
        "Follow us on Facebook, Twitter and Instagram. Back to top",
    ],
    "stub": ["ok", "n/a", "...", "asdf", "???", "-", "TODO", "null", "[deleted]", "qwerty", "N/A",
             "no description", "你好"],
    "repetition": [
        "buy now buy now buy now cheap cheap",
        "lol lol lol lol lol lol lol lol",
        "Buy now!\nBuy now!\nBuy now!\nBuy now!",
        "best price best price best price best price guaranteed",
        "the the the the the the the the the",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "hmmmmmmmmmmmmmmmmmm ok",
        "CHEAP PILLS, CHEAP PILLS, CHEAP PILLS, CHEAP PILLS, CHEAP PILLS, CHEAP PILLS",
        # a long text: Gopher's n-gram rules
        ("The hotel is close to the beach and the rooms are clean. " * 30
         + "We had a lovely stay and would come back again next summer with the family."),
        "\n".join(["Free shipping on all orders over $50"] * 12
                  + [f"Item {i}: a blue ceramic mug" for i in range(8)]),
    ],
    "symbols": [
        "#$%@!&* ^^^ %%% @@@",
        "#$%@!&*",
        _B64,
        f"data:image/png;base64,{_B64[:60]}",
        "12 34 56 78 90 11 22 33 44",
        "0x3f 0xa2 0x1c 0x7e 0x00 0xff 0x9d 0x4b",
        "1a6a c3d2 a700 e580 eb26 3907 ffe1",
        "|| -- || == || ++ || ** ||",
        "▓▓▓▒▒░░ ▓▓▓▒▒░░ ▓▓▓▒▒░░",
        "4111-1111-1111-1111 12/26 123 90210",
        "Order {^*$\"!~#%} confirmed",
        "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    ],
}


@pytest.mark.parametrize("rule", sorted(PLANTED))
def test_planted_defects_flagged_with_their_rule(det, rule):
    texts = PLANTED[rule]
    out = run(det, texts)
    got = out.column(RULE_COL).to_pylist()
    reasons = out.column(reason_col("corrupted")).to_pylist()
    flagged = out.column(is_col("corrupted")).to_pylist()
    for text, g, r, f in zip(texts, got, reasons, flagged, strict=True):
        assert f, f"not flagged: {text!r}"
        assert g == rule, f"{text!r}: rule {g!r} ({r}), expected {rule!r}"
        assert r.startswith(f"{rule}:"), r


def test_mojibake_reason_names_the_sequence(det):
    rule, score, reason = det.check(cp1252("un café crème"))
    assert rule == "mojibake" and score < 0.5
    assert "Ã©" in reason and "wrong codec" in reason
    assert "U+FFFD" in det.check("bad \ufffd byte here")[2]


def test_one_mb_texts(det):
    rng = random.Random(0)
    words = ["river", "stone", "market", "winter", "garden", "silver", "island", "forest", "engine",
             "letter", "mirror", "candle", "harbor", "meadow", "castle", "violin", "pepper", "ladder"]
    prose = " ".join(rng.choice(words) + ("." if rng.random() < 0.1 else "") for _ in range(150_000))
    cases = {
        "repetition": ("Buy cheap watches online today! " * 40_000)[:1_000_000],
        "symbols": (base64.b64encode(rng.randbytes(760_000)).decode())[:1_000_000],
        "mojibake": (cp1252("Déjà vu: a naïve café. ") + prose)[:1_000_000],
        "markup": "".join(f"<p class=\"c{i}\">{prose[i:i + 80]}</p>\n" for i in range(0, 900_000, 80)),
    }
    # (their timings are in `make bench`, not here)
    for rule, text in cases.items():
        assert len(text) >= 1_000_000
        got, score, _reason = det.check(text)
        assert got == rule, (rule, got, _reason)
    # random-word prose (1 MB) that is not spam: no n-gram repeats often enough
    got, score, reason = det.check(prose[:1_000_000])
    assert 0.0 <= score <= 1.0


# ------------------------------------------------------------------------------------------ clean text

CLEAN = [
    # dictionary definitions
    "dog: a domesticated carnivore",
    "(botany) a small fern",
    "a member of the family of the genus of flowering plants",
    "physical entity: an entity that has physical existence",
    "a fraction whose numerator is an integer",
    "Sign language used by deaf people",
    "cookie: any of various small flat sweet cakes",
    "register: an official written record of names or events or transactions",
    "abbreviation: a shortened form of a word or phrase",
    # short reviews
    "Great product!",
    "Works as described, battery lasts about two days.",
    "Terrible customer service, would not buy again.",
    "Shipping took 3 weeks but the quality is excellent.",
    "I love this phone 😍",
    "Five stars. My kids play with it every day.",
    # news
    "The 2024 budget rose 3.5% to $1.2 billion.",
    "The central bank raised interest rates by 0.25 percentage points on Wednesday.",
    "Scientists discovered a new species of frog in the Amazon rainforest.",
    "The bridge, completed in 1937, spans 1.7 miles across the strait.",
    "He scored 23 points in the 98–95 win over Boston.",
    "Revenue was $3.2M in Q3 2023, up 12% from $2.9M.",
    "The meeting is on 12/05/2024 at 14:30 in room B-12.",
    "She said, “I’ll be there at 5 p.m.” — and she was.",
    # code-free technical sentences
    "A compiler translates source code written in a high-level language into machine code.",
    "The algorithm sorts the list in O(n log n) time using a divide-and-conquer strategy.",
    "JavaScript is a programming language commonly used to build interactive web pages.",
    "The GPU has 80 GB of HBM3 memory and 3.35 TB/s of bandwidth.",
    "Water boils at 100 °C at sea level; E = mc² relates mass and energy.",
    "The set {1, 2, 3} has three elements, and x < y whenever y > x.",
    "Visit https://www.example.org/about/history-of-the-society-and-its-founders for details.",
    "Users must log in to the admin console before changing the settings.",
    "AT&T and R&D budgets grew in 2023.",
    "Pneumonoultramicroscopicsilicovolcanoconiosis is a lung disease.",
    "Version 3.11 fixed 42 bugs and added 7 features.",
    # non-English and accented text
    "Die Straße ist wegen Bauarbeiten gesperrt.",
    "naïve café owners in Zürich",
    "北京是中国的首都",
    "東京は日本の首都です。",
    "서울은 한국의 수도입니다.",
    "Москва — столица России.",
    "El perro de mi vecina ladra todas las noches.",
    "Le café est très bon à Paris, où il fait beau.",
    "São Paulo é a maior cidade do Brasil.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "नमस्ते, आप कैसे हैं?",
    "القاهرة هي عاصمة مصر",
    "İstanbul, Türkiye'nin en kalabalık şehridir.",
    "Tiếng Việt là ngôn ngữ chính thức của Việt Nam.",
    "Zażółć gęślą jaźń, příliš žluťoučký kůň.",
    "résumé, façade, jalapeño and crème brûlée",
    # everyday and literary text
    "To be, or not to be, that is the question.",
    "Row, row, row your boat, gently down the stream.",
    "The cat sat on the mat and the dog sat on the rug.",
    "Preheat the oven to 180 °C and bake the cookies for 12 minutes.",
    # code and technical text are normal in documentation and code corpora, not markup or noise (these
    # two were planted "markup" before the corrupted / low_quality split: code is readable text)
    "body { margin: 0; padding: 0; } .nav { display: none; }",
    "function init() { return window.location.href; }",
]

TECHNICAL = [
    "udevadm trigger [--children-max=] [--action=ACTION] [--subsystem-match=SUBSYSTEM]",
    "pdftoppm -f FIRST_PAGE -l LAST_PAGE +FIRST_PAGE[:LAST_PAGE], -r DPI file.pdf out",
    "$iter->append_boolean($value); $iter->close_container($sub);",
    "gcloud compute instances list [--region=REGION] [--filter=EXPR] [--format=FORMAT]",
    "lib64ubsan1-i386-cross - UBSan -- undefined behaviour sanitizer (64bit)",
    "g++-mipsisa32r6el-linux-gnu - GNU C++ compiler for the mipsisa32r6el-linux-gnu architecture",
    "#include <stdio.h>\n#include <stdlib.h>\n\nint main(int argc, char **argv) {\n    return 0;\n}",
    # a symbol-heavy literal in a short function: one such token is not a text made of noise
    "class _QByteMap(dict):\n\n    safe = b'-!*+/' + ascii_letters.encode('ascii') + digits.encode('ascii')\n\n"
    "    def __missing__(self, key):\n        if key in self.safe:\n            self[key] = chr(key)\n"
    "        else:\n            self[key] = \"={:02X}\".format(key)\n        return self[key]\n",
    "Copyright \u00a9 2019 Free Software Foundation, Inc. License GPLv3+: GNU GPL version 3 or later "
    "<https://gnu.org/licenses/gpl.html>. This is free software: you are free to change and "
    "redistribute it. There is NO WARRANTY, to the extent permitted by law. Written by Richard "
    "Stallman and David MacKenzie. Report bugs to the mailing list and read the manual for details "
    "of every option, its default value and the environment variables that change it.",
    "mkfs.ext4 -L <label> -O ^has_journal /dev/sdb1",
    "ssh -p 2222 user@host:port -o StrictHostKeyChecking=no",
    "-a, --all  do not ignore entries starting with .\n-A, --almost-all  do not list implied . and ..",
    "python3.11 -m pip install 'numpy>=1.26,<2' --index-url https://pypi.org/simple",
    "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30",
    "openssl-3.0.11-1~deb12u2 amd64 [installed]",
    "if [[ -n \"$HOME\" ]]; then export PATH=\"$HOME/.local/bin:$PATH\"; fi",
    "for (i = 0; i < n; i++) { sum += a[i] * b[i]; }",
    # digests, key fingerprints and names with one group of digits are identifiers, not encoded blobs
    "findutils (4.9.0-4) unstable; * New upstream GIT snapshot 62b59ea8b734e72398f388e23c35bd42e6cbc38a.",
    "libtasn1-6 (4.19.0-2) unstable; * Add the key B1D2BD1375BECB784CF4F8C4D73CF638C53C06BE to signing-key.asc",
    "libxxf86vm (1:1.1.4-1) unstable; * Improve error handling in XF86VidModeGetMonitor()",
    "graphite2 (1.3.14-2) unstable; * revert debian/patches/revert-49fce465ae4e2c7b4c5f7dbc1dd4d1f1a0c4c6b1.diff",
    # a list of security fixes is terse, not noise
    "chromium (156.0.8078.108-1~deb12u1) bookworm-security; urgency=high\n"
    + "".join(f"- CVE-2026-11{8300 + i}\n" for i in range(30)),
    # entities as string literals in code are mentioned, not markup
    "def escape(s):\n    return s.replace(\"&\", \"&amp;\").replace(\"<\", \"&lt;\").replace(\">\", '&gt;')",
    "SELECT id, count(*) FROM flags WHERE is_corrupted_issue GROUP BY ALL;",
    "Format strings such as {{.Name}} and {{json .Config}} select fields of the output.",
    # a long clean paragraph (Gopher rules apply from 100 words)
    ("The river rises in the northern hills, where melting snow feeds a dozen small streams. "
     "It winds south through farmland for nearly two hundred kilometres, passing old mill towns "
     "whose stone bridges date from the fourteenth century. Near the coast it widens into a broad "
     "estuary that shelters migrating birds each autumn, and fishermen still work the tidal flats "
     "at dawn. Engineers dredged the lower channel in 1952 so that cargo ships could reach the "
     "port, although the project angered farmers whose fields flooded more often afterwards. "
     "Today a cycle path follows the western bank, and visitors can rent canoes in summer. "
     "Local historians have collected letters, maps and photographs describing floods, droughts "
     "and festivals, and the regional museum displays a reconstructed barge built from oak."),
]


def test_clean_texts_not_flagged(det):
    assert len(CLEAN) >= 40
    out = run(det, CLEAN)
    rules = out.column(RULE_COL).to_pylist()
    reasons = out.column(reason_col("corrupted")).to_pylist()
    bad = [(t, r) for t, r, rule in zip(CLEAN, reasons, rules, strict=True) if rule is not None]
    assert not bad, bad


def test_technical_text_not_flagged(det):
    """Synopses, identifiers, paths, version strings, code and option lists are not noise."""
    out = run(det, TECHNICAL)
    bad = [(t, r) for t, r in zip(TECHNICAL, out.column(reason_col("corrupted")).to_pylist(), strict=True) if r]
    assert not bad, bad


def test_truncation_is_found_against_the_corpus(det):
    rng = random.Random(4)
    words = ["system", "spring", "member", "golang-go", "r-cran-dplyr", "librec-dev", "river", "garden"]
    corpus = [f"{rng.choice(words)} of the {rng.choice(words)} and a {rng.choice(words)} in text {i}"
              for i in range(300)]
    cut = ["syste", "sprin", "membe", "golan", "r-cra", "librec-d"]
    texts = corpus + cut + ["goldfish", "river"]
    out = det.finish(run(det, texts), texts)
    rules = out.column(RULE_COL).to_pylist()
    assert rules[300:306] == ["truncated"] * 6, list(zip(texts[300:], rules[300:], strict=True))
    assert rules[306:] == [None, None] and not any(rules[:300])
    reason = out.column(reason_col("corrupted")).to_pylist()[300]
    assert reason.startswith("truncated:") and "'system'" in reason
    # long documents: a few characters is truncated whatever the last word
    docs = [" ".join(rng.choice(words) for _ in range(80)) for _ in range(100)] + ["NAME"]
    assert det.finish(run(det, docs), docs).column(RULE_COL).to_pylist()[-1] == "truncated"
    # too small a corpus to calibrate: nothing
    assert det.finish(run(det, cut), cut).column(RULE_COL).to_pylist() == [None] * 6


def test_a_lone_word_is_a_stub_only_where_rows_are_not_single_words(det):
    rng = random.Random(5)
    names = ["golang-go", "r-cran-dplyr", "librec-dev", "zlib1g", "gstreamer1.0-tools", "php-xml"]
    descs = ["compression library - runtime", "Go programming language compiler", "GNU R data grammar",
             "GStreamer command-line tools", "XML module for PHP", "recommender library (dev files)"]
    corpus = [f"{rng.choice(names)}: {rng.choice(descs)} {i}" for i in range(400)]
    stubs = ["Java", "PROFILING", "gstreamer", "MAIL"]
    texts = corpus + stubs
    rules = det.finish(run(det, texts), texts).column(RULE_COL).to_pylist()
    assert rules[400:] == ["stub"] * 4 and not any(rules[:400]), list(zip(texts[400:], rules[400:], strict=True))
    # a corpus of single names: a lone word is what its rows are
    tags = [rng.choice(names) + str(i) for i in range(400)] + stubs
    assert not any(det.finish(run(det, tags), tags).column(RULE_COL).to_pylist())


def test_page_chrome_around_a_fragment_but_not_a_copyright_line(det):
    chrome = ("Skip to main content\nHome > Docs > Tools\nls lists directory contents\n"
              "Share this: Facebook Twitter Email Print\nPrivacy Policy | Terms of Use")
    assert det.check(chrome)[0] == "boilerplate"
    manual = TECHNICAL[7]
    assert det.check(manual)[0] is None


def test_non_english_is_not_mojibake_or_symbols(det):
    for text in ("Straße", "naïve café", "北京是中国的首都", "Привет мир", "Ελληνικά", "ĳ ŉ ǆ"):
        assert det.check(text)[0] not in ("mojibake", "symbols"), text


# ------------------------------------------------------------------------------------------ the contract

def test_result_contract(det):
    texts = [t for rule in PLANTED for t in PLANTED[rule]] + CLEAN
    random.Random(1).shuffle(texts)
    out = run(det, texts)
    assert out.column_names == ["id", is_col("corrupted"), score_col("corrupted"),
                                reason_col("corrupted"), RULE_COL]
    assert out.column("id").to_pylist() == [f"r{i}" for i in range(len(texts))]
    assert out.schema.field(RULE_COL).type == pa.string()
    score = out.column(score_col("corrupted")).to_numpy()
    flag = out.column(is_col("corrupted")).to_numpy(zero_copy_only=False)
    reasons = out.column(reason_col("corrupted")).to_pylist()
    rules = out.column(RULE_COL).to_pylist()
    assert np.all((score >= 0.0) & (score <= 1.0))
    assert np.array_equal(flag, score < 0.5)
    assert [r is None for r in reasons] == [not f for f in flag]
    assert [r is None for r in rules] == [not f for f in flag]
    assert {r for r in rules if r} <= set(RULES)
    for r, rule in zip(reasons, rules, strict=True):
        if rule:
            assert r.startswith(rule + ":") and len(r) < 200


def test_empty_batch_and_chunked_input(det):
    out = det.process(pa.table({"id": pa.array([], pa.int64()), "text": pa.array([], pa.string())}))
    assert out.num_rows == 0 and RULE_COL in out.column_names
    chunked = pa.Table.from_batches([
        pa.record_batch({"id": pa.array([1, 2]), "text": pa.array(["ok", "A small town in Ohio."])}),
        pa.record_batch({"id": pa.array([3]), "text": pa.array([None], pa.string())}),
    ])
    out = det.process(chunked)
    assert out.column("id").to_pylist() == [1, 2, 3]
    assert out.column(RULE_COL).to_pylist() == ["stub", None, "empty"]


def test_pure_and_deterministic(det):
    texts = PLANTED["markup"] + CLEAN[:10]
    a, b = run(det, texts), run(det, texts)
    assert a.equals(b)


def test_summarize_counts_per_rule(det):
    texts = PLANTED["stub"] + PLANTED["markup"] + CLEAN[:5]
    s = det.summarize(run(det, texts))
    assert s["n_rows"] == len(texts)
    assert s["n_stub"] == len(PLANTED["stub"]) and s["n_markup"] == len(PLANTED["markup"])
    assert s["n_flagged"] == len(PLANTED["stub"]) + len(PLANTED["markup"])
    assert s["n_empty"] == 0 and set(f"n_{r}" for r in RULES) <= set(s)
    assert s["flag_rate"] == pytest.approx(s["n_flagged"] / len(texts))


def test_registered_and_described():
    assert REGISTRY["corrupted"] is CorruptedDetector and get("corrupted") is CorruptedDetector
    assert CorruptedDetector.issue == "corrupted" and CorruptedDetector.description.endswith(".")
    assert CorruptedDetector.extra_columns == {RULE_COL: pa.string()}
    assert CorruptedDetector.needs == ("id", "text")


def test_thresholds_are_constructor_parameters():
    assert CorruptedDetector().check("goldfish")[0] is None
    assert CorruptedDetector(min_words=2).check("goldfish")[0] == "stub"
    assert CorruptedDetector(max_bad_chars=2).check("one \ufffd two \ufffd")[0] is None
    assert CorruptedDetector(max_markup_per_100_words=5).check("<p>A small town in Ohio.</p>")[0] is None
    budget = "The 2024 budget rose 3.5% to $1.2 billion."
    assert CorruptedDetector(min_alpha_frac=0.9).check(budget)[0] == "symbols"
    assert CorruptedDetector().thresholds["min_letters"] == 4
    with pytest.raises(UimError):
        CorruptedDetector(no_such_threshold=1)


def test_former_constants_are_thresholds():
    # two weak chrome phrases are a login tool's text, unless the knob says otherwise
    assert CorruptedDetector().check("Log in or sign up")[0] is None
    assert CorruptedDetector(min_weak_chrome_weight=1.0).check("Log in or sign up")[0] == "boilerplate"
    noisy = "#$%@!&* text here now"
    assert CorruptedDetector().check(noisy)[0] == "symbols"
    assert CorruptedDetector(noise_min_symbols=8).check(noisy)[0] is None


def test_text_stats_ascii_path_counts_like_the_unicode_one():
    from uimdata.detectors.lexicon import ALPHA_TOKEN_RE, LETTER_RE
    from uimdata.detectors.text_stats import TextStats

    for text in CLEAN + TECHNICAL + ["#$%@!&* 12 0x5c a1", "  tabs\tand\nnewlines 3.5% $1.2  "]:
        if not text.isascii():
            continue
        st = TextStats.of(text, 100_000)
        assert st.letters == len(LETTER_RE.findall(st.text)), text
        assert st.alpha_tokens == len(ALPHA_TOKEN_RE.findall(st.text)), text
        assert st.cjk == 0


def test_fast_scans_answer_like_the_lexicon_patterns(monkeypatch):
    # long texts are scanned as code points, a batch at a time, and some patterns are split up
    # for speed: every answer must be the lexicon pattern's own
    import uimdata.detectors.lexicon as lx
    import uimdata.detectors.text_stats as ts
    from uimdata.detectors.corrupted_rules import CorruptedThresholds, check_text, check_texts
    from uimdata.detectors.low_quality_rules import LowQualityThresholds, ratios, ratios_many
    from uimdata.detectors.repetition import repetition_stats, repetition_stats_many

    edge = ["tags:sign up now", "x\u00a92020 and (c) 2021, foo(c) 2019", "Click here== Title ==\n<b>x</b> [url]a[/url]",
            "caf\u00c3\u00a9 \u00e2\u20ac\u2122 \x07 \ufffd \U0001F600\U0001F600 \u4e2d\u6587\u5b57 \u0e44\u0e17\u0e22",
            "aaaa ZZZZZ \u00df\u00df\u00df\u00df 0x5c e580, 1a6a; #$%@!&*~ " + "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA== " * 3,
            "x" * 150 + " https://example.com/" + "a" * 120, "the the the and and of of\n- a\n- a\n1) b...\n"]
    texts = [t for v in PLANTED.values() for t in v if t] + list(CLEAN) + list(TECHNICAL) + edge
    for long_chars in (10**9, 0):  # the patterns themselves, then code points for every text
        monkeypatch.setattr(ts, "LONG_TEXT_CHARS", long_chars)
        stats = [ts.TextStats.of(t, 100_000) for t in texts if t.strip()]
        ts.codepoints_for_all(stats)
        for st in stats:
            s = st.text
            assert (st.letters, st.alpha_tokens, st.cjk, st.nonspace) == (
                len(lx.LETTER_RE.findall(s)), len(lx.ALPHA_TOKEN_RE.findall(s)), len(lx.CJK_RE.findall(s)),
                sum(map(len, s.split()))), s
            assert st.hex_words() == len(lx.HEX_WORD_RE.findall(s)), s
            assert st.symbol_tokens(5) == [w for w in s.split() if len(lx.HARD_SYMBOL_RE.findall(w)) >= 5], s
            assert st.long_tokens(20) == lx.LONG_TOKEN_RE.findall(s), s
            assert st.long_runs(10) == lx.long_run_re(10).findall(s), s
            assert st.letter_runs() == [m.group(0) for m in lx.CHAR_RUN_RE.finditer(s)], s
            bad, fast = lx.BADNESS_RE.search(s), st.search_nonascii(lx.BADNESS_RE, lx.BADNESS_WIDTH)
            assert (bad and bad.span()) == (fast and fast.span()), s
            assert [f[:2] for f in lx.markup_matches(s)] == [(m.group(0), m.group("open")) for m in lx.MARKUP_RE.finditer(s)], s
            assert lx.boilerplate_matches(st.low) == [(m.group(0), m.group("strong") is not None)
                                                      for m in lx.BOILERPLATE_RE.finditer(st.low)], s
    # a match as long as allowed, on either side of its non-ASCII character
    import re

    from uimdata.detectors.codepoints import CodePoints

    rx = re.compile("\u00e9[a-z]{6}|[a-z]{6}\u00e9")
    for s in ("x" * 9 + "\u00e9abcdefg" + "\u00e9" * 3, "abcdef\u00e9zz", "\u00e9" * 8 + " " + "\u00e9abcdef"):
        assert CodePoints.of(s).search_nonascii(rx, 7).span() == rx.search(s).span(), s
    # a batch answers like its texts one by one (the same text twice included)
    batch = texts + texts[:5] + [None, "", "  "]
    assert check_texts(batch, CorruptedThresholds()) == [check_text(t, CorruptedThresholds()) for t in batch]
    assert repr(ratios_many(batch, LowQualityThresholds(min_words=5))) == repr(
        [ratios(t, LowQualityThresholds(min_words=5)) for t in batch])
    pairs = [(t, t.split()) for t in batch if t]
    assert repr(repetition_stats_many(pairs)) == repr([repetition_stats(s, w) for s, w in pairs])


def test_score_maps_put_the_threshold_on_half():
    from uimdata.detectors.scoring import above, below

    for t in (0.1, 1.0, 40.0):
        assert above(t, t) == 0.5 == below(t, t)
        assert above(0.5 * t, t) > 0.5 > above(2 * t, t)
        assert below(2 * t, t) > 0.5 > below(0.5 * t, t)


def test_score_orders_severity(det):
    # more damage, lower score
    one = det.check("one \ufffd here and fine otherwise")[1]
    many = det.check("\ufffd\ufffd \ufffd\ufffd \ufffd\ufffd everywhere")[1]
    assert many < one < 0.5
    assert det.check("Great product!")[1] >= 0.5


# ---------------------------------------------------------------------------- real clean text, speed

def test_wordnet_glosses_false_positive_rate(det):
    if not GLOSSES.exists():
        pytest.skip("uimdata/data/wordnet/glosses.parquet is not there")
    import pyarrow.parquet as pq

    texts = pq.read_table(GLOSSES, columns=["text"]).column("text").to_pylist()
    texts = random.Random(0).sample(texts, 20_000)
    out = run(det, texts)
    rate = out.column(is_col("corrupted")).to_numpy(zero_copy_only=False).mean()
    print(f"\nWordNet glosses: {rate:.4%} of 20,000 flagged; {det.summarize(out)}")
    assert rate < 0.002


def test_synth_corruptions_are_caught(det):
    synth = pytest.importorskip("uimdata.synth")
    rng = np.random.default_rng(5)
    sources = [t for t in CLEAN if len(t) > 20]
    recall_floor = {"stub": 0.6}  # a lone real word ("goldfish") is kept by design
    for kind in getattr(synth, "CORRUPTION_KINDS", ()):
        texts = [synth.corrupt_text(sources[i % len(sources)], kind, rng) for i in range(200)]
        flagged = run(det, texts).column(is_col("corrupted")).to_numpy(zero_copy_only=False)
        assert flagged.mean() >= recall_floor.get(kind, 0.95), (kind, flagged.mean())


def test_50k_short_texts_in_one_batch(det):
    rng = random.Random(2)
    pool = CLEAN[:-1] + [t for rule in PLANTED for t in PLANTED[rule] if t is not None]
    texts = [f"{rng.choice(pool)} {i}" if i % 3 else rng.choice(pool) for i in range(50_000)]
    batch = pa.table({"id": pa.array(range(len(texts))), "text": pa.array(texts)})
    out = det.process(batch)
    assert out.num_rows == len(texts)


def test_picklable_for_distributed_executors(det):
    import pickle

    clone = pickle.loads(pickle.dumps(CorruptedDetector(max_run_chars=50)))
    texts = PLANTED["symbols"] + CLEAN[:5]
    assert run(clone, texts).equals(run(CorruptedDetector(max_run_chars=50), texts))
