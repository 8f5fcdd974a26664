#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include "core/bytes.hpp"
#include "gguf_writer.hpp"
#include "probes/gguf_file.hpp"
#include "test_support.hpp"

using namespace mw;
using mw::probes::read_gguf;
using mw::test::GgufPreset;
using mw::test::GgufVocab;
using mw::test::TempDir;

namespace fs = std::filesystem;

namespace {

// A model whose header (to the end of the tensor infos) is exactly `header_bytes` long: a vocabulary of
// 8-byte tokens (16 bytes each in the file, so the scan goes a token at a time) and a string to make up
// the rest.
test::GgufSpec spec_with_header_of(std::uint64_t header_bytes) {
  const auto build = [](std::uint64_t tokens, std::uint64_t pad) {
    test::GgufSpec spec;
    spec.add("general.architecture", GgufValue{std::string("llama")});
    GgufStrings vocab;
    for (std::uint64_t i = 0; i < tokens; ++i) {
      const auto n = std::to_string(10000000 + i % 10000000);
      vocab.push_back(n.substr(n.size() - 8));
    }
    spec.add("tokenizer.ggml.tokens", GgufValue{GgufArray{std::move(vocab)}});
    spec.add("pad", GgufValue{std::string(pad, 'p')});
    spec.tensors.push_back({"w", {8}, ggml_id(GgmlType::f32), std::nullopt});
    return spec;
  };
  const auto size_of = [](const test::GgufSpec& spec) {
    const auto parsed = parse_gguf(test::gguf_header(spec), "spec");
    EXPECT_TRUE(parsed);
    return parsed ? parsed->header_bytes : 0;
  };
  const auto base = size_of(build(0, 0));
  EXPECT_GE(header_bytes, base + 16);
  const auto tokens = (header_bytes - base) / 16 - 1;
  const auto without_pad = size_of(build(tokens, 0));
  auto spec = build(tokens, header_bytes - without_pad);
  EXPECT_EQ(size_of(spec), header_bytes);
  return spec;
}

// Disk blocks the file really occupies (the data section is a hole).
std::uint64_t allocated_bytes(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

}  // namespace

TEST(GgufFile, EveryPresetReadsBackFromItsFile) {
  const TempDir dir;
  for (const auto preset : test::all_gguf_presets()) {
    SCOPED_TRACE(test::to_string(preset));
    const auto spec = test::gguf_preset(preset);
    const auto path = dir.path() / (std::string(test::to_string(preset)) + ".gguf");
    test::write_gguf(path, spec);
    const auto file = read_gguf(path);
    ASSERT_TRUE(file) << file.error().line();
    EXPECT_EQ(file->metadata, spec.metadata);
    ASSERT_EQ(file->tensor_count(), spec.tensors.size());
    const auto offsets = test::gguf_offsets(spec);
    for (std::size_t i = 0; i < spec.tensors.size(); ++i) {
      EXPECT_EQ(file->tensors[i].name, spec.tensors[i].name);
      EXPECT_EQ(file->tensors[i].dims, spec.tensors[i].dims);
      EXPECT_EQ(file->tensors[i].type, spec.tensors[i].type);
      EXPECT_EQ(file->tensors[i].offset, offsets[i]);
    }
    EXPECT_EQ(file->file_size, fs::file_size(path));
    EXPECT_EQ(file->file_size, test::gguf_file_size(spec));
    EXPECT_EQ(*file->file_size, file->data_offset + file->data_bytes);
    EXPECT_GE(file->bytes_read, file->header_bytes);
    EXPECT_LT(file->bytes_read, 16 * k_mib);
    fs::remove(path);
  }
}

TEST(GgufFile, SeventyBillionHeaderOnlyIsRead) {
  const TempDir dir;
  const auto path = dir.path() / "llama3.1-70b.gguf";
  test::write_gguf(path, test::gguf_preset(GgufPreset::llama31_70b_q4_k_m));
  EXPECT_GT(fs::file_size(path), 38 * k_gib);
  EXPECT_LT(allocated_bytes(path), 64 * k_mib) << "the writer leaves the tensor data as a hole";

  const auto file = read_gguf(path);
  ASSERT_TRUE(file) << file.error().line();
  EXPECT_GE(file->tensor_count(), 700U);
  EXPECT_EQ(file->arch_u64("block_count"), 80U);
  EXPECT_GT(file->header_bytes, 4 * k_mib) << "a real vocabulary and merges: several MiB of header";
  EXPECT_LT(file->bytes_read, 16 * k_mib);
  EXPECT_GE(file->bytes_read, file->header_bytes);
  EXPECT_LT(file->bytes_read, file->header_bytes + probes::k_gguf_read_step);
  EXPECT_EQ(file->file_size, fs::file_size(path));
}

TEST(GgufFile, SmallHeaderTakesOneRead) {
  const TempDir dir;
  const auto path = dir.path() / "m.gguf";
  test::write_gguf(path, test::gguf_preset(GgufPreset::mistral_7b_q4_0, GgufVocab::compact));
  const auto file = read_gguf(path);
  ASSERT_TRUE(file) << file.error().line();
  EXPECT_EQ(file->bytes_read, probes::k_gguf_first_read);
  EXPECT_EQ(file->tensor_count(), 32U * 9 + 3);

  // A file smaller than the first read is read whole.
  test::GgufSpec tiny;
  tiny.add("general.architecture", GgufValue{std::string("llama")});
  tiny.tensors.push_back({"w", {8}, ggml_id(GgmlType::f32), std::nullopt});
  test::write_gguf(path, tiny);
  const auto small = read_gguf(path);
  ASSERT_TRUE(small) << small.error().line();
  EXPECT_EQ(small->bytes_read, fs::file_size(path));
  EXPECT_EQ(small->file_size, small->data_offset + 32);
}

TEST(GgufFile, TruncatedDataIsReported) {
  const TempDir dir;
  const auto path = dir.path() / "cut.gguf";
  const auto spec = test::gguf_preset(GgufPreset::qwen25_7b_q4_k_m, GgufVocab::compact);
  test::write_gguf(path, spec);
  const auto full = test::gguf_file_size(spec);
  fs::resize_file(path, full - 1);
  const auto file = read_gguf(path);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().source, path.string());
  EXPECT_EQ(file.error().message, "the tensor data is cut off: the tensors end at byte " + std::to_string(full) +
                                      ", but the file has only " + std::to_string(full - 1) +
                                      " bytes (an incomplete download?)");
}

