#include "core/gguf.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <type_traits>
#include <unordered_set>

namespace mw {

static_assert(std::is_same_v<
              std::variant_alternative_t<static_cast<std::size_t>(GgufValueType::float32), GgufValue::Storage>, float>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(GgufValueType::array), GgufValue::Storage>,
                   GgufArray>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(GgufValueType::float64), GgufValue::Storage>,
                   double>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(GgufValueType::array), GgufArray::Items>,
                   std::vector<GgufArray>>);
static_assert(
    std::is_same_v<std::variant_alternative_t<static_cast<std::size_t>(GgufValueType::float64), GgufArray::Items>,
                   std::vector<double>>);
static_assert(std::variant_size_v<GgufValue::Storage> == 13 && std::variant_size_v<GgufArray::Items> == 13);

namespace detail {

struct GgufStringsFill {
  static std::string& data(GgufStrings& strings) { return strings.m_own; }
  static std::vector<std::size_t>& ends(GgufStrings& strings) { return strings.m_ends; }
  // Makes `strings` a view into `buffer`: string 0 starts at `first`, each next one `gap` bytes after the
  // previous one's end (its length prefix); ends() must be absolute offsets in the buffer.
  static void view(GgufStrings& strings, std::shared_ptr<const char[]> buffer, std::size_t first, std::size_t gap) {
    strings.m_own.clear();
    strings.m_view = std::move(buffer);
    strings.m_first = first;
    strings.m_gap = gap;
  }
};

}  // namespace detail

namespace {

constexpr std::uint64_t k_max_u64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t k_max_i64 = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

struct TypeRow {
  std::uint32_t id;
  GgmlTypeTraits traits;
};

// ggml's type_traits (block size, bytes per block), src/ggml-common.h and src/ggml.c.
constexpr std::array<TypeRow, 35> k_ggml_types{{
    {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},      {3, {"Q4_1", 32, 20}},
    {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},      {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 36}},
    {10, {"Q2_K", 256, 84}},    {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}}, {17, {"IQ2_XS", 256, 74}},
    {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},   {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},
    {22, {"IQ2_S", 256, 82}},   {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},        {29, {"IQ1_M", 256, 56}},
    {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},   {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},
    {40, {"NVFP4", 64, 36}},    {41, {"Q1_0", 128, 18}},    {42, {"Q2_0", 64, 18}},
}};

std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > k_max_u64 / a) {
    return std::nullopt;
  }
  return a * b;
}

std::optional<std::uint64_t> checked_add(std::uint64_t a, std::uint64_t b) {
  if (b > k_max_u64 - a) {
    return std::nullopt;
  }
  return a + b;
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return checked_add(a, b).value_or(k_max_u64);
}

std::string quoted(std::string_view text) {
  constexpr std::size_t k_shown = 80;
  std::string out = "'";
  for (const char ch : text.substr(0, k_shown)) {
    const auto byte = static_cast<unsigned char>(ch);
    out += byte >= 0x20 && byte < 0x7f ? ch : '?';
  }
  out += text.size() > k_shown ? "...'" : "'";
  return out;
}

std::string hex_bytes(std::string_view bytes) {
  static constexpr char k_digits[] = "0123456789abcdef";
  std::string out;
  for (const char ch : bytes) {
    const auto byte = static_cast<unsigned char>(ch);
    if (!out.empty()) {
      out += ' ';
    }
    out += k_digits[byte >> 4U];
    out += k_digits[byte & 0xfU];
  }
  return out;
}

template <class T>
T load_le(const char* p) {
  T value{};
  std::memcpy(&value, p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) {
    auto* raw = reinterpret_cast<unsigned char*>(&value);  // NOLINT
    std::reverse(raw, raw + sizeof(T));
  }
  return value;
}

// Reads little-endian fields from `bytes`, the first part of a file of `limit` bytes. The first failure
// sticks: later reads return zeros and ok() stays false, so loops check once per item.
class Cursor {
 public:
  Cursor(std::string_view bytes, std::uint64_t limit, bool size_known)
      : m_bytes(bytes), m_limit(limit), m_size_known(size_known) {}
  // String arrays become views into `shared`, which holds `bytes`.
  void share(std::shared_ptr<const char[]> shared) { m_shared = std::move(shared); }

  [[nodiscard]] bool ok() const { return !m_failed; }
  [[nodiscard]] std::uint64_t pos() const { return m_pos; }
  [[nodiscard]] const std::string& message() const { return m_message; }
  [[nodiscard]] int code() const { return m_code; }
  [[nodiscard]] std::uint64_t needed() const { return m_needed; }

  void set_error(std::string message, int code = 0) {
    if (!m_failed) {
      m_failed = true;
      m_message = std::move(message);
      m_code = code;
    }
  }
  void add_context(const std::string& prefix) { m_message.insert(0, prefix); }

  // `n` more bytes must be there.
  bool need(std::uint64_t n, std::string_view what) {
    if (!m_failed && n <= m_bytes.size() - m_pos) [[likely]] {
      return true;
    }
    return missing(n, what);
  }

