#include "cache/store_meta.hpp"

namespace storecache::cache {

namespace {

class writer {
 public:
  explicit writer(std::string& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i)
      out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.append(s);
  }

 private:
  std::string& out_;
};

class reader {
 public:
  explicit reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == in_.size(); }
  std::uint8_t u8() { return static_cast<std::uint8_t>(fixed(1)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(fixed(4)); }
  std::uint64_t u64() { return fixed(8); }
  std::string str() {
    const std::uint32_t n = u32();
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return {};
    }
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }

 private:
  std::uint64_t fixed(std::size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i)
      v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i);
    pos_ += n;
    return v;
  }
  std::string_view in_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

std::uint64_t to_ns(clock_time t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}
clock_time from_ns(std::uint64_t v) {
  return clock_time(std::chrono::duration_cast<clock_time::duration>(
      std::chrono::nanoseconds(static_cast<std::int64_t>(v))));
}

}  // namespace

std::string encode_meta(const object_meta& m) {
  std::string out;
  out.reserve(96 + m.primary_key.size() + m.variant_key.size() + m.head.headers.size() * 48);
  writer w(out);
  w.u64(m.access_tick);  // offset 0, see with_access_tick()
  w.u8(meta_format);
  w.u8(static_cast<std::uint8_t>(m.location));
  w.u32(m.head.status);
  w.u64(m.object_id);
  w.u64(m.body_size);
  w.u32(m.checksum);
  w.u64(m.charge);
  w.u64(to_ns(m.head.request_time));
  w.u64(to_ns(m.head.response_time));
  w.str(m.primary_key);
  w.str(m.variant_key);
  w.u32(static_cast<std::uint32_t>(m.head.headers.size()));
  for (const auto& h : m.head.headers) {
    w.str(h.name);
    w.str(h.value);
  }
  return out;
}

std::optional<object_meta> decode_meta(std::string_view bytes) {
  reader r(bytes);
  object_meta m;
  m.access_tick = r.u64();
  if (r.u8() != meta_format) return std::nullopt;
  const std::uint8_t loc = r.u8();
  if (loc > 1) return std::nullopt;
  m.location = static_cast<body_location>(loc);
  m.head.status = r.u32();
  m.object_id = r.u64();
  m.body_size = r.u64();
  m.checksum = r.u32();
  m.charge = r.u64();
  // Stored times are our clock's when the response came, after 1970; one past 2100 (or, as
  // signed, before 1970) is damage, and would overflow the policy's age arithmetic.
  constexpr std::uint64_t latest_ns = 4'102'444'800ULL * 1'000'000'000ULL;  // 2100-01-01
  const std::uint64_t request_ns = r.u64(), response_ns = r.u64();
  if (request_ns > latest_ns || response_ns > latest_ns) return std::nullopt;
  m.head.request_time = from_ns(request_ns);
  m.head.response_time = from_ns(response_ns);
  m.primary_key = r.str();
  m.variant_key = r.str();
  const std::uint32_t n = r.u32();
  if (!r.ok() || n > bytes.size() / 8) return std::nullopt;  // each field takes >= 8 bytes
  m.head.headers.reserve(n);
  for (std::uint32_t i = 0; i < n && r.ok(); ++i) {
    header h;
    h.name = r.str();
    h.value = r.str();
    m.head.headers.push_back(std::move(h));
  }
  if (!r.ok() || !r.at_end()) return std::nullopt;
  return m;
}

std::uint64_t encoded_access_tick(std::string_view bytes) {
  reader r(bytes);
  const std::uint64_t t = r.u64();
  return r.ok() ? t : 0;
}

std::string with_access_tick(std::string_view bytes, std::uint64_t tick) {
  std::string out(bytes);
  if (out.size() >= 8)
    for (int i = 0; i < 8; ++i)
      out[i] = static_cast<char>(tick >> (8 * i));
  return out;
}

}  // namespace storecache::cache
