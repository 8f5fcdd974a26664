// GGUF model files: the header (metadata key/values and tensor infos) and the
// sizes of ggml tensor types. Pure: parse_gguf reads bytes the caller supplies
// (probes::read_gguf reads them from a file). Format facts: ggml docs/gguf.md.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/error.hpp"

namespace mw {

// gguf_type: the type of a metadata value (the numbers are the file's).
enum class GgufValueType : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};

[[nodiscard]] const char* to_string(GgufValueType type);

namespace detail {
struct GgufStringsFill;  // parse_gguf fills a GgufStrings in place (gguf.cpp)
}

// The strings of a string array. Built by hand (push_back), they are kept one after another in one
// buffer: a vocabulary of 150k tokens is two allocations, not 150k. Parsed from a shared header
// buffer (parse_gguf's shared overload, which probes::read_gguf uses), they are views into it: no
// bytes are copied, and the buffer (read_gguf's: up to 16 MiB) lives as long as any array that points
// into it, so keep the figures a GgufFile gives, not the file, when reading many.
class GgufStrings {
 public:
  GgufStrings() = default;
  GgufStrings(std::initializer_list<std::string_view> items);

  void reserve(std::size_t count, std::size_t bytes);
  void push_back(std::string_view item);
  [[nodiscard]] std::size_t size() const { return m_ends.size(); }
  [[nodiscard]] bool empty() const { return m_ends.empty(); }
  [[nodiscard]] std::string_view operator[](std::size_t i) const {
    const std::size_t begin = m_view ? (i == 0 ? m_first : m_ends[i - 1] + m_gap) : (i == 0 ? 0 : m_ends[i - 1]);
    return {base() + begin, m_ends[i] - begin};
  }
  friend bool operator==(const GgufStrings& a, const GgufStrings& b);

  // Range-for over the strings as string_views.
  class Iterator {
   public:
    Iterator(const GgufStrings* owner, std::size_t i) : m_owner(owner), m_i(i) {}
    std::string_view operator*() const { return (*m_owner)[m_i]; }
    Iterator& operator++() {
      ++m_i;
      return *this;
    }
    friend bool operator==(const Iterator&, const Iterator&) = default;

   private:
    const GgufStrings* m_owner;
    std::size_t m_i;
  };
  [[nodiscard]] Iterator begin() const { return {this, 0}; }
  [[nodiscard]] Iterator end() const { return {this, size()}; }

 private:
  friend struct detail::GgufStringsFill;
  [[nodiscard]] const char* base() const { return m_view ? m_view.get() : m_own.data(); }
  void own();  // a view becomes its own copy (before push_back)

  std::string m_own;                     // the strings one after another, when not a view
  std::shared_ptr<const char[]> m_view;  // the shared header buffer, when a view
  std::size_t m_first = 0;               // where string 0 starts
  std::size_t m_gap = 0;                 // from one string's end to the next one's start (8 in a file)
  std::vector<std::size_t> m_ends;       // where each one ends
};

// An array value: one vector of its element type (the alternative's index is the GgufValueType),
// so that an array of 150k scores is one std::vector<float>. Arrays nest.
struct GgufArray {
  using Items = std::variant<std::vector<std::uint8_t>, std::vector<std::int8_t>, std::vector<std::uint16_t>,
                             std::vector<std::int16_t>, std::vector<std::uint32_t>, std::vector<std::int32_t>,
                             std::vector<float>, std::vector<bool>, GgufStrings, std::vector<GgufArray>,
                             std::vector<std::uint64_t>, std::vector<std::int64_t>, std::vector<double>>;
  Items items;

  [[nodiscard]] GgufValueType element_type() const { return static_cast<GgufValueType>(items.index()); }
  [[nodiscard]] std::size_t size() const;
  friend bool operator==(const GgufArray&, const GgufArray&) = default;
};

// A metadata value; the alternative's index is the GgufValueType.
struct GgufValue {
  using Storage = std::variant<std::uint8_t, std::int8_t, std::uint16_t, std::int16_t, std::uint32_t, std::int32_t,
                               float, bool, std::string, GgufArray, std::uint64_t, std::int64_t, double>;
  Storage value;

