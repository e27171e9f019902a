"""Any text in: a ``str`` spaCy accepts, and tokenisation whose cost is linear in its length.

Two things in front of spaCy's tokenizer make every labeller entry point take any Python
value without a crash:

* :func:`clean_text`: ``None`` / NaN become empty, bytes are decoded (invalid bytes replaced),
  and UTF-16 surrogates (U+D800-U+DFFF), which a Python ``str`` may hold (from a JSON
  ``\\ud800`` escape, ``surrogateescape`` decoding) but UTF-8 cannot encode, are replaced by
  U+FFFD one for one, so offsets into the text stay offsets into the caller's string. spaCy
  hashes every token as UTF-8, so one such character would otherwise fail the whole batch.
  The number of replaced characters is returned, so callers can count and report them.
* :func:`tokenize`: spaCy splits prefixes and suffixes off a whitespace-free run one at a
  time, re-searching the rest of the run each time, so its cost grows with the square of
  the run's length (14,500 ``§`` in a row take half a minute). Runs longer than
  :data:`LONG_RUN` characters (none in real reports: the longest in the IU dev reports has
  30) are split at word / punctuation boundaries by one regular expression instead; every
  other part of the text goes through spaCy's tokenizer as usual, and the Doc's text is the
  input, character for character.

:func:`english_tokenizer` builds the tokenizer of ``spacy.blank("en")`` from English's
defaults directly, without a ``Language`` (whose creation scans every installed spaCy entry
point and resolves a config): the same tokens, about half the time.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # spaCy is imported by the functions that tokenise: io stays light
    from spacy.tokenizer import Tokenizer
    from spacy.tokens import Doc
    from spacy.vocab import Vocab

__all__ = [
    "clean_text",
    "has_surrogates",
    "repair_surrogates",
    "tokenize",
    "english_tokenizer",
    "REPLACEMENT",
    "LONG_RUN",
]

REPLACEMENT = "\ufffd"
#: Whitespace-free runs longer than this are tokenised by a regular expression (linear time).
LONG_RUN = 50

_SURROGATE = re.compile("[\ud800-\udfff]")
_LONG = re.compile(r"\S{" + str(LONG_RUN + 1) + ",}")
_PIECES = re.compile(r"\w+|[^\w\s]")


def clean_text(value: Any) -> tuple[str, int]:
    """``(text, replaced)``: the value as a ``str`` spaCy can tokenise, and how many
    characters were replaced by U+FFFD (undecodable bytes are not counted here).

    Blank text (only whitespace) becomes ``""``: a report with no words.

    Examples
    --------
    >>> clean_text("No effusion \\ud800.")
    ('No effusion �.', 1)
    >>> clean_text(None), clean_text(float("nan")), clean_text("  ")
    (('', 0), ('', 0), ('', 0))
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "", 0
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = value if isinstance(value, str) else str(value)
    replaced = 0
    if has_surrogates(text):
        text, replaced = repair_surrogates(text)
    return (text if text.strip() else ""), replaced


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds a UTF-16 surrogate code point (cheap for ASCII text)."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def repair_surrogates(text: str) -> tuple[str, int]:
    """Replace each surrogate code point by U+FFFD; return the text and how many.

    One character for one, so that character offsets into the repaired text are offsets
    into the caller's own string (evidence ``start``/``end`` stay valid for it).

    Examples
    --------
    >>> repair_surrogates("a\\udc80b\\ud83d\\ude00")
    ('a�b��', 3)
    """
    return _SURROGATE.subn(REPLACEMENT, text)


def tokenize(tokenizer: Tokenizer, text: str) -> Doc:
    """``tokenizer(text)``, except that whitespace-free runs longer than :data:`LONG_RUN`
    are split by :data:`_PIECES` (words and single punctuation marks), in linear time.

    Examples
    --------
    >>> import spacy
    >>> nlp = spacy.blank("en")
    >>> doc = tokenize(nlp.tokenizer, "No effusion. " + "§" * 60 + " end")
    >>> doc.text == "No effusion. " + "§" * 60 + " end", len(doc)
    (True, 64)
    """
    # str.split is several times faster than a regular-expression search for long runs
    if len(text) <= LONG_RUN or max(map(len, text.split())) <= LONG_RUN:
        return tokenizer(text)
    long_runs = list(_LONG.finditer(text))
    from spacy.tokens import Doc

    vocab = tokenizer.vocab
    docs: list[Doc] = []
    pos = 0
    for run in long_runs:
        if run.start() > pos:
            docs.append(tokenizer(text[pos : run.start()]))
        # one following space is the run's trailing whitespace, as spaCy treats it
        space = text.startswith(" ", run.end())
        docs.append(_split_run(vocab, run.group(), space))
        pos = run.end() + space
    if pos < len(text):
        docs.append(tokenizer(text[pos:]))
    return Doc.from_docs(docs, ensure_whitespace=False)


def _split_run(vocab: Vocab, run: str, space: bool) -> Doc:
    from spacy.tokens import Doc

    words = _PIECES.findall(run)
    return Doc(vocab, words=words, spaces=[False] * (len(words) - 1) + [space])


def english_tokenizer() -> Tokenizer:
    """The tokenizer of ``spacy.blank("en")``, built without a ``Language``.

    What ``spacy.blank("en")`` does through its registry and config (``spacy.Tokenizer.v1``
    on a vocab from ``create_vocab``), done directly: English's tokenizer exceptions,
    prefixes, suffixes, infixes, ``token_match`` and ``url_match``, on a vocab with English's
    lexical attributes (norms, stop words, ``like_num``…). Tokens and their lexical attributes
    are those of ``spacy.blank("en")`` (tests/cxrlabel/test_english_tokenizer.py).

    Examples
    --------
    >>> [t.text for t in english_tokenizer()("Dr. Smith: e.g. 3.5 cm at L5-S1.")]
    ['Dr.', 'Smith', ':', 'e.g.', '3.5', 'cm', 'at', 'L5', '-', 'S1', '.']
    """
    from spacy.lang.en import English
    from spacy.tokenizer import Tokenizer
    from spacy.util import compile_infix_regex, compile_prefix_regex, compile_suffix_regex
    from spacy.vocab import create_vocab

    defaults = English.Defaults
    vocab = create_vocab(English.lang, defaults)
    return Tokenizer(
        vocab,
        rules=defaults.tokenizer_exceptions,
        prefix_search=compile_prefix_regex(defaults.prefixes).search,
        suffix_search=compile_suffix_regex(defaults.suffixes).search,
        infix_finditer=compile_infix_regex(defaults.infixes).finditer,
        token_match=defaults.token_match,
        url_match=defaults.url_match,
    )
