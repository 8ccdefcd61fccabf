// HdrHistogram: a log-linear high-dynamic-range histogram of non-negative integers
// (latencies in nanoseconds, for squall-load), after Gil Tene's HdrHistogram, written here
// because Debian packages none.
//
//   HdrHistogram h;                          // 1 .. 1 hour in ns, 3 significant digits
//   h.record(latency_ns);
//   int64_t p99 = h.value_at_percentile(99.0);
//   all.add(h);                              // merge: counts add up
//   std::string text = h.serialize();        // and HdrHistogram::deserialize(text)
//
// Layout (as HdrHistogram's): values are split into buckets by powers of two; each bucket
// holds `sub_bucket_count` linear sub-buckets, the smallest power of two >= 2 * 10^digits
// (2048 for 3 digits), of which the lower half overlaps the previous bucket and is not
// stored. So every value below sub_bucket_count × lowest_discernible is counted exactly,
// and any larger value v shares its counter only with values within v / 1024 of it: a
// relative error below 10^-3, i.e. exact to 3 significant digits over the whole range
// (1 ns .. 1 h with the defaults: 33,792 counters, 264 KiB).
//
// Percentiles use the nearest-rank definition: value_at_percentile(p) is the value of the
// sample of rank ceil(p / 100 × N) in sorted order (rank 1 for p = 0), reported as the
// highest value equivalent to it (the top of its counter's range, as HdrHistogram does:
// it never under-reports) but not above the exact max(). min(), max(), mean() and stddev() are exact (kept beside the
// counts); a value above highest_trackable is counted as highest_trackable (clamped()
// says how many were) while max() keeps the true value.
//
// Serialised form (one line of text, stable; load/engines/hdr.py reads it too):
//   "squall-hdr-1 <lowest> <highest> <digits> <min> <max> <sum> <sum_sq> <counts>"
// where <counts> is base64 (RFC 4648, padded) of the counters array up to the last
// non-zero one, each counter a ZigZag LEB128 varint and each run of k zero counters the
// single varint -k (HdrHistogram's V2 encoding), and <sum>, <sum_sq> are the exact sums
// as decimal doubles (%.17g). min/max are 0 for an empty histogram.
//
// Header-only: squall-load and the unit test (reference/tests/hdr_histogram_test.cc)
// include it. Not thread-safe; one per thread, merged with add().
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "squall/httputil.h"

namespace squall::load {

class HdrHistogram {
 public:
  static constexpr int64_t kDefaultHighest = int64_t{3600} * 1'000'000'000;  // 1 h in ns

  // lowest_discernible >= 1 (values below it share one counter per unit), highest_trackable
  // >= 2 × lowest_discernible, significant_digits 1..5. Throws std::invalid_argument otherwise.
  explicit HdrHistogram(int64_t lowest_discernible = 1, int64_t highest_trackable = kDefaultHighest,
                        int significant_digits = 3)
      : lowest_(lowest_discernible), highest_(highest_trackable), digits_(significant_digits) {
    if (lowest_ < 1) throw std::invalid_argument("HdrHistogram: lowest_discernible must be >= 1");
    if (digits_ < 1 || digits_ > 5) throw std::invalid_argument("HdrHistogram: significant_digits must be 1..5");
    if (highest_ < 2 * lowest_) throw std::invalid_argument("HdrHistogram: highest_trackable must be >= 2 × lowest");
    int64_t largest_single_unit = 2;
    for (int i = 0; i < digits_; ++i) largest_single_unit *= 10;
    sub_bucket_count_magnitude_ = static_cast<int>(std::bit_width(static_cast<uint64_t>(largest_single_unit - 1)));
    sub_bucket_half_count_magnitude_ = sub_bucket_count_magnitude_ - 1;
    unit_magnitude_ = static_cast<int>(std::bit_width(static_cast<uint64_t>(lowest_))) - 1;
    sub_bucket_count_ = int64_t{1} << sub_bucket_count_magnitude_;
    sub_bucket_half_count_ = sub_bucket_count_ / 2;
    sub_bucket_mask_ = static_cast<uint64_t>(sub_bucket_count_ - 1) << unit_magnitude_;
    // Buckets needed to cover highest_trackable: each doubles the range.
    int64_t smallest_untrackable = sub_bucket_count_ << unit_magnitude_;
    bucket_count_ = 1;
    while (smallest_untrackable <= highest_) {
      if (smallest_untrackable > std::numeric_limits<int64_t>::max() / 2) {
        ++bucket_count_;
        break;
      }
      smallest_untrackable <<= 1;
      ++bucket_count_;
    }
    counts_.assign(static_cast<size_t>((bucket_count_ + 1) * sub_bucket_half_count_), 0);
  }

  int64_t lowest_discernible() const { return lowest_; }
  int64_t highest_trackable() const { return highest_; }
  int significant_digits() const { return digits_; }
  size_t counts_length() const { return counts_.size(); }