  [[nodiscard]] GgufValueType type() const { return static_cast<GgufValueType>(value.index()); }
  // Any integer type whose value fits (a negative one does not fit a u64); nullopt otherwise.
  [[nodiscard]] std::optional<std::uint64_t> as_u64() const;
  [[nodiscard]] std::optional<std::int64_t> as_i64() const;
  // Any integer or floating-point type.
  [[nodiscard]] std::optional<double> as_f64() const;
  [[nodiscard]] std::optional<std::string_view> as_string() const;
  [[nodiscard]] const GgufArray* as_array() const;
  friend bool operator==(const GgufValue&, const GgufValue&) = default;
};

struct GgufKeyValue {
  std::string key;
  GgufValue value;
  friend bool operator==(const GgufKeyValue&, const GgufKeyValue&) = default;
};

// ggml_type ids (ggml.h). Ids 4, 5, 31-33 and 36-38 were removed upstream.
enum class GgmlType : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  iq2_xxs = 16,
  iq2_xs = 17,
  iq3_xxs = 18,
  iq1_s = 19,
  iq4_nl = 20,
  iq3_s = 21,
  iq2_s = 22,
  iq4_xs = 23,
  i8 = 24,
  i16 = 25,
  i32 = 26,
  i64 = 27,
  f64 = 28,
  iq1_m = 29,
  bf16 = 30,
  tq1_0 = 34,
  tq2_0 = 35,
  mxfp4 = 39,
  nvfp4 = 40,
  q1_0 = 41,
  q2_0 = 42,
};

[[nodiscard]] constexpr std::uint32_t ggml_id(GgmlType type) {
  return static_cast<std::uint32_t>(type);
}

// A ggml type's block: block_size elements take type_size bytes.
struct GgmlTypeTraits {
  std::string_view name;  // "F32", "Q4_K", "IQ2_XXS"
  std::uint32_t block_size = 1;
  std::uint32_t type_size = 0;
};

// nullopt for an id ggml does not (or no longer) define.
[[nodiscard]] std::optional<GgmlTypeTraits> ggml_type_traits(std::uint32_t type);

// Bytes of `elements` consecutive values of `type` (ggml_row_size): nullopt for an unknown type,
// a count that is not a multiple of the block size, or an overflow.
[[nodiscard]] std::optional<std::uint64_t> ggml_row_bytes(std::uint32_t type, std::uint64_t elements);

// Bytes of a tensor: (dims[0] / block) * type_size * dims[1] * ...; nullopt for an unknown type, no dims,
// a row (dims[0]) that is not a multiple of the block size, or an overflow.
[[nodiscard]] std::optional<std::uint64_t> ggml_tensor_bytes(std::uint32_t type,
                                                             const std::vector<std::uint64_t>& dims);

struct GgufTensorInfo {
  std::string name;
  std::vector<std::uint64_t> dims;  // ne[0] first (the row length), as in the file
  std::uint32_t type = 0;           // ggml_type id; parse_gguf accepts only known ones
  std::string_view type_name;       // ggml_type_traits(type)->name (static storage)
  std::uint64_t offset = 0;         // from the start of the data section; a multiple of the alignment
  std::uint64_t bytes = 0;          // ggml_tensor_bytes(type, dims)

  [[nodiscard]] std::uint64_t elements() const;
};

inline constexpr std::uint64_t k_gguf_default_alignment = 32;
inline constexpr std::size_t k_gguf_max_nesting = 8;  // arrays of arrays, deeper is refused
inline constexpr std::size_t k_gguf_max_dims = 8;     // ggml uses 4; a few more are accepted
inline constexpr std::size_t k_gguf_max_key = 65535;  // bytes in a metadata key
inline constexpr std::size_t k_gguf_max_name = 63;    // bytes in a tensor name (GGML_MAX_NAME - 1)

struct GgufFile {
  std::uint32_t version = 3;                           // 2 or 3
  std::vector<GgufKeyValue> metadata;                  // in file order, keys unique
  std::vector<GgufTensorInfo> tensors;                 // in file order, names unique
  std::uint64_t alignment = k_gguf_default_alignment;  // general.alignment
  std::uint64_t header_bytes = 0;                      // where the tensor infos end: the bytes the parse needed
  std::uint64_t data_offset = 0;                       // start of the tensor data: header_bytes padded to the alignment
  std::uint64_t data_bytes = 0;            // end of the last tensor within the data section (max offset + bytes)
  std::optional<std::uint64_t> file_size;  // when known: given to parse_gguf, or read_gguf's fstat
  std::uint64_t bytes_read = 0;            // probes::read_gguf: how many bytes of the file it read

