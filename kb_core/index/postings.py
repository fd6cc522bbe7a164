"""BM25 parameters and the impact of a posting, shared by the writer and the search.

Each posting stores its BM25 term-frequency part computed for a fixed reference chunk
length. Within one term that value orders postings exactly as BM25 would (the IDF is
the same for all of them, and the real average length is close to the reference), so
a query can read each term's postings best first and stop early; the score itself is
then computed with the version's true average length.
"""

from __future__ import annotations

K1 = 1.2
B = 0.75
# Reference chunk length in lemmas (≈ a 3,000-character chunk). Changing it changes the
# stored impacts (and only the early-termination order), so it is versioned with the
# lemma counts (kb_core.index.stages.LEXICAL_VERSION). sql/0005 repeats the formula.
REFERENCE_LENGTH = 400.0


def impact(tf: int, length: int) -> float:
    return tf / (tf + K1 * (1 - B + B * length / REFERENCE_LENGTH))
