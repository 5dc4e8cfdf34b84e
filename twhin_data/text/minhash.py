"""MinHash signatures, LSH band keys and exact Jaccard over character shingles (numpy, no Beam).

Near-duplicate removal (transforms/prepare/near_dedup.py) compares tweets by the Jaccard
similarity of their *shingle sets*: the overlapping character ``k``-grams of each tweet's match
view (text/contamination.match_view: no URL or mention placeholders, hashtag marks, emoji,
digits, punctuation or case; one space between words). Character shingles suit short texts: one
changed word in a 12-word tweet keeps most 4-grams (Jaccard ~0.75), where word shingles would
lose a third of the set. A view shorter than ``k`` characters is one shingle.

Everything is vectorized over a batch of texts (no Python work per shingle):

* the views are joined with a NUL separator and read as one UTF-32 code-point array;
* each k-gram is hashed by a polynomial rolling hash (uint64, wrapping), then mixed with
  splitmix64; k-grams that straddle a separator are dropped;
* ``num_perm`` hash functions ``h_i(x) = (a_i * x + b_i) mod 2**64 >> 32`` (multiply-shift, odd
  ``a_i`` from a fixed seed) give each text's signature as the per-text minimum
  (``np.minimum.reduceat``);
* LSH: the signature is cut into ``bands`` bands of ``rows`` values; each band's key is a 64-bit
  hash of (band index, its values). Two texts that share any band key are candidates, which
  happens with probability ``1 - (1 - J**rows)**bands`` for Jaccard ``J``;
* candidates are verified by the exact Jaccard of their shingle sets (`jaccard`).

Same texts and parameters, same signatures and keys: every constant derives from a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twhin_data.core.tables import sorted_unique

_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_BASE = np.uint64(1_000_003)
SEED = 20_220_914  # fixed: signatures must not change between runs or machines


@dataclass(frozen=True)
class LshParams:
    """Shingle size, the Jaccard a verified pair needs, and the band layout."""

    threshold: float = 0.6
    shingle: int = 4
    bands: int = 20
    rows: int = 4

    @property
    def num_perm(self) -> int:
        return self.bands * self.rows

    def candidate_probability(self, jaccard: float) -> float:
        """The chance that two texts with this Jaccard share at least one band key."""
        return 1.0 - (1.0 - jaccard**self.rows) ** self.bands


def parse_near_dedup(spec: str) -> LshParams | None:
    """``off`` -> None; ``jaccard=0.6[,shingle=4,bands=20,rows=4]`` -> LshParams.

    Raises ValueError with the reason for anything else."""
    spec = (spec or "").strip()
    if spec.lower() in ("off", "none", "no", "0"):
        return None
    values: dict[str, str] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("jaccard", "shingle", "bands", "rows"):
            raise ValueError(f"expected off or jaccard=J[,shingle=K,bands=B,rows=R], got {spec!r}")
        values[key] = value.strip()
    try:
        params = LshParams(
            threshold=float(values.get("jaccard", LshParams.threshold)),
            shingle=int(values.get("shingle", LshParams.shingle)),
            bands=int(values.get("bands", LshParams.bands)),
            rows=int(values.get("rows", LshParams.rows)),
        )
    except ValueError:
        raise ValueError(f"near-dedup values must be numbers, got {spec!r}") from None
    if not 0.0 < params.threshold <= 1.0:
        raise ValueError(f"jaccard must be in (0, 1], got {params.threshold}")
    if not (1 <= params.shingle <= 16 and 1 <= params.bands <= 64 and 1 <= params.rows <= 16):
        raise ValueError(f"shingle must be 1-16, bands 1-64, rows 1-16; got {spec!r}")
    return params


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, elementwise on uint64 (wrapping arithmetic), in place on a copy."""
    x = np.array(x, dtype=np.uint64, copy=True)
    tmp = np.empty_like(x)
    with np.errstate(over="ignore"):
        for shift, mult in ((30, _MIX1), (27, _MIX2)):
            np.right_shift(x, np.uint64(shift), out=tmp)
            x ^= tmp
            x *= mult
        np.right_shift(x, np.uint64(31), out=tmp)
        x ^= tmp
    return x