  // `n` more bytes are not there (or an earlier read failed): the error.
  [[gnu::noinline, gnu::cold]] bool missing(std::uint64_t n, std::string_view what) {
    if (m_failed) {
      return false;
    }
    const std::string where =
        std::string(what) + " (" + std::to_string(n) + " bytes at byte " + std::to_string(m_pos) + ")";
    if (n > m_limit - m_pos) {
      if (m_size_known) {
        set_error(where + " runs past the end of the file (" + std::to_string(m_limit) + " bytes)");
      } else {
        short_of(saturating_add(m_pos, n),
                 where + " runs past the end of the " + std::to_string(m_bytes.size()) + " bytes given");
      }
    } else {
      short_of(m_pos + n, where + " lies past the first " + std::to_string(m_bytes.size()) + " bytes read");
    }
    return false;
  }

  // `count` items of at least `item_size` bytes each can fit in what is left: in the file when its size
  // is known (the bytes read so far may be only its start), else in the bytes given.
  bool fits(std::uint64_t count, std::uint64_t item_size, std::string_view what) {
    if (m_failed) {
      return false;
    }
    const std::uint64_t left = m_limit - m_pos;
    if (count <= left / item_size) {
      return true;
    }
    const std::string claim = std::string(what) + ": " + std::to_string(count) + " entries of at least " +
                              std::to_string(item_size) + " bytes from byte " + std::to_string(m_pos);
    if (m_size_known) {
      set_error(claim + " cannot fit in the " + std::to_string(left) + " bytes left in the file");
    } else {
      short_of(saturating_add(m_pos, checked_mul(count, item_size).value_or(k_max_u64)),
               claim + " cannot fit in the " + std::to_string(left) + " bytes given");
    }
    return false;
  }

  // How many more items of `item_size` bytes the bytes read so far can hold (to bound a reserve()).
  [[nodiscard]] std::uint64_t room_for(std::uint64_t item_size) const { return (m_bytes.size() - m_pos) / item_size; }

  template <class T>
  T read(std::string_view what) {
    if (!need(sizeof(T), what)) {
      return T{};
    }
    const T value = load_le<T>(m_bytes.data() + m_pos);
    m_pos += sizeof(T);
    return value;
  }

  std::string_view read_bytes(std::uint64_t n, std::string_view what) {
    if (!need(n, what)) {
      return {};
    }
    const auto out = m_bytes.substr(static_cast<std::size_t>(m_pos), static_cast<std::size_t>(n));
    m_pos += n;
    return out;
  }

  // A gguf string: u64 length, then the bytes.
  std::string_view read_string(std::string_view what) {
    const auto length = read<std::uint64_t>(what);
    return read_bytes(length, what);
  }

  // `count` gguf strings into `out` at once: a first pass checks every length against the bytes read and
  // adds them up, a second copies the strings into buffers of the exact size. False (nothing read) when
  // a string is not all there: the caller then reads them one by one to say which.
  bool read_strings(std::uint64_t count, GgufStrings& out);

  // `count` fixed-size little-endian values.
  template <class T>
  std::vector<T> read_fixed(std::uint64_t count, std::string_view what) {
    if (!fits(count, sizeof(T), what) || !need(count * sizeof(T), what)) {
      return {};
    }
    std::vector<T> out(static_cast<std::size_t>(count));
    const char* p = m_bytes.data() + m_pos;
    if constexpr (std::endian::native == std::endian::little) {
      if (count > 0) {
        std::memcpy(out.data(), p, static_cast<std::size_t>(count) * sizeof(T));
      }
    } else {
      for (std::size_t i = 0; i < out.size(); ++i) {
        out[i] = load_le<T>(p + i * sizeof(T));
      }
    }
    m_pos += count * sizeof(T);
    return out;
  }

 private:
  void short_of(std::uint64_t needed, std::string message) {
    set_error("the header is cut off: " + message + "; at least " + std::to_string(needed) + " bytes are needed",
              ENODATA);
    m_needed = needed;
  }

  std::string_view m_bytes;
  std::shared_ptr<const char[]> m_shared;  // when set, m_bytes lies in it
  std::uint64_t m_limit;
  bool m_size_known;
  std::uint64_t m_pos = 0;
  bool m_failed = false;
  std::string m_message;
  int m_code = 0;
  std::uint64_t m_needed = 0;
};