  // Counts `count` samples of `value` (negative values count as 0; values above
  // highest_trackable as highest_trackable, see clamped()).
  void record(int64_t value, int64_t count = 1) {
    if (count <= 0) return;
    if (value < 0) value = 0;
    int64_t raw = value;
    if (value > highest_) {
      value = highest_;
      clamped_ += count;
    }
    counts_[index_of(value)] += count;
    if (total_ == 0 || raw < min_) min_ = raw;
    if (total_ == 0 || raw > max_) max_ = raw;
    total_ += count;
    double v = static_cast<double>(raw);
    sum_ += v * static_cast<double>(count);
    sum_sq_ += v * v * static_cast<double>(count);
  }

  // Merge: adds other's counts (same lowest, highest and digits; std::invalid_argument otherwise).
  void add(const HdrHistogram& other) {
    if (other.lowest_ != lowest_ || other.highest_ != highest_ || other.digits_ != digits_)
      throw std::invalid_argument("HdrHistogram::add: histograms of different layouts");
    if (other.total_ == 0) return;
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    if (total_ == 0 || other.min_ < min_) min_ = other.min_;
    if (total_ == 0 || other.max_ > max_) max_ = other.max_;
    total_ += other.total_;
    clamped_ += other.clamped_;
    sum_ += other.sum_;
    sum_sq_ += other.sum_sq_;
  }

  void reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = min_ = max_ = clamped_ = 0;
    sum_ = sum_sq_ = 0;
  }

