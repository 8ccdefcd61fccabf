// HdrHistogram (reference/apps/hdr_histogram.h), squall-load's latency histogram: its
// percentiles against the exact nearest-rank percentiles of known samples — uniform,
// bimodal, a single huge outlier, and a merge of two — its layout (exact below 2048 units,
// 3 significant digits above, 1 ns .. 1 h) and its serialised form. Every expected value is
// a literal worked out by hand from the layout: a counter of a value v >= 2048 spans
// 2^(bit_width(v) - 11) values, and a percentile is reported as the top of the counter
// holding the sample of rank ceil(p/100 × N), at most the exact max.
#include "../apps/hdr_histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

using squall::load::HdrHistogram;

// The exact nearest-rank percentile of `samples` (sorted here).
int64_t exact_percentile(std::vector<int64_t> samples, double p) {
  std::sort(samples.begin(), samples.end());
  int64_t rank = HdrHistogram::rank_of(p, static_cast<int64_t>(samples.size()));
  return samples[static_cast<size_t>(rank - 1)];
}

// Every reported percentile lies within the 3-significant-digit bound of the exact one.
void expect_within_three_digits(const HdrHistogram& h, const std::vector<int64_t>& samples) {
  for (double p : {0.0, 1.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 99.999, 100.0}) {
    int64_t exact = exact_percentile(samples, p);
    int64_t got = h.value_at_percentile(p);
    EXPECT_GE(got, exact) << "p" << p;
    EXPECT_LE(static_cast<double>(got - exact), static_cast<double>(exact) / 1000.0) << "p" << p;
  }
}

TEST(HdrHistogramLayout, DefaultCoversOneNanosecondToOneHourInThirtyThreeThousandCounters) {
  HdrHistogram h;
  EXPECT_EQ(h.lowest_discernible(), 1);
  EXPECT_EQ(h.highest_trackable(), int64_t{3'600'000'000'000});
  EXPECT_EQ(h.counts_length(), 33792u);  // (32 buckets + 1) × 1024
  EXPECT_LT(h.index_of(int64_t{3'600'000'000'000}), h.counts_length());
}

