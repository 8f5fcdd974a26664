// memwarden's state directory and the files in it: the action journal (adapters::Journal) and the sample
// history (adapters::SampleStore). Every default and file name is written here once.
#pragma once

#include <filesystem>
#include <utility>

namespace mw::adapters {

class StateDir {
 public:
  static constexpr const char* k_default_path = "/var/lib/memwarden";
  static constexpr const char* k_journal_file = "memwarden.db";  // adapters::Journal
  static constexpr const char* k_samples_file = "samples.db";    // adapters::SampleStore

  StateDir() : m_dir(k_default_path) {}
  explicit StateDir(std::filesystem::path dir) : m_dir(std::move(dir)) {}

  [[nodiscard]] const std::filesystem::path& path() const { return m_dir; }
  [[nodiscard]] std::filesystem::path journal() const { return m_dir / k_journal_file; }
  [[nodiscard]] std::filesystem::path samples() const { return m_dir / k_samples_file; }

 private:
  std::filesystem::path m_dir;
};

}  // namespace mw::adapters