  int64_t total_count() const { return total_; }
  int64_t clamped() const { return clamped_; }
  int64_t min() const { return total_ ? min_ : 0; }
  int64_t max() const { return total_ ? max_ : 0; }
  double sum() const { return sum_; }
  double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }
  double stddev() const {
    if (total_ == 0) return 0.0;
    double m = mean();
    double var = sum_sq_ / static_cast<double>(total_) - m * m;
    return var > 0 ? std::sqrt(var) : 0.0;
  }

  // Nearest rank of percentile p (0..100) among total_count() samples: ceil(p/100 × N),
  // at least 1. The product is computed with a relative slack of 1e-12 so that 99.9 % of
  // 1000 is rank 999, not 1000 (99.9 / 100 × 1000 = 999.0000000000001 in doubles).
  static int64_t rank_of(double percentile, int64_t total) {
    if (total <= 0) return 0;
    double p = std::clamp(percentile, 0.0, 100.0);
    double exact = p / 100.0 * static_cast<double>(total);
    auto rank = static_cast<int64_t>(std::ceil(exact - exact * 1e-12));
    return std::clamp<int64_t>(rank, 1, total);
  }

  // The highest value equivalent to the sample of nearest rank ceil(p/100 × N), at most
  // max(); 0 when empty.
  int64_t value_at_percentile(double percentile) const {
    int64_t rank = rank_of(percentile, total_);
    if (rank == 0) return 0;
    int64_t seen = 0;
    for (size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(highest_equivalent(value_at_index(i)), max_);
    }
    return max_;
  }

  // How many recorded samples are <= value (counted per counter: exact below
  // sub_bucket_count × lowest, else to the counter's range).
  int64_t count_at_or_below(int64_t value) const {
    if (value < 0) return 0;
    size_t last = index_of(std::min(value, highest_));
    int64_t n = 0;
    for (size_t i = 0; i <= last; ++i) n += counts_[i];
    return n;
  }

  // ---- the layout (public for the tests and the Python reader) ----
  size_t index_of(int64_t value) const {
    int bucket = bucket_index(value);
    int64_t sub = sub_bucket_index(value, bucket);
    return static_cast<size_t>(((static_cast<int64_t>(bucket) + 1) << sub_bucket_half_count_magnitude_) +
                               (sub - sub_bucket_half_count_));
  }
  int64_t value_at_index(size_t index) const {
    int64_t bucket = (static_cast<int64_t>(index) >> sub_bucket_half_count_magnitude_) - 1;
    int64_t sub = (static_cast<int64_t>(index) & (sub_bucket_half_count_ - 1)) + sub_bucket_half_count_;
    if (bucket < 0) {
      sub -= sub_bucket_half_count_;
      bucket = 0;
    }
    return sub << (bucket + unit_magnitude_);
  }
  // The smallest and largest values sharing value's counter.
  int64_t lowest_equivalent(int64_t value) const {
    int bucket = bucket_index(value);
    return sub_bucket_index(value, bucket) << (bucket + unit_magnitude_);
  }
  int64_t equivalent_range(int64_t value) const {
    int bucket = bucket_index(value);
    int64_t sub = sub_bucket_index(value, bucket);
    int adjusted = sub >= sub_bucket_count_ ? bucket + 1 : bucket;
    return int64_t{1} << (unit_magnitude_ + adjusted);
  }
  int64_t highest_equivalent(int64_t value) const { return lowest_equivalent(value) + equivalent_range(value) - 1; }

  // Non-zero counters as (lowest equivalent value, count), ascending.
  std::vector<std::pair<int64_t, int64_t>> nonzero() const {
    std::vector<std::pair<int64_t, int64_t>> out;
    for (size_t i = 0; i < counts_.size(); ++i)
      if (counts_[i]) out.emplace_back(value_at_index(i), counts_[i]);
    return out;
  }

  // ---- serialisation (format above) ----
  std::string serialize() const {
    std::string bytes;
    size_t end = counts_.size();
    while (end > 0 && counts_[end - 1] == 0) --end;
    for (size_t i = 0; i < end;) {
      if (counts_[i] == 0) {
        size_t j = i;
        while (j < end && counts_[j] == 0) ++j;
        put_varint(bytes, -static_cast<int64_t>(j - i));
        i = j;
      } else {
        put_varint(bytes, counts_[i]);
        ++i;
      }
    }
    char head[256];
    std::snprintf(head, sizeof head, "squall-hdr-1 %lld %lld %d %lld %lld %.17g %.17g ",
                  static_cast<long long>(lowest_), static_cast<long long>(highest_), digits_,
                  static_cast<long long>(min()), static_cast<long long>(max()), sum_, sum_sq_);
    return head + base64_encode(bytes);
  }

  // nullopt if `text` is not a well-formed serialised histogram.
  static std::optional<HdrHistogram> deserialize(std::string_view text) {
    std::vector<std::string> f;
    size_t pos = 0;
    while (pos <= text.size() && f.size() < 10) {
      size_t sp = text.find(' ', pos);
      if (sp == std::string_view::npos) sp = text.size();
      f.emplace_back(text.substr(pos, sp - pos));
      pos = sp + 1;
    }
    if (f.size() != 9 || f[0] != "squall-hdr-1") return std::nullopt;
    try {
      int64_t lowest = std::stoll(f[1]);
      int64_t highest = std::stoll(f[2]);
      int digits = std::stoi(f[3]);
      int64_t mn = std::stoll(f[4]);
      int64_t mx = std::stoll(f[5]);
      double sum = std::stod(f[6]);
      double sum_sq = std::stod(f[7]);
      HdrHistogram h(lowest, highest, digits);
      std::optional<std::string> bytes = base64_decode(f[8]);
      if (!bytes) return std::nullopt;
      size_t i = 0, at = 0;
      while (at < bytes->size()) {
        std::optional<int64_t> v = get_varint(*bytes, at);
        if (!v) return std::nullopt;
        if (*v < 0) {
          if (-*v > static_cast<int64_t>(h.counts_.size() - i)) return std::nullopt;
          i += static_cast<size_t>(-*v);
        } else {
          if (i >= h.counts_.size()) return std::nullopt;
          h.counts_[i++] = *v;
          h.total_ += *v;
        }
      }
      h.min_ = h.total_ ? mn : 0;
      h.max_ = h.total_ ? mx : 0;
      h.sum_ = sum;
      h.sum_sq_ = sum_sq;
      return h;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }

 private:
  int bucket_index(int64_t value) const {
    int pow2ceiling = 64 - std::countl_zero(static_cast<uint64_t>(value) | sub_bucket_mask_);
    return pow2ceiling - unit_magnitude_ - (sub_bucket_half_count_magnitude_ + 1);
  }
  int64_t sub_bucket_index(int64_t value, int bucket) const {
    return static_cast<int64_t>(static_cast<uint64_t>(value) >> (bucket + unit_magnitude_));
  }
  static void put_varint(std::string& out, int64_t value) {
    uint64_t z = (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
    do {
      auto byte = static_cast<uint8_t>(z & 0x7f);
      z >>= 7;
      if (z) byte |= 0x80;
      out.push_back(static_cast<char>(byte));
    } while (z);
  }
  static std::optional<int64_t> get_varint(const std::string& in, size_t& at) {
    uint64_t z = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= in.size()) return std::nullopt;
      auto byte = static_cast<uint8_t>(in[at++]);
      z |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
    }
    return std::nullopt;
  }

  int64_t lowest_;
  int64_t highest_;
  int digits_;
  int unit_magnitude_ = 0;
  int sub_bucket_count_magnitude_ = 0;
  int sub_bucket_half_count_magnitude_ = 0;
  int64_t sub_bucket_count_ = 0;
  int64_t sub_bucket_half_count_ = 0;
  uint64_t sub_bucket_mask_ = 0;
  int bucket_count_ = 0;
  std::vector<int64_t> counts_;
  int64_t total_ = 0;
  int64_t min_ = 0;
  int64_t max_ = 0;
  int64_t clamped_ = 0;
  double sum_ = 0;
  double sum_sq_ = 0;
};

}  // namespace squall::load