TEST(HdrHistogramLayout, ValuesBelow2048AreExactAndLargerOnesKeepThreeSignificantDigits) {
  HdrHistogram h;
  for (int64_t v : {0, 1, 2, 999, 1000, 1023, 1024, 2047}) {
    EXPECT_EQ(h.lowest_equivalent(v), v);
    EXPECT_EQ(h.highest_equivalent(v), v);
  }
  EXPECT_EQ(h.lowest_equivalent(2049), 2048);
  EXPECT_EQ(h.highest_equivalent(2048), 2049);
  EXPECT_EQ(h.lowest_equivalent(1'000'000), 999'936);  // width 512 in [2^19, 2^20)
  EXPECT_EQ(h.highest_equivalent(1'000'000), 1'000'447);
  // 1 µs .. 1 h: each counter spans less than a thousandth of its values.
  for (int64_t v = 1000; v <= int64_t{3'600'000'000'000}; v = v * 3 + 7) {
    EXPECT_LE(h.highest_equivalent(v) - h.lowest_equivalent(v), v / 1000) << v;
    EXPECT_EQ(h.value_at_index(h.index_of(v)), h.lowest_equivalent(v)) << v;
  }
}

TEST(HdrHistogramLayout, RejectsImpossibleLayouts) {
  EXPECT_THROW(HdrHistogram(0, 1000, 3), std::invalid_argument);
  EXPECT_THROW(HdrHistogram(1, 1, 3), std::invalid_argument);
  EXPECT_THROW(HdrHistogram(1, 1000, 0), std::invalid_argument);
  EXPECT_THROW(HdrHistogram(1, 1000, 6), std::invalid_argument);
}

TEST(HdrHistogramRank, NearestRankSurvivesFloatingPoint) {
  EXPECT_EQ(HdrHistogram::rank_of(99.9, 1000), 999);  // 99.9/100*1000 = 999.0000000000001
  EXPECT_EQ(HdrHistogram::rank_of(99.99, 10000), 9999);
  EXPECT_EQ(HdrHistogram::rank_of(50.0, 1), 1);
  EXPECT_EQ(HdrHistogram::rank_of(0.0, 10), 1);
  EXPECT_EQ(HdrHistogram::rank_of(100.0, 10), 10);
  EXPECT_EQ(HdrHistogram::rank_of(90.01, 10000), 9001);
  EXPECT_EQ(HdrHistogram::rank_of(50.0, 0), 0);
}

TEST(HdrHistogramPercentiles, EmptyReportsZero) {
  HdrHistogram h;
  EXPECT_EQ(h.total_count(), 0);
  EXPECT_EQ(h.value_at_percentile(99.0), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(HdrHistogramPercentiles, UniformOneToOneHundredThousand) {
  HdrHistogram h;
  std::vector<int64_t> samples;
  for (int64_t v = 1; v <= 100'000; ++v) {
    h.record(v);
    samples.push_back(v);
  }
  EXPECT_EQ(h.total_count(), 100'000);
  EXPECT_EQ(h.value_at_percentile(50.0), 50'015);     // sample 50,000 in [49,984, 50,015]
  EXPECT_EQ(h.value_at_percentile(90.0), 90'047);     // sample 90,000 in [89,984, 90,047]
  EXPECT_EQ(h.value_at_percentile(99.0), 99'007);     // sample 99,000 in [98,944, 99,007]
  EXPECT_EQ(h.value_at_percentile(99.9), 99'903);     // sample 99,900 in [99,840, 99,903]
  EXPECT_EQ(h.value_at_percentile(99.99), 100'000);   // sample 99,990: its counter tops at max
  EXPECT_EQ(h.value_at_percentile(100.0), 100'000);
  EXPECT_EQ(h.value_at_percentile(0.001), 1);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100'000);
  EXPECT_DOUBLE_EQ(h.mean(), 50'000.5);
  EXPECT_NEAR(h.stddev(), 28'867.51, 0.01);  // sqrt((100000^2 - 1) / 12)
  EXPECT_EQ(h.count_at_or_below(2047), 2047);
  expect_within_three_digits(h, samples);
}

TEST(HdrHistogramPercentiles, BimodalNanosecondsAndMilliseconds) {
  HdrHistogram h;
  std::vector<int64_t> samples;
  for (int i = 0; i < 9000; ++i) samples.push_back(1000 + i % 100);             // 1.000..1.099 µs
  for (int j = 0; j < 1000; ++j) samples.push_back(5'000'000 + int64_t{1000} * j);  // 5.000..5.999 ms
  for (int64_t v : samples) h.record(v);
  EXPECT_EQ(h.value_at_percentile(50.0), 1055);        // rank 5,000: exact below 2048
  EXPECT_EQ(h.value_at_percentile(90.0), 1099);        // rank 9,000: the last of the fast mode
  EXPECT_EQ(h.value_at_percentile(90.01), 5'001'215);  // rank 9,001: 5,000,000 in [4,997,120, 5,001,215]
  EXPECT_EQ(h.value_at_percentile(95.0), 5'500'927);   // 5,499,000 in [5,496,832, 5,500,927]
  EXPECT_EQ(h.value_at_percentile(99.0), 5'902'335);   // 5,899,000 in [5,898,240, 5,902,335]
  EXPECT_EQ(h.value_at_percentile(99.9), 5'992'447);   // 5,989,000 in [5,988,352, 5,992,447]
  EXPECT_EQ(h.value_at_percentile(100.0), 5'999'000);
  EXPECT_DOUBLE_EQ(h.mean(), 550'894.55);
  expect_within_three_digits(h, samples);
}

TEST(HdrHistogramPercentiles, OneHugeOutlierShowsOnlyAtTheTopAndInTheMax) {
  HdrHistogram h;
  h.record(1000, 999'999);                      // a million samples: all 1 µs...
  h.record(int64_t{3'600'000'000'000});         // ...but one of an hour
  EXPECT_EQ(h.total_count(), 1'000'000);
  EXPECT_EQ(h.value_at_percentile(50.0), 1000);
  EXPECT_EQ(h.value_at_percentile(99.99), 1000);
  EXPECT_EQ(h.value_at_percentile(99.9999), 1000);  // rank 999,999
  EXPECT_EQ(h.value_at_percentile(100.0), int64_t{3'600'000'000'000});
  EXPECT_EQ(h.max(), int64_t{3'600'000'000'000});
  EXPECT_EQ(h.min(), 1000);
  EXPECT_DOUBLE_EQ(h.mean(), 3'600'999.999);
  EXPECT_EQ(h.clamped(), 0);
  // Beyond the trackable range: counted at the top, the true max kept, and said so.
  h.record(int64_t{7'200'000'000'000});
  EXPECT_EQ(h.clamped(), 1);
  EXPECT_EQ(h.max(), int64_t{7'200'000'000'000});
  EXPECT_EQ(h.total_count(), 1'000'001);
}

TEST(HdrHistogramMerge, TwoHalvesAddUpToTheWhole) {
  HdrHistogram low, high, whole;
  for (int64_t v = 1; v <= 100'000; ++v) {
    (v <= 50'000 ? low : high).record(v);
    whole.record(v);
  }
  EXPECT_EQ(low.value_at_percentile(100.0), 50'000);
  EXPECT_EQ(high.value_at_percentile(0.0), 50'015);  // 50,001's counter tops at 50,015
  HdrHistogram merged;
  merged.add(low);
  merged.add(high);
  EXPECT_EQ(merged.total_count(), 100'000);
  EXPECT_EQ(merged.min(), 1);
  EXPECT_EQ(merged.max(), 100'000);
  EXPECT_EQ(merged.value_at_percentile(50.0), 50'015);
  EXPECT_EQ(merged.value_at_percentile(99.0), 99'007);
  EXPECT_EQ(merged.value_at_percentile(99.9), 99'903);
  EXPECT_DOUBLE_EQ(merged.mean(), 50'000.5);
  EXPECT_EQ(merged.serialize(), whole.serialize());  // the same counters and sums
  EXPECT_THROW(merged.add(HdrHistogram(1, 1'000'000, 3)), std::invalid_argument);
  EXPECT_THROW(merged.add(HdrHistogram(1, HdrHistogram::kDefaultHighest, 2)), std::invalid_argument);
}

TEST(HdrHistogramSerialise, KnownEncoding) {
  HdrHistogram h;
  h.record(1);
  h.record(3, 2);
  // counters 0,1,0,2 -> varints -1, 1, -1, 2 -> ZigZag 1, 2, 1, 4 -> base64 of 01 02 01 04
  EXPECT_EQ(h.serialize(), "squall-hdr-1 1 3600000000000 3 1 3 7 19 AQIBBA==");
  EXPECT_EQ(HdrHistogram().serialize(), "squall-hdr-1 1 3600000000000 3 0 0 0 0 ");
}

TEST(HdrHistogramSerialise, RoundTripKeepsEveryCounterAndFigure) {
  HdrHistogram h;
  for (int i = 0; i < 9000; ++i) h.record(1000 + i % 100);
  for (int j = 0; j < 1000; ++j) h.record(5'000'000 + int64_t{1000} * j);
  h.record(int64_t{3'000'000'000'000});
  std::optional<HdrHistogram> back = HdrHistogram::deserialize(h.serialize());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->serialize(), h.serialize());
  EXPECT_EQ(back->total_count(), 10'001);
  EXPECT_EQ(back->min(), 1000);
  EXPECT_EQ(back->max(), int64_t{3'000'000'000'000});
  for (double p : {50.0, 90.0, 99.0, 99.9, 99.99, 100.0})
    EXPECT_EQ(back->value_at_percentile(p), h.value_at_percentile(p)) << p;
  EXPECT_DOUBLE_EQ(back->mean(), h.mean());
  std::optional<HdrHistogram> empty = HdrHistogram::deserialize(HdrHistogram().serialize());
  ASSERT_TRUE(empty.has_value());
  EXPECT_EQ(empty->total_count(), 0);
}

TEST(HdrHistogramSerialise, MalformedTextIsRefused) {
  EXPECT_FALSE(HdrHistogram::deserialize(""));
  EXPECT_FALSE(HdrHistogram::deserialize("squall-hdr-2 1 3600000000000 3 1 3 7 19 AQIBBA=="));
  EXPECT_FALSE(HdrHistogram::deserialize("squall-hdr-1 1 3600000000000 3 1 3 7 19 AQIBBA="));   // bad base64
  EXPECT_FALSE(HdrHistogram::deserialize("squall-hdr-1 1 3600000000000 3 1 3 7 19 gA=="));      // truncated varint
  EXPECT_FALSE(HdrHistogram::deserialize("squall-hdr-1 0 10 3 1 3 7 19 AQIBBA=="));             // bad layout
  EXPECT_FALSE(HdrHistogram::deserialize("squall-hdr-1 1 3600000000000 3 1 3 7 AQIBBA=="));     // a field missing
  EXPECT_FALSE(HdrHistogram::deserialize("squall-hdr-1 1 4096 3 0 0 0 0 /////w8="));            // run past the end
}

}  // namespace
