// A log-linear latency histogram with HdrHistogram's bucket layout: values are kept to a fixed
// number of significant decimal digits (3 by default: every recorded value is known to within
// 0.1%), from 0 up to a highest trackable value, in a fixed array of counters. With 3 digits and
// a highest value of 60,000,000 (60 s in microseconds) that is 17,408 counters (136 KiB), however
// many values are recorded. Values above the highest trackable one are clamped to it.
//
// Layout (as in HdrHistogram): sub_bucket_count = the power of two >= 2 * 10^digits (2048 for 3
// digits). Bucket 0 holds 0..sub_bucket_count-1 at resolution 1; bucket k >= 1 holds the upper
// half of its range, [sub_bucket_count << (k-1), sub_bucket_count << k), at resolution 2^k.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace backcheck::bench {

class Histogram {
 public:
  explicit Histogram(std::uint64_t highest_trackable = 60'000'000, int significant_digits = 3)
      : highest_(highest_trackable) {
    if (significant_digits < 1 || significant_digits > 5) throw std::invalid_argument("significant_digits: 1..5");
    if (highest_trackable < 2) throw std::invalid_argument("highest_trackable must be >= 2");
    std::uint64_t resolution = 2;
    for (int i = 0; i < significant_digits; ++i) resolution *= 10;
    int sub_bucket_count_magnitude = 0;
    while ((std::uint64_t{1} << sub_bucket_count_magnitude) < resolution) ++sub_bucket_count_magnitude;
    half_magnitude_ = sub_bucket_count_magnitude - 1;
    sub_bucket_count_ = std::uint64_t{1} << sub_bucket_count_magnitude;
    half_count_ = sub_bucket_count_ / 2;
    mask_ = sub_bucket_count_ - 1;
    leading_zero_base_ = 64 - half_magnitude_ - 1;
    int buckets = 1;
    std::uint64_t smallest_untrackable = sub_bucket_count_;
    while (smallest_untrackable <= highest_trackable) {
      if (smallest_untrackable > std::numeric_limits<std::uint64_t>::max() / 2) {
        ++buckets;
        break;
      }
      smallest_untrackable <<= 1;
      ++buckets;
    }
    counts_.assign(static_cast<std::size_t>(buckets + 1) * half_count_, 0);
  }

  void record(std::uint64_t value, std::uint64_t n = 1) {
    value = std::min(value, highest_);
    counts_[index_of(value)] += n;
    total_ += n;
    sum_ += static_cast<long double>(value) * static_cast<long double>(n);
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  // Adds another histogram's counts; both must have been built with the same arguments.
  void merge(const Histogram& other) {
    if (other.counts_.size() != counts_.size() || other.highest_ != highest_)
      throw std::invalid_argument("Histogram::merge: different layouts");
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    total_ += other.total_;
    sum_ += other.sum_;
    if (other.total_ > 0) {
      min_ = std::min(min_, other.min_);
      max_ = std::max(max_, other.max_);
    }
  }

  void reset() {
    std::fill(counts_.begin(), counts_.end(), 0);
    total_ = 0;
    sum_ = 0;
    min_ = std::numeric_limits<std::uint64_t>::max();
    max_ = 0;
  }

  std::uint64_t count() const { return total_; }
  std::uint64_t min() const { return total_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }  // exact (clamped to highest_trackable)
  double mean() const { return total_ ? static_cast<double>(sum_ / static_cast<long double>(total_)) : 0.0; }

  // The smallest value v such that at least `percentile`% of the recorded values are <= v, as
  // the highest value equivalent to its bucket (never above the exact maximum). 0 when empty.
  std::uint64_t value_at_percentile(double percentile) const {
    if (total_ == 0) return 0;
    percentile = std::clamp(percentile, 0.0, 100.0);
    if (percentile >= 100.0) return max_;
    auto wanted = static_cast<std::uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(total_)));
    wanted = std::clamp<std::uint64_t>(wanted, 1, total_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= wanted) return std::min(highest_equivalent(i), max_);
    }
    return max_;
  }

  std::size_t counter_count() const { return counts_.size(); }

  // The range of values a counter holds (for tests and dumps).
  std::uint64_t lowest_equivalent(std::size_t index) const {
    auto [bucket, sub] = split(index);
    return sub << bucket;
  }
  std::uint64_t highest_equivalent(std::size_t index) const {
    auto [bucket, sub] = split(index);
    return (sub << bucket) + (std::uint64_t{1} << bucket) - 1;
  }
  std::size_t index_of(std::uint64_t value) const {
    const int bucket = leading_zero_base_ - std::countl_zero(value | mask_);
    const std::uint64_t sub = value >> bucket;
    return (static_cast<std::size_t>(bucket + 1) << half_magnitude_) + static_cast<std::size_t>(sub - half_count_);
  }

 private:
  std::pair<int, std::uint64_t> split(std::size_t index) const {
    int bucket = static_cast<int>(index >> half_magnitude_) - 1;
    std::uint64_t sub = (index & (half_count_ - 1)) + half_count_;
    if (bucket < 0) {
      sub -= half_count_;
      bucket = 0;
    }
    return {bucket, sub};
  }

  std::uint64_t highest_;
  int half_magnitude_ = 0;
  std::uint64_t sub_bucket_count_ = 0;
  std::uint64_t half_count_ = 0;
  std::uint64_t mask_ = 0;
  int leading_zero_base_ = 0;
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  long double sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

}  // namespace backcheck::bench