  [[nodiscard]] std::uint64_t tensor_count() const { return tensors.size(); }
  [[nodiscard]] const GgufValue* find(std::string_view key) const;
  [[nodiscard]] std::optional<std::uint64_t> get_u64(std::string_view key) const;
  [[nodiscard]] std::optional<std::int64_t> get_i64(std::string_view key) const;
  [[nodiscard]] std::optional<double> get_f64(std::string_view key) const;
  [[nodiscard]] std::optional<std::string_view> get_string(std::string_view key) const;
  [[nodiscard]] const GgufArray* get_array(std::string_view key) const;
  // general.architecture ("llama", "qwen2"), and "<architecture>.<suffix>" as a u64 ("block_count").
  [[nodiscard]] std::optional<std::string_view> architecture() const;
  [[nodiscard]] std::optional<std::uint64_t> arch_u64(std::string_view suffix) const;
  [[nodiscard]] const GgufTensorInfo* find_tensor(std::string_view name) const;
};

// Parses a GGUF header from `bytes`, the start of a file; `source` names it in errors. Every count,
// length, type, nesting level (k_gguf_max_nesting), dimension and offset is checked, and a count is
// weighed against the bytes that could hold it before anything is allocated.
//
// `file_size`: the size of the whole file when `bytes` may be only its start (probes::read_gguf).
// Without it, `bytes` is taken to be all there is.
// When the header goes on past the end of `bytes` (but not past file_size), the error's code is
// ENODATA and *bytes_needed (when given) is the least length of `bytes` that can hold what was being
// read: read that much (or more) and parse again. A header that runs past file_size is corrupt
// (code 0), as is any other bad header.
[[nodiscard]] Result<GgufFile> parse_gguf(std::string_view bytes, std::string_view source,
                                          std::optional<std::uint64_t> file_size = std::nullopt,
                                          std::uint64_t* bytes_needed = nullptr);
// The same on a shared buffer of `size` bytes: string arrays are views into it (GgufStrings), so the
// vocabulary is not copied, and the file keeps the buffer alive.
[[nodiscard]] Result<GgufFile> parse_gguf(std::shared_ptr<const char[]> buffer, std::size_t size,
                                          std::string_view source,
                                          std::optional<std::uint64_t> file_size = std::nullopt,
                                          std::uint64_t* bytes_needed = nullptr);

// Finds where a GGUF header ends without building its values (nothing is allocated), so that a reader can
// fetch a header in pieces and parse it once (probes::read_gguf). It goes through the same structure as
// parse_gguf and stops where parse_gguf would refuse a count, a length, a type, a nesting level, a tensor
// name or a number of dimensions; what it does not check (duplicate keys, tensor types and offsets,
// general.alignment) is left to parse_gguf.
class GgufHeaderScan {
 public:
  // `file_size`: the size of the whole file.
  explicit GgufHeaderScan(std::uint64_t file_size) : m_file_size(file_size) {}

  // Goes on from where the previous call stopped. `bytes`: the start of the file, the same bytes as in
  // the previous call and perhaps more. nullopt: parse_gguf(bytes, ..., file_size) can decide now, as the
  // header ends within `bytes` (header_bytes() says where) or is malformed there (or runs past the end
  // of the file). Otherwise the least length of `bytes` with which the scan can go on: more than
  // bytes.size() and no more than the file size.
  [[nodiscard]] std::optional<std::uint64_t> scan(std::string_view bytes);
  // Where the tensor infos end, once scan() found it; nullopt while it has not (or for a malformed header).
  [[nodiscard]] std::optional<std::uint64_t> header_bytes() const { return m_header_bytes; }

 private:
  enum class Stage : std::uint8_t { fixed, metadata, tensors, stopped };
  struct Frame {  // an array being scanned
    GgufValueType type = GgufValueType::uint8;
    std::uint64_t left = 0;  // elements still to scan
  };

  std::optional<std::uint64_t> short_by(std::uint64_t unit);
  std::optional<std::uint64_t> stop();
  bool push_array(std::uint32_t element_type, std::uint64_t count);
  std::uint64_t scan_arrays(std::string_view bytes);

  std::uint64_t m_file_size;
  std::uint64_t m_pos = 0;  // what has been scanned: whole units only
  Stage m_stage = Stage::fixed;
  std::uint64_t m_kv_left = 0;
  std::uint64_t m_tensors_left = 0;
  std::array<Frame, k_gguf_max_nesting> m_stack{};  // the arrays of the metadata value being scanned
  std::size_t m_depth = 0;
  std::optional<std::uint64_t> m_header_bytes;
};

}  // namespace mw