bool Cursor::read_strings(std::uint64_t count, GgufStrings& out) {
  if (m_failed || count > room_for(sizeof(std::uint64_t))) {
    return false;
  }
  // First pass: the lengths, each checked, their running total kept as the strings' ends.
  const char* const begin = m_bytes.data() + m_pos;
  const std::uint64_t avail = m_bytes.size() - m_pos;
  auto& ends = detail::GgufStringsFill::ends(out);
  ends.resize(static_cast<std::size_t>(count));
  std::size_t* const string_end = ends.data();
  std::uint64_t at = 0;
  std::size_t total = 0;
  for (std::size_t i = 0; i < ends.size(); ++i) {
    if (avail - at < sizeof(std::uint64_t)) {
      ends = {};
      return false;
    }
    const auto length = load_le<std::uint64_t>(begin + at);
    at += sizeof(std::uint64_t);
    if (length > avail - at) {
      ends = {};
      return false;
    }
    at += length;
    total += static_cast<std::size_t>(length);
    string_end[i] = m_shared && count > 0 ? static_cast<std::size_t>(m_pos + at) : total;
  }
  if (m_shared && count > 0) {  // a view: string i starts 8 bytes (its length) after string i - 1 ends
    detail::GgufStringsFill::view(out, m_shared, static_cast<std::size_t>(m_pos) + sizeof(std::uint64_t),
                                  sizeof(std::uint64_t));
    m_pos += at;
    return true;
  }
  // Second pass: the bytes. String i starts at begin + 8 * (i + 1) + ends[i - 1], so the copies do not
  // wait on each other. One of up to k_chunk bytes is copied as k_chunk bytes (a fixed-size copy, no
  // call; the next string's copy overwrites the excess), so the buffer has k_chunk bytes to spare.
  constexpr std::size_t k_chunk = 16;
  auto& data = detail::GgufStringsFill::data(out);
  data.resize(total + k_chunk);
  char* const dst = data.data();
  const char* const end = begin + at;
  std::size_t start = 0;
  for (std::size_t i = 0; i < ends.size(); ++i) {
    const std::size_t length = ends[i] - start;
    const char* const src = begin + (i + 1) * sizeof(std::uint64_t) + start;
    if (length <= k_chunk && static_cast<std::size_t>(end - src) >= k_chunk) {
      std::memcpy(dst + start, src, k_chunk);
    } else {
      std::memcpy(dst + start, src, length);
    }
    start = ends[i];
  }
  data.resize(total);
  m_pos += at;
  return true;
}

bool known_value_type(std::uint32_t type) {
  return type <= static_cast<std::uint32_t>(GgufValueType::float64);
}

GgufArray read_array(Cursor& in, std::size_t depth);

GgufValue read_value(Cursor& in, std::uint32_t type, std::size_t depth) {
  switch (static_cast<GgufValueType>(type)) {
    case GgufValueType::uint8:
      return {in.read<std::uint8_t>("a uint8 value")};
    case GgufValueType::int8:
      return {in.read<std::int8_t>("an int8 value")};
    case GgufValueType::uint16:
      return {in.read<std::uint16_t>("a uint16 value")};
    case GgufValueType::int16:
      return {in.read<std::int16_t>("an int16 value")};
    case GgufValueType::uint32:
      return {in.read<std::uint32_t>("a uint32 value")};
    case GgufValueType::int32:
      return {in.read<std::int32_t>("an int32 value")};
    case GgufValueType::float32:
      return {in.read<float>("a float32 value")};
    case GgufValueType::boolean:
      return {in.read<std::uint8_t>("a bool value") != 0};
    case GgufValueType::string:
      return {std::string(in.read_string("a string value"))};
    case GgufValueType::array:
      return {read_array(in, depth + 1)};
    case GgufValueType::uint64:
      return {in.read<std::uint64_t>("a uint64 value")};
    case GgufValueType::int64:
      return {in.read<std::int64_t>("an int64 value")};
    case GgufValueType::float64:
      return {in.read<double>("a float64 value")};
  }
  in.set_error("unknown value type " + std::to_string(type));
  return {};
}

// An array at nesting level `depth` (1 for an array that is a metadata value).
GgufArray read_array(Cursor& in, std::size_t depth) {
  if (depth > k_gguf_max_nesting) {
    in.set_error("arrays are nested more than " + std::to_string(k_gguf_max_nesting) + " deep");
    return {};
  }
  const auto element_type = in.read<std::uint32_t>("an array's element type");
  const auto count = in.read<std::uint64_t>("an array's length");
  if (!in.ok()) {
    return {};
  }
  switch (static_cast<GgufValueType>(element_type)) {
    case GgufValueType::uint8:
      return {in.read_fixed<std::uint8_t>(count, "an array of uint8")};
    case GgufValueType::int8:
      return {in.read_fixed<std::int8_t>(count, "an array of int8")};
    case GgufValueType::uint16:
      return {in.read_fixed<std::uint16_t>(count, "an array of uint16")};
    case GgufValueType::int16:
      return {in.read_fixed<std::int16_t>(count, "an array of int16")};
    case GgufValueType::uint32:
      return {in.read_fixed<std::uint32_t>(count, "an array of uint32")};
    case GgufValueType::int32:
      return {in.read_fixed<std::int32_t>(count, "an array of int32")};
    case GgufValueType::float32:
      return {in.read_fixed<float>(count, "an array of float32")};
    case GgufValueType::uint64:
      return {in.read_fixed<std::uint64_t>(count, "an array of uint64")};
    case GgufValueType::int64:
      return {in.read_fixed<std::int64_t>(count, "an array of int64")};
    case GgufValueType::float64:
      return {in.read_fixed<double>(count, "an array of float64")};
    case GgufValueType::boolean: {
      const auto raw = in.read_fixed<std::uint8_t>(count, "an array of bool");
      std::vector<bool> out(raw.size());
      for (std::size_t i = 0; i < raw.size(); ++i) {
        out[i] = raw[i] != 0;
      }
      return {std::move(out)};
    }
    case GgufValueType::string: {
      GgufStrings out;
      if (!in.fits(count, sizeof(std::uint64_t), "an array of strings")) {
        return {};
      }
      if (in.read_strings(count, out)) {
        return {std::move(out)};
      }
      out.reserve(static_cast<std::size_t>(std::min(count, in.room_for(sizeof(std::uint64_t)))),
                  static_cast<std::size_t>(in.room_for(1)));
      for (std::uint64_t i = 0; i < count && in.ok(); ++i) {
        out.push_back(in.read_string("a string in an array"));
      }
      return {std::move(out)};
    }
    case GgufValueType::array: {
      std::vector<GgufArray> out;
      constexpr std::uint64_t k_least = sizeof(std::uint32_t) + sizeof(std::uint64_t);
      if (!in.fits(count, k_least, "an array of arrays")) {
        return {};
      }
      out.reserve(static_cast<std::size_t>(std::min(count, in.room_for(k_least))));
      for (std::uint64_t i = 0; i < count && in.ok(); ++i) {
        out.push_back(read_array(in, depth + 1));
      }
      return {std::move(out)};
    }
  }
  in.set_error("unknown array element type " + std::to_string(element_type));
  return {};
}