TEST(GgufFile, TruncatedHeaderIsCorruptNotShort) {
  const TempDir dir;
  const auto path = dir.path() / "cut.gguf";
  const auto header = test::gguf_header(test::gguf_preset(GgufPreset::llama31_8b_q4_k_m));
  ASSERT_GT(header.size(), 3 * k_mib);
  dir.write("cut.gguf", std::string_view(header).substr(0, 3 * k_mib));  // cut inside the merges
  const auto file = read_gguf(path);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, 0) << "reading more cannot help";
  EXPECT_EQ(file.error().line().rfind(path.string() + ": metadata entry", 0), 0U) << file.error().line();
  EXPECT_NE(file.error().message.find("the file"), std::string::npos) << file.error().line();
}

TEST(GgufFile, HeaderOverTheCapIsRefused) {
  const TempDir dir;
  const auto path = dir.path() / "big-header.gguf";
  test::write_gguf(path, test::gguf_preset(GgufPreset::llama31_8b_q4_k_m));
  const auto file = read_gguf(path, 2 * k_mib);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().source, path.string());
  EXPECT_EQ(file.error().message.rfind("the GGUF header is larger than the limit of 2097152 bytes", 0), 0U)
      << file.error().message;
}

TEST(GgufFile, NotAModel) {
  const TempDir dir;
  dir.write("notes.txt", "just some text, not a model at all");
  const auto text = read_gguf(dir.path() / "notes.txt");
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().line(),
            (dir.path() / "notes.txt").string() + ": not a GGUF file: it starts with bytes 6a 75 73 74, not \"GGUF\"");

  const auto missing = read_gguf(dir.path() / "absent.gguf");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ENOENT);
  EXPECT_EQ(missing.error().source, (dir.path() / "absent.gguf").string());

  const auto directory = read_gguf(dir.path());
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().message, "is a directory, not a regular file");

  // A FIFO is refused at once, not waited on (a blocking open would wait for a writer).
  ASSERT_EQ(::mkfifo((dir.path() / "x.gguf").c_str(), 0600), 0);
  const auto started = std::chrono::steady_clock::now();
  const auto fifo = read_gguf(dir.path() / "x.gguf");
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().message, "is a FIFO, not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));

  dir.write("empty.gguf", "");
  const auto empty = read_gguf(dir.path() / "empty.gguf");
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().message, "the file is empty, not a GGUF model");

  dir.write("v1.gguf", test::GgufBytes().header(1, 0, 0).bytes());
  const auto v1 = read_gguf(dir.path() / "v1.gguf");
  ASSERT_FALSE(v1);
  EXPECT_EQ(v1.error().message, "GGUF version 1 is not supported (only versions 2 and 3)");
}

