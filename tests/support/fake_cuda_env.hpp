// Sets FAKE_CUDA_* for one unit test (all others cleared) and logs the fake libcuda's calls under a TempDir.
#pragma once

#include <cstdlib>
#include <string>

#include "fake_cuda_log.hpp"
#include "test_support.hpp"

namespace mw::test {

class FakeCudaEnv {
 public:
  FakeCudaEnv() {
    clear();
    setenv("FAKE_CUDA_LOG", log_path().c_str(), 1);
  }
  FakeCudaEnv(const FakeCudaEnv&) = delete;
  FakeCudaEnv& operator=(const FakeCudaEnv&) = delete;
  ~FakeCudaEnv() { clear(); }

  void set(const char* name, const std::string& value) const { setenv(name, value.c_str(), 1); }
  [[nodiscard]] std::string log_path() const { return (m_dir.path() / "cuda.log").string(); }
  [[nodiscard]] FakeCudaLedger ledger() const { return read_fake_cuda_log(log_path()); }

 private:
  static void clear() {
    for (const char* name : {"FAKE_CUDA_DEVICES", "FAKE_CUDA_TOTAL", "FAKE_CUDA_USED", "FAKE_CUDA_CONTEXT_BYTES",
                             "FAKE_CUDA_INIT_CODE", "FAKE_CUDA_RETAIN_CODE", "FAKE_CUDA_OOM_AT", "FAKE_CUDA_LOST_AT",
                             "FAKE_CUDA_LOST_CODE", "FAKE_CUDA_MEMSET_MS", "FAKE_CUDA_NAME", "FAKE_CUDA_LOG"}) {
      unsetenv(name);
    }
  }

  TempDir m_dir;
};

}  // namespace mw::test