std::string tensor_label(std::uint64_t index, std::string_view name) {
  std::string label = "tensor " + std::to_string(index);
  if (!name.empty()) {
    label += ' ';
    label += quoted(name);
  }
  label += ": ";
  return label;
}

// Reads one tensor info; the errors name neither the tensor nor the source (the caller adds them).
GgufTensorInfo read_tensor_info(Cursor& in, std::uint64_t alignment) {
  GgufTensorInfo info;
  const auto name = in.read_string("the tensor's name");
  if (!in.ok()) {
    return info;
  }
  info.name = std::string(name);
  if (name.size() > k_gguf_max_name) {
    in.set_error("a name of " + std::to_string(name.size()) + " bytes is longer than ggml's limit of " +
                 std::to_string(k_gguf_max_name));
    return info;
  }
  const auto n_dims = in.read<std::uint32_t>("the number of dimensions");
  if (!in.ok()) {
    return info;
  }
  if (n_dims == 0 || n_dims > k_gguf_max_dims) {
    in.set_error(std::to_string(n_dims) + " dimensions (1 to " + std::to_string(k_gguf_max_dims) + " are accepted)");
    return info;
  }
  info.dims = in.read_fixed<std::uint64_t>(n_dims, "the dimensions");
  info.type = in.read<std::uint32_t>("the ggml type");
  info.offset = in.read<std::uint64_t>("the data offset");
  if (!in.ok()) {
    return info;
  }
  std::uint64_t elements = 1;
  for (const auto dim : info.dims) {
    const auto product = checked_mul(elements, dim);
    if (dim > k_max_i64 || !product || *product > k_max_i64) {
      in.set_error("the dimensions " + [&] {
        std::string list;
        for (const auto d : info.dims) {
          list += (list.empty() ? "" : " x ") + std::to_string(d);
        }
        return list;
      }() + " overflow a 64-bit element count");
      return info;
    }
    elements = *product;
  }
  const auto traits = ggml_type_traits(info.type);
  if (!traits) {
    in.set_error("ggml type " + std::to_string(info.type) +
                 " is not one memwarden knows, so the tensor's size cannot be read");
    return info;
  }
  info.type_name = traits->name;
  if (info.dims[0] % traits->block_size != 0) {
    in.set_error("a row of " + std::to_string(info.dims[0]) + " elements is not a multiple of " +
                 std::string(traits->name) + "'s block of " + std::to_string(traits->block_size));
    return info;
  }
  const auto bytes = ggml_tensor_bytes(info.type, info.dims);
  if (!bytes) {
    in.set_error("its size in bytes overflows 64 bits");
    return info;
  }
  info.bytes = *bytes;
  if (info.offset % alignment != 0) {
    in.set_error("offset " + std::to_string(info.offset) + " is not a multiple of the alignment " +
                 std::to_string(alignment));
    return info;
  }
  if (!checked_add(info.offset, info.bytes)) {
    in.set_error("offset " + std::to_string(info.offset) + " + " + std::to_string(info.bytes) +
                 " bytes overflows 64 bits");
  }
  return info;
}

Result<std::uint64_t> alignment_of(const GgufFile& file, std::string_view source) {
  const auto* value = file.find("general.alignment");
  if (value == nullptr) {
    return k_gguf_default_alignment;
  }
  const auto* u32 = std::get_if<std::uint32_t>(&value->value);
  if (u32 == nullptr) {
    return fail(std::string(source),
                std::string("general.alignment is a ") + to_string(value->type()) + ", not a uint32");
  }
  if (*u32 == 0 || !std::has_single_bit(*u32)) {
    return fail(std::string(source), "general.alignment " + std::to_string(*u32) + " is not a power of 2");
  }
  return std::uint64_t{*u32};
}

}  // namespace