def shingle_hashes(texts: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every k-gram of every text and the index of the text each belongs to.

    Texts shorter than k give one shingle (the whole text); empty texts give none.
    Returns ``(hashes uint64, owner int64)``, owners ascending."""
    if not texts:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    codes = np.frombuffer(("\x00".join(texts) + "\x00").encode("utf-32-le"), dtype=np.uint32)
    ends = np.flatnonzero(codes == 0)  # the separator after each text
    n = codes.size
    hashes = np.zeros(0, np.uint64)
    owner = np.zeros(0, np.int64)
    if n >= k:
        m = n - k + 1
        wide = codes.astype(np.uint64)
        with np.errstate(over="ignore"):
            h = wide[:m].copy()
            for j in range(1, k):
                h *= _BASE
                h += wide[j : j + m]
        valid = np.ones(m, bool)
        for j in range(k):  # a window that holds a separator starts at most k-1 before it
            at = ends - j
            valid[at[(at >= 0) & (at < m)]] = False
        hashes = h[valid]
        starts = np.concatenate([[0], ends[:-1] + 1])
        counts = np.maximum(ends - starts - k + 1, 0)
        owner = np.repeat(np.arange(len(texts), dtype=np.int64), counts)
    lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
    short = np.flatnonzero((lengths > 0) & (lengths < k))
    if short.size:  # one shingle: the whole text, hashed the same way
        extra = np.zeros(short.size, np.uint64)
        with np.errstate(over="ignore"):
            for i, t in enumerate(short):
                value = np.uint64(0)
                for ch in texts[t]:
                    value = value * _BASE + np.uint64(ord(ch))
                extra[i] = value
        hashes = np.concatenate([hashes, extra])
        owner = np.concatenate([owner, short.astype(np.int64)])
        order = np.argsort(owner, kind="stable")
        hashes, owner = hashes[order], owner[order]
    return _mix(hashes), owner


def _permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


#: Texts hashed per numpy pass: keeps temporaries small enough to reuse memory (measured faster).
CHUNK = 4096


def signatures(texts: list[str], params: LshParams) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures ``(len(texts), num_perm)`` uint32 and a mask of texts that have any shingle."""
    sig = np.full((len(texts), params.num_perm), np.iinfo(np.uint32).max, np.uint32)
    has = np.zeros(len(texts), bool)
    a, b = _permutations(params.num_perm)
    for lo in range(0, len(texts), CHUNK):
        hashes, owner = shingle_hashes(texts[lo : lo + CHUNK], params.shingle)
        if hashes.size == 0:
            continue
        starts = np.flatnonzero(np.concatenate([[True], owner[1:] != owner[:-1]]))  # owner is sorted
        present = owner[starts]
        has[lo + present] = True
        values = np.empty(hashes.size, np.uint64)
        block = sig[lo : lo + CHUNK]
        with np.errstate(over="ignore"):
            for i in range(params.num_perm):
                np.multiply(hashes, a[i], out=values)
                values += b[i]
                values >>= np.uint64(32)
                block[present, i] = np.minimum.reduceat(values, starts)
    return sig, has


def band_keys(sig: np.ndarray, params: LshParams) -> np.ndarray:
    """``(rows of sig, bands)`` uint64: a hash of (band index, the band's values) per band."""
    n = sig.shape[0]
    keys = np.zeros((n, params.bands), np.uint64)
    with np.errstate(over="ignore"):
        for band in range(params.bands):
            h = np.full(n, np.uint64(band + 1) * _GOLDEN, np.uint64)
            for value in sig[:, band * params.rows : (band + 1) * params.rows].T:
                h = _mix(h ^ value.astype(np.uint64))
            keys[:, band] = h
    return keys


def jaccard(left: list[str], right: list[str], k: int) -> np.ndarray:
    """Exact Jaccard of the k-shingle sets of ``left[i]`` and ``right[i]``, for every i (float64);
    `jaccard_pairs` over the two lists."""
    n = len(left)
    return jaccard_pairs([*left, *right], np.arange(n), np.arange(n, 2 * n), k)


def _set_keys(texts: list[str], k: int) -> np.ndarray:
    """Sorted unique ``(text index << 44) | (shingle hash >> 20)`` of every text (uint64)."""
    hashes, owner = shingle_hashes(texts, k)
    return sorted_unique((owner.astype(np.uint64) << np.uint64(44)) | (hashes >> np.uint64(20)))


def jaccard_pairs(texts: list[str], left: np.ndarray, right: np.ndarray, k: int) -> np.ndarray:
    """Exact Jaccard of ``texts[left[i]]`` and ``texts[right[i]]`` for every i: each text's
    shingle set is hashed once, however many pairs it is in. Shingles are compared by 44 bits of
    their 64-bit hash (a false match inside one pair has odds below 1e-9 for tweets). Two empty
    texts have Jaccard 0 (nothing to compare)."""
    out = np.zeros(left.size, np.float64)
    if left.size == 0:
        return out
    rows, inverse = np.unique(np.concatenate([left, right]), return_inverse=True)
    # One sorted run of 44-bit shingle keys per text: (text, key) unique, then per-text offsets.
    picked = [texts[i] for i in rows.tolist()]
    blocks = []
    for lo in range(0, len(picked), CHUNK):
        block = _set_keys(picked[lo : lo + CHUNK], k)
        blocks.append(block + (np.uint64(lo) << np.uint64(44)))
    keys = np.concatenate(blocks)
    text_of = (keys >> np.uint64(44)).astype(np.int64)
    values = keys & np.uint64((1 << 44) - 1)
    sizes = np.bincount(text_of, minlength=rows.size)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    li, ri = inverse[: left.size], inverse[left.size :]
    for lo in range(0, left.size, CHUNK):
        a, b = li[lo : lo + CHUNK], ri[lo : lo + CHUNK]
        pair = np.arange(a.size, dtype=np.uint64)
        take_a = np.repeat(starts[a], sizes[a]) + _ranges(sizes[a])
        take_b = np.repeat(starts[b], sizes[b]) + _ranges(sizes[b])
        ka = (np.repeat(pair, sizes[a]) << np.uint64(44)) | values[take_a]
        kb = (np.repeat(pair, sizes[b]) << np.uint64(44)) | values[take_b]
        shared = _shared(ka, kb)
        inter = np.bincount((shared >> np.uint64(44)).astype(np.int64), minlength=a.size)
        union = sizes[a] + sizes[b] - inter
        chunk = np.zeros(a.size, np.float64)
        np.divide(inter, union, out=chunk, where=union > 0)
        out[lo : lo + CHUNK] = chunk
    return out


def _ranges(sizes: np.ndarray) -> np.ndarray:
    """0..n-1 for each n in `sizes`, concatenated."""
    total = int(sizes.sum())
    return np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)


def _shared(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The values of sorted `left` that sorted `right` holds too (both without repeats)."""
    if right.size == 0:
        return right
    at = np.minimum(np.searchsorted(right, left), right.size - 1)
    return left[right[at] == left]
