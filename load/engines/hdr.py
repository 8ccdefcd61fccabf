"""squall-load's latency histograms in Python: read the serialised form of
reference/apps/hdr_histogram.h, compute percentiles the same way, merge by addition.

    h = hdr.Histogram.parse(result["histogram"])     # "squall-hdr-1 1 3600000000000 3 ..."
    h.value_at_percentile(99.9)                      # ns, as squall-load reports it (x 1000)
    both = h.merged(other)

Layout (the C++ header says why): values below 2 * 10^digits rounded up to a power of two
(2048 for 3 digits) times lowest are exact; above, a counter spans 2^k values for values in
[2^(k+10), 2^(k+11)) with 3 digits, so the relative error stays below 10^-3.
"""
from __future__ import annotations

import base64
import math


class Histogram:
    FORMAT = "squall-hdr-1"

    def __init__(self, lowest: int = 1, highest: int = 3600 * 10**9, digits: int = 3):
        if lowest < 1 or highest < 2 * lowest or not 1 <= digits <= 5:
            raise ValueError("bad histogram layout")
        self.lowest, self.highest, self.digits = lowest, highest, digits
        largest_single_unit = 2 * 10 ** digits
        self.sub_bucket_count_magnitude = (largest_single_unit - 1).bit_length()
        self.half_magnitude = self.sub_bucket_count_magnitude - 1
        self.unit_magnitude = lowest.bit_length() - 1
        self.sub_bucket_count = 1 << self.sub_bucket_count_magnitude
        self.half_count = self.sub_bucket_count // 2
        self.mask = (self.sub_bucket_count - 1) << self.unit_magnitude
        smallest_untrackable = self.sub_bucket_count << self.unit_magnitude
        buckets = 1
        while smallest_untrackable <= highest:
            if smallest_untrackable > (2**63 - 1) // 2:
                buckets += 1
                break
            smallest_untrackable <<= 1
            buckets += 1
        self.counts = [0] * ((buckets + 1) * self.half_count)
        self.total = 0
        self.min = 0
        self.max = 0
        self.sum = 0.0
        self.sum_sq = 0.0

    # ---- layout
    def _bucket(self, v: int) -> int:
        return (v | self.mask).bit_length() - self.unit_magnitude - (self.half_magnitude + 1)

    def index_of(self, v: int) -> int:
        b = self._bucket(v)
        sub = v >> (b + self.unit_magnitude)
        return ((b + 1) << self.half_magnitude) + (sub - self.half_count)

    def value_at_index(self, i: int) -> int:
        b = (i >> self.half_magnitude) - 1
        sub = (i & (self.half_count - 1)) + self.half_count
        if b < 0:
            sub -= self.half_count
            b = 0
        return sub << (b + self.unit_magnitude)

    def highest_equivalent(self, v: int) -> int:
        b = self._bucket(v)
        sub = v >> (b + self.unit_magnitude)
        lowest = sub << (b + self.unit_magnitude)
        width = 1 << (self.unit_magnitude + (b + 1 if sub >= self.sub_bucket_count else b))
        return lowest + width - 1

    # ---- recording and reading
    def record(self, v: int, count: int = 1) -> None:
        raw = max(0, int(v))
        self.counts[self.index_of(min(raw, self.highest))] += count
        self.min = raw if self.total == 0 else min(self.min, raw)
        self.max = raw if self.total == 0 else max(self.max, raw)
        self.total += count
        self.sum += raw * count
        self.sum_sq += raw * raw * count

    @staticmethod
    def rank_of(percentile: float, total: int) -> int:
        """Nearest rank, as the C++ (a relative slack of 1e-12 against float noise)."""
        if total <= 0:
            return 0
        exact = min(100.0, max(0.0, percentile)) / 100.0 * total
        return min(total, max(1, math.ceil(exact - exact * 1e-12)))

    def value_at_percentile(self, percentile: float) -> int:
        rank = self.rank_of(percentile, self.total)
        if rank == 0:
            return 0
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if c and seen >= rank:
                return min(self.highest_equivalent(self.value_at_index(i)), self.max)
        return self.max

    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def count_above(self, v: int) -> int:
        """Samples in counters wholly above v."""
        return sum(c for i, c in enumerate(self.counts) if c and self.value_at_index(i) > v)

    def merged(self, other: "Histogram") -> "Histogram":
        if (other.lowest, other.highest, other.digits) != (self.lowest, self.highest, self.digits):
            raise ValueError("histograms of different layouts")
        out = Histogram(self.lowest, self.highest, self.digits)
        out.counts = [a + b for a, b in zip(self.counts, other.counts)]
        out.total = self.total + other.total
        nonempty = [h for h in (self, other) if h.total]
        out.min = min((h.min for h in nonempty), default=0)
        out.max = max((h.max for h in nonempty), default=0)
        out.sum = self.sum + other.sum
        out.sum_sq = self.sum_sq + other.sum_sq
        return out

    def percentiles_us(self) -> dict:
        """The summary squall-load prints (µs)."""
        mean = self.mean()
        var = self.sum_sq / self.total - mean * mean if self.total else 0.0
        out = {"count": self.total, "min": self.min / 1000, "mean": mean / 1000,
               "stdev": math.sqrt(var) / 1000 if var > 0 else 0.0}
        for p in (50, 90, 99, 99.9, 99.99):
            out[f"p{p:g}"] = self.value_at_percentile(p) / 1000
        out["max"] = self.max / 1000
        return out

    # ---- serialised form
    @classmethod
    def parse(cls, text: str) -> "Histogram":
        f = text.split(" ")
        if len(f) != 9 or f[0] != cls.FORMAT:
            raise ValueError(f"not a {cls.FORMAT} histogram")
        h = cls(int(f[1]), int(f[2]), int(f[3]))
        raw = base64.b64decode(f[8], validate=True) if f[8] else b""
        i = at = 0
        while at < len(raw):
            z = shift = 0
            while True:
                if at >= len(raw) or shift >= 64:
                    raise ValueError("truncated varint")
                byte = raw[at]
                at += 1
                z |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            v = (z >> 1) ^ -(z & 1)
            if v < 0:
                i += -v
            else:
                h.counts[i] = v
                h.total += v
                i += 1
            if i > len(h.counts):
                raise ValueError("counts run past the layout")
        h.min, h.max = (int(f[4]), int(f[5])) if h.total else (0, 0)
        h.sum, h.sum_sq = float(f[6]), float(f[7])
        return h