const char* to_string(GgufValueType type) {
  switch (type) {
    case GgufValueType::uint8:
      return "uint8";
    case GgufValueType::int8:
      return "int8";
    case GgufValueType::uint16:
      return "uint16";
    case GgufValueType::int16:
      return "int16";
    case GgufValueType::uint32:
      return "uint32";
    case GgufValueType::int32:
      return "int32";
    case GgufValueType::float32:
      return "float32";
    case GgufValueType::boolean:
      return "bool";
    case GgufValueType::string:
      return "string";
    case GgufValueType::array:
      return "array";
    case GgufValueType::uint64:
      return "uint64";
    case GgufValueType::int64:
      return "int64";
    case GgufValueType::float64:
      return "float64";
  }
  return "unknown";
}

GgufStrings::GgufStrings(std::initializer_list<std::string_view> items) {
  for (const auto item : items) {
    push_back(item);
  }
}

void GgufStrings::reserve(std::size_t count, std::size_t bytes) {
  own();
  m_ends.reserve(count);
  m_own.reserve(bytes);
}

void GgufStrings::own() {
  if (!m_view) {
    return;
  }
  std::string data;
  std::vector<std::size_t> ends;
  ends.reserve(m_ends.size());
  for (const auto item : *this) {
    data.append(item);
    ends.push_back(data.size());
  }
  m_own = std::move(data);
  m_ends = std::move(ends);
  m_view.reset();
  m_first = 0;
  m_gap = 0;
}

void GgufStrings::push_back(std::string_view item) {
  own();
  m_own.append(item);
  m_ends.push_back(m_own.size());
}

bool operator==(const GgufStrings& a, const GgufStrings& b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      return false;
    }
  }
  return true;
}

std::size_t GgufArray::size() const {
  return std::visit([](const auto& list) { return list.size(); }, items);
}

std::optional<std::uint64_t> GgufValue::as_u64() const {
  return std::visit(
      [](const auto& v) -> std::optional<std::uint64_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_signed_v<T>) {
            if (v < 0) {
              return std::nullopt;
            }
          }
          return static_cast<std::uint64_t>(v);
        } else {
          return std::nullopt;
        }
      },
      value);
}

std::optional<std::int64_t> GgufValue::as_i64() const {
  return std::visit(
      [](const auto& v) -> std::optional<std::int64_t> {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
          if constexpr (std::is_unsigned_v<T>) {
            if (static_cast<std::uint64_t>(v) > k_max_i64) {
              return std::nullopt;
            }
          }
          return static_cast<std::int64_t>(v);
        } else {
          return std::nullopt;
        }
      },
      value);
}

std::optional<double> GgufValue::as_f64() const {
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using T = std::decay_t<decltype(v)>;
        if constexpr ((std::is_integral_v<T> && !std::is_same_v<T, bool>) || std::is_floating_point_v<T>) {
          return static_cast<double>(v);
        } else {
          return std::nullopt;
        }
      },
      value);
}

std::optional<std::string_view> GgufValue::as_string() const {
  if (const auto* s = std::get_if<std::string>(&value)) {
    return std::string_view(*s);
  }
  return std::nullopt;
}

const GgufArray* GgufValue::as_array() const {
  return std::get_if<GgufArray>(&value);
}

std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t type) {
  for (const auto& row : k_ggml_types) {
    if (row.id == type) {
      return row.traits;
    }
  }
  return std::nullopt;
}

std::optional<std::uint64_t> ggml_row_bytes(std::uint32_t type, std::uint64_t elements) {
  const auto traits = ggml_type_traits(type);
  if (!traits || elements % traits->block_size != 0) {
    return std::nullopt;
  }
  return checked_mul(elements / traits->block_size, traits->type_size);
}

std::optional<std::uint64_t> ggml_tensor_bytes(std::uint32_t type, const std::vector<std::uint64_t>& dims) {
  if (dims.empty()) {
    return std::nullopt;
  }
  auto bytes = ggml_row_bytes(type, dims[0]);
  for (std::size_t i = 1; i < dims.size() && bytes; ++i) {
    bytes = checked_mul(*bytes, dims[i]);
  }
  return bytes;
}

std::uint64_t GgufTensorInfo::elements() const {
  return std::accumulate(dims.begin(), dims.end(), std::uint64_t{1}, std::multiplies<>());
}

const GgufValue* GgufFile::find(std::string_view key) const {
  for (const auto& kv : metadata) {
    if (kv.key == key) {
      return &kv.value;
    }
  }
  return nullptr;
}

std::optional<std::uint64_t> GgufFile::get_u64(std::string_view key) const {
  const auto* v = find(key);
  return v != nullptr ? v->as_u64() : std::nullopt;
}

std::optional<std::int64_t> GgufFile::get_i64(std::string_view key) const {
  const auto* v = find(key);
  return v != nullptr ? v->as_i64() : std::nullopt;
}

std::optional<double> GgufFile::get_f64(std::string_view key) const {
  const auto* v = find(key);
  return v != nullptr ? v->as_f64() : std::nullopt;
}

std::optional<std::string_view> GgufFile::get_string(std::string_view key) const {
  const auto* v = find(key);
  return v != nullptr ? v->as_string() : std::nullopt;
}

const GgufArray* GgufFile::get_array(std::string_view key) const {
  const auto* v = find(key);
  return v != nullptr ? v->as_array() : nullptr;
}