// Headers that end just before, at and just after the first read and the next ones: one parse, all of
// the header read, and less than another step more.
TEST(GgufFile, HeadersAroundEachReadBoundary) {
  const TempDir dir;
  const auto path = dir.path() / "m.gguf";
  const auto first = probes::k_gguf_first_read;
  const auto step = probes::k_gguf_read_step;
  for (const std::uint64_t size :
       {first - 1, first, first + 1, first + step - 1, first + step, first + step + 1, first + 2 * step + 7}) {
    SCOPED_TRACE(size);
    const auto spec = spec_with_header_of(size);
    test::write_gguf(path, spec);
    const auto file = read_gguf(path);
    ASSERT_TRUE(file) << file.error().line();
    EXPECT_EQ(file->header_bytes, size);
    EXPECT_EQ(file->metadata, spec.metadata);
    EXPECT_GE(file->bytes_read, size);
    if (size <= first) {
      EXPECT_EQ(file->bytes_read, first);
    } else {
      EXPECT_LT(file->bytes_read, size + step);
    }
  }
}

TEST(GgufFile, HeaderExactlyAtTheLimit) {
  const TempDir dir;
  const auto path = dir.path() / "m.gguf";
  const std::uint64_t size = 2 * k_mib + 40;
  test::write_gguf(path, spec_with_header_of(size));
  const auto at = read_gguf(path, size);
  ASSERT_TRUE(at) << at.error().line();
  EXPECT_EQ(at->header_bytes, size);
  EXPECT_EQ(at->bytes_read, size);

  const auto over = read_gguf(path, size - 1);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().message, "the GGUF header is larger than the limit of " + std::to_string(size - 1) +
                                      " bytes (it needs at least " + std::to_string(size) + ")");
}

// An error within what was read comes before the limit, even one the scan does not look for.
TEST(GgufFile, AnErrorBeforeTheLimitIsReportedAsSuch) {
  const TempDir dir;
  const auto path = dir.path() / "dup.gguf";
  auto spec = spec_with_header_of(3 * k_mib);
  spec.metadata.insert(spec.metadata.begin(), spec.metadata.front());  // general.architecture twice
  test::write_gguf(path, spec);
  const auto file = read_gguf(path, 2 * k_mib);
  ASSERT_FALSE(file);
  EXPECT_EQ(file.error().code, 0);
  EXPECT_EQ(file.error().line(),
            path.string() + ": metadata entry 1 'general.architecture': the key appears more than once");
}
