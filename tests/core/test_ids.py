"""core.ids.id_mask and digits_mask: the byte-kernel forms of ID_PATTERN give the regex kernel's answers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twhin_data.core.ids import ID_PATTERN, MAX_ID_DIGITS, digits_mask, id_mask

CASES = [
    "0", "00", "1293593516040269825", "1" * 19, "1" * 20, "", " ", " 12", "12 ", "12\n", "12a", "a", "+1", "-1",
    "1e5", "1.0", "1 2", "\uff11\uff12", "\u0663", "\u00b2", "123\x00", None,
]  # fmt: skip


def test_id_mask_is_the_regex_kernel():
    assert ID_PATTERN == f"^[0-9]{{1,{MAX_ID_DIGITS}}}$"  # id_mask's length bound is the pattern's
    values = pa.array(CASES, pa.string())
    want = pc.fill_null(pc.match_substring_regex(values, ID_PATTERN), False)
    assert id_mask(values).to_pylist() == want.to_pylist()
    assert id_mask(values).to_pylist()[:5] == [True, True, True, True, False]
    rng = np.random.default_rng(2)  # random strings over digits, space, letters and a full-width digit
    alphabet = np.array(list("0123456789 a\uff11"))
    texts = ["".join(rng.choice(alphabet, int(rng.integers(0, 22)))) for _ in range(3_000)]
    chunked = pa.chunked_array([texts[:1_000], texts[1_000:]], pa.string())
    want = pc.fill_null(pc.match_substring_regex(chunked, ID_PATTERN), False)
    assert id_mask(chunked).to_pylist() == want.to_pylist()
    assert id_mask(pa.array(texts, pa.large_string())).to_pylist() == want.to_pylist()


def test_digits_mask_is_the_regex_kernel_for_other_lengths():
    values = pa.array([*CASES, "1" * 15, "1" * 16, "123456789012345"], pa.string())
    for n in (1, 15):
        want = pc.fill_null(pc.match_substring_regex(values, f"^[0-9]{{1,{n}}}$"), False)
        assert digits_mask(values, n).to_pylist() == want.to_pylist()