std::optional<std::string_view> GgufFile::architecture() const {
  return get_string("general.architecture");
}

std::optional<std::uint64_t> GgufFile::arch_u64(std::string_view suffix) const {
  const auto arch = architecture();
  if (!arch) {
    return std::nullopt;
  }
  return get_u64(std::string(*arch) + "." + std::string(suffix));
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

namespace {

constexpr std::uint64_t k_fixed_header = 4 + 4 + 8 + 8;  // magic, version, tensor count, metadata count
// Each tensor info takes at least 24 bytes (name length, n_dims, type, offset),
// each key/value at least 13 (key length, type, a one-byte value).
constexpr std::uint64_t k_least_tensor = 8 + 4 + 4 + 8;
constexpr std::uint64_t k_least_kv = 8 + 4 + 1;
constexpr std::uint64_t k_array_head = 4 + 8;  // element type, count

// The bytes of one value of `type`: 0 for a string, an array and an unknown type.
std::uint64_t fixed_size(std::uint32_t type) {
  switch (static_cast<GgufValueType>(type)) {
    case GgufValueType::uint8:
    case GgufValueType::int8:
    case GgufValueType::boolean:
      return 1;
    case GgufValueType::uint16:
    case GgufValueType::int16:
      return 2;
    case GgufValueType::uint32:
    case GgufValueType::int32:
    case GgufValueType::float32:
      return 4;
    case GgufValueType::uint64:
    case GgufValueType::int64:
    case GgufValueType::float64:
      return 8;
    case GgufValueType::string:
    case GgufValueType::array:
      break;
  }
  return 0;
}

}  // namespace

std::optional<std::uint64_t> GgufHeaderScan::stop() {
  m_stage = Stage::stopped;
  return std::nullopt;
}

// `unit` bytes from m_pos are not all there yet: the length that holds them, or a stop past the file's end.
std::optional<std::uint64_t> GgufHeaderScan::short_by(std::uint64_t unit) {
  const auto needed = saturating_add(m_pos, unit);
  if (needed > m_file_size) {
    return stop();
  }
  return needed;
}

// An array's head has been scanned: its elements come next (false: a stop, as parse_gguf refuses it).
bool GgufHeaderScan::push_array(std::uint32_t element_type, std::uint64_t count) {
  if (m_depth == k_gguf_max_nesting || !known_value_type(element_type)) {
    stop();
    return false;
  }
  const auto type = static_cast<GgufValueType>(element_type);
  const std::uint64_t least = type == GgufValueType::string  ? sizeof(std::uint64_t)
                              : type == GgufValueType::array ? k_array_head
                                                             : fixed_size(element_type);
  if (count > (m_file_size - m_pos) / least) {
    stop();
    return false;
  }
  m_stack[m_depth++] = Frame{type, count};
  return true;
}

// Scans the arrays on the stack until it is empty (0), or returns how many bytes from m_pos the next
// element needs. A stop sets m_stage (the result is then 0).
std::uint64_t GgufHeaderScan::scan_arrays(std::string_view bytes) {
  const char* const data = bytes.data();
  const std::uint64_t size = bytes.size();
  while (m_depth > 0) {
    Frame& top = m_stack[m_depth - 1];
    if (top.left == 0) {
      --m_depth;
      continue;
    }
    switch (top.type) {
      case GgufValueType::string: {
        std::uint64_t pos = m_pos;
        std::uint64_t left = top.left;
        std::uint64_t unit = 0;
        while (left > 0) {
          if (size - pos < sizeof(std::uint64_t)) {
            unit = sizeof(std::uint64_t);
            break;
          }
          const auto length = load_le<std::uint64_t>(data + pos);
          if (length > size - pos - sizeof(std::uint64_t)) {
            unit = saturating_add(sizeof(std::uint64_t), length);
            break;
          }
          pos += sizeof(std::uint64_t) + length;
          --left;
        }
        m_pos = pos;
        top.left = left;
        if (unit != 0) {
          return unit;
        }
        break;
      }
      case GgufValueType::array: {
        if (m_depth == k_gguf_max_nesting) {  // parse_gguf refuses it before reading its head
          stop();
          return 0;
        }
        if (size - m_pos < k_array_head) {
          return k_array_head;
        }
        const auto element_type = load_le<std::uint32_t>(data + m_pos);
        const auto count = load_le<std::uint64_t>(data + m_pos + sizeof(std::uint32_t));
        m_pos += k_array_head;
        --top.left;
        if (!push_array(element_type, count)) {
          return 0;
        }
        break;
      }
      default: {  // push_array checked that the elements fit in the file: no overflow
        const auto unit = top.left * fixed_size(static_cast<std::uint32_t>(top.type));
        if (size - m_pos < unit) {
          return unit;
        }
        m_pos += unit;
        top.left = 0;
        break;
      }
    }
  }
  return 0;
}

std::optional<std::uint64_t> GgufHeaderScan::scan(std::string_view bytes) {
  const char* const data = bytes.data();
  const std::uint64_t size = bytes.size();
  m_file_size = std::max(m_file_size, size);
  for (;;) {
    const std::uint64_t avail = size - m_pos;
    const char* const at = data + m_pos;
    switch (m_stage) {
      case Stage::stopped:
        return std::nullopt;
      case Stage::fixed: {
        if (avail < k_fixed_header) {
          return short_by(k_fixed_header);
        }
        const auto version = load_le<std::uint32_t>(at + 4);
        const auto tensors = load_le<std::uint64_t>(at + 8);
        const auto kvs = load_le<std::uint64_t>(at + 16);
        const auto left = m_file_size - k_fixed_header;
        if (std::string_view(at, 4) != "GGUF" || (version != 2 && version != 3) || tensors > left / k_least_tensor ||
            kvs > left / k_least_kv || tensors + kvs > left / k_least_kv) {
          return stop();
        }
        m_pos = k_fixed_header;
        m_tensors_left = tensors;
        m_kv_left = kvs;
        m_stage = Stage::metadata;
        break;
      }
      case Stage::metadata: {
        if (m_depth > 0) {
          const auto unit = scan_arrays(bytes);
          if (m_stage == Stage::stopped) {
            return std::nullopt;
          }
          if (unit != 0) {
            return short_by(unit);
          }
          break;
        }
        if (m_kv_left == 0) {
          m_stage = Stage::tensors;
          break;
        }
        // The key, the value type, and the value (a string's length, an array's head).
        if (avail < sizeof(std::uint64_t)) {
          return short_by(sizeof(std::uint64_t));
        }
        const auto key_length = load_le<std::uint64_t>(at);
        if (key_length > k_gguf_max_key) {
          return stop();
        }
        std::uint64_t unit = sizeof(std::uint64_t) + key_length + sizeof(std::uint32_t);
        if (avail < unit) {
          return short_by(unit);
        }
        const auto type = load_le<std::uint32_t>(at + unit - sizeof(std::uint32_t));
        std::uint32_t element_type = 0;
        std::uint64_t count = 0;
        if (type == static_cast<std::uint32_t>(GgufValueType::string)) {
          unit += sizeof(std::uint64_t);
          if (avail < unit) {
            return short_by(unit);
          }
          unit = saturating_add(unit, load_le<std::uint64_t>(at + unit - sizeof(std::uint64_t)));
        } else if (type == static_cast<std::uint32_t>(GgufValueType::array)) {
          unit += k_array_head;
          if (avail < unit) {
            return short_by(unit);
          }
          element_type = load_le<std::uint32_t>(at + unit - k_array_head);
          count = load_le<std::uint64_t>(at + unit - sizeof(std::uint64_t));
        } else if (fixed_size(type) != 0) {
          unit += fixed_size(type);
        } else {
          return stop();
        }
        if (avail < unit) {
          return short_by(unit);
        }
        m_pos += unit;
        --m_kv_left;
        if (type == static_cast<std::uint32_t>(GgufValueType::array) && !push_array(element_type, count)) {
          return std::nullopt;
        }
        break;
      }
      case Stage::tensors: {
        if (m_tensors_left == 0) {
          m_header_bytes = m_pos;
          return stop();
        }
        // The name, the number of dimensions, the dimensions, the type and the offset.
        if (avail < sizeof(std::uint64_t)) {
          return short_by(sizeof(std::uint64_t));
        }
        const auto name_length = load_le<std::uint64_t>(at);
        if (name_length > k_gguf_max_name) {
          return stop();
        }
        std::uint64_t unit = sizeof(std::uint64_t) + name_length + sizeof(std::uint32_t);
        if (avail < unit) {
          return short_by(unit);
        }
        const auto n_dims = load_le<std::uint32_t>(at + unit - sizeof(std::uint32_t));
        if (n_dims == 0 || n_dims > k_gguf_max_dims) {
          return stop();
        }
        unit += n_dims * sizeof(std::uint64_t) + sizeof(std::uint32_t) + sizeof(std::uint64_t);
        if (avail < unit) {
          return short_by(unit);
        }
        m_pos += unit;
        --m_tensors_left;
        break;
      }
    }
  }
}

namespace {

Result<GgufFile> parse_header(std::string_view bytes, std::shared_ptr<const char[]> shared, std::string_view source,
                              std::optional<std::uint64_t> file_size, std::uint64_t* bytes_needed);

}  // namespace

Result<GgufFile> parse_gguf(std::string_view bytes, std::string_view source, std::optional<std::uint64_t> file_size,
                            std::uint64_t* bytes_needed) {
  return parse_header(bytes, nullptr, source, file_size, bytes_needed);
}

Result<GgufFile> parse_gguf(std::shared_ptr<const char[]> buffer, std::size_t size, std::string_view source,
                            std::optional<std::uint64_t> file_size, std::uint64_t* bytes_needed) {
  const std::string_view bytes(buffer.get(), size);
  return parse_header(bytes, std::move(buffer), source, file_size, bytes_needed);
}

namespace {

Result<GgufFile> parse_header(std::string_view bytes, std::shared_ptr<const char[]> shared, std::string_view source,
                              std::optional<std::uint64_t> file_size, std::uint64_t* bytes_needed) {
  const std::uint64_t limit = std::max<std::uint64_t>(file_size.value_or(0), bytes.size());
  Cursor in(bytes, limit, file_size.has_value());
  if (shared) {
    in.share(std::move(shared));
  }
  const auto failed = [&]() -> Unexpected<Error> {
    if (bytes_needed != nullptr && in.code() == ENODATA) {
      *bytes_needed = in.needed();
    }
    return fail(std::string(source), in.message(), in.code());
  };

  GgufFile file;
  file.file_size = file_size;
  const auto magic = in.read_bytes(4, "the magic number");
  if (!in.ok()) {
    return failed();
  }
  if (magic != "GGUF") {
    return fail(std::string(source), "not a GGUF file: it starts with bytes " + hex_bytes(magic) + ", not \"GGUF\"");
  }
  file.version = in.read<std::uint32_t>("the version");
  if (!in.ok()) {
    return failed();
  }
  if (file.version == 1) {
    return fail(std::string(source), "GGUF version 1 is not supported (only versions 2 and 3)");
  }
  if (file.version != 0 && (file.version & 0xffffU) == 0) {
    return fail(std::string(source), "the version field reads " + std::to_string(file.version) +
                                         ": a big-endian GGUF file, which is not supported");
  }
  if (file.version != 2 && file.version != 3) {
    return fail(std::string(source),
                "unsupported GGUF version " + std::to_string(file.version) + " (only versions 2 and 3)");
  }
  const auto tensor_count = in.read<std::uint64_t>("the tensor count");
  const auto kv_count = in.read<std::uint64_t>("the metadata count");
  // Absurd counts fail here, before anything is allocated.
  if (!in.fits(tensor_count, k_least_tensor, "the tensor infos") ||
      !in.fits(kv_count, k_least_kv, "the metadata entries") ||
      !in.fits(tensor_count + kv_count, k_least_kv, "the tensor infos and metadata entries")) {
    return failed();
  }

  file.metadata.reserve(static_cast<std::size_t>(std::min(kv_count, in.room_for(k_least_kv))));
  std::unordered_set<std::string_view> keys;
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    const auto key = in.read_string("the key");
    if (in.ok() && key.size() > k_gguf_max_key) {
      in.set_error("a key of " + std::to_string(key.size()) + " bytes is longer than the limit of " +
                   std::to_string(k_gguf_max_key));
    }
    if (!in.ok()) {
      in.add_context("metadata entry " + std::to_string(i) + ": ");
      return failed();
    }
    const auto type = in.read<std::uint32_t>("the value type");
    GgufValue value;
    if (in.ok()) {
      if (known_value_type(type)) {
        value = read_value(in, type, 0);
      } else {
        in.set_error("unknown value type " + std::to_string(type));
      }
    }
    if (in.ok() && !keys.insert(key).second) {
      in.set_error("the key appears more than once");
    }
    if (!in.ok()) {
      in.add_context("metadata entry " + std::to_string(i) + " " + quoted(key) + ": ");
      return failed();
    }
    file.metadata.push_back(GgufKeyValue{std::string(key), std::move(value)});
  }

  auto alignment = alignment_of(file, source);
  if (!alignment) {
    return unexpected(std::move(alignment).error());
  }
  file.alignment = *alignment;

  file.tensors.reserve(static_cast<std::size_t>(std::min(tensor_count, in.room_for(k_least_tensor))));
  std::unordered_set<std::string> names;
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    auto info = read_tensor_info(in, file.alignment);
    if (in.ok() && !names.insert(info.name).second) {
      in.set_error("the name appears more than once");
    }
    if (!in.ok()) {
      in.add_context(tensor_label(i, info.name));
      return failed();
    }
    file.tensors.push_back(std::move(info));
  }
  file.header_bytes = in.pos();
  const auto padded = checked_add(file.header_bytes, file.alignment - 1);
  if (!padded) {
    return fail(std::string(source), "the data offset overflows 64 bits");
  }
  file.data_offset = *padded / file.alignment * file.alignment;

  // Tensors may come in any order, but their data must not overlap.
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(file.tensors.size());
  for (const auto& t : file.tensors) {
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const GgufTensorInfo* a, const GgufTensorInfo* b) {
    return a->offset != b->offset ? a->offset < b->offset : a->bytes < b->bytes;
  });
  for (std::size_t i = 0; i + 1 < by_offset.size(); ++i) {
    const auto& a = *by_offset[i];
    const auto& b = *by_offset[i + 1];
    if (a.offset + a.bytes > b.offset) {
      return fail(std::string(source), "the data of tensors " + quoted(a.name) + " (bytes " + std::to_string(a.offset) +
                                           " to " + std::to_string(a.offset + a.bytes) + ") and " + quoted(b.name) +
                                           " (from byte " + std::to_string(b.offset) + ") overlap");
    }
  }
  if (!by_offset.empty()) {
    for (const auto* t : by_offset) {
      file.data_bytes = std::max(file.data_bytes, t->offset + t->bytes);
    }
  }
  if (!checked_add(file.data_offset, file.data_bytes)) {
    return fail(std::string(source), "the end of the tensor data overflows 64 bits");
  }
  return file;
}

}  // namespace

}  // namespace mw
