# All dependencies are Debian 12 packages installed by scripts/bootstrap.sh.
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)
find_package(CURL REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(yaml-cpp REQUIRED)
if(MEMWARDEN_TESTS)
  find_package(GTest REQUIRED)
endif()
if(MEMWARDEN_BENCHMARKS)
  find_package(benchmark REQUIRED)
endif()
find_package(Threads REQUIRED)

# The libraries the product links, through one name each, so that a release build can take their
# static archives instead (MEMWARDEN_STATIC_RUNTIME): one binary with libstdc++, libgcc, SQLite,
# yaml-cpp and fmt in it, only libc and libm shared. serve's resident set is then about 1.5 MiB
# smaller (no per-library relocations and data, and --gc-sections leaves out what is not called;
# docs/PERFORMANCE.md section 5). The price: a SQLite or yaml-cpp security update needs a rebuild.
add_library(mw_fmt INTERFACE)
add_library(mw_sqlite INTERFACE)
add_library(mw_yaml INTERFACE)
if(MEMWARDEN_STATIC_RUNTIME)
  find_library(MW_SQLITE_ARCHIVE NAMES libsqlite3.a REQUIRED)
  find_library(MW_YAML_ARCHIVE NAMES libyaml-cpp.a REQUIRED)
  target_link_libraries(mw_fmt INTERFACE fmt::fmt-header-only)
  target_link_libraries(mw_sqlite INTERFACE ${MW_SQLITE_ARCHIVE} m ${CMAKE_DL_LIBS} Threads::Threads)
  target_include_directories(mw_sqlite INTERFACE ${SQLite3_INCLUDE_DIRS})
  target_link_libraries(mw_yaml INTERFACE ${MW_YAML_ARCHIVE})
  get_target_property(MW_YAML_INCLUDES yaml-cpp INTERFACE_INCLUDE_DIRECTORIES)
  if(MW_YAML_INCLUDES)
    target_include_directories(mw_yaml INTERFACE ${MW_YAML_INCLUDES})
  endif()
else()
  target_link_libraries(mw_fmt INTERFACE fmt::fmt)
  target_link_libraries(mw_sqlite INTERFACE SQLite::SQLite3)
  target_link_libraries(mw_yaml INTERFACE yaml-cpp)
endif()
