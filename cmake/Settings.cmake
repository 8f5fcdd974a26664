# Compile settings shared by product and test code, as INTERFACE targets.
add_library(mw_settings INTERFACE)
target_compile_options(mw_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion
  -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
  -Wdouble-promotion -Wformat=2 -Wimplicit-fallthrough)
# -Wnull-dereference is left out: g++ 12 reports false positives inside libstdc++ at -O2.
if(MEMWARDEN_WERROR)
  target_compile_options(mw_settings INTERFACE -Werror)
endif()
if(MEMWARDEN_STATIC_RUNTIME)
  # One section per function and object, so that the binary's --gc-sections can leave out what is never called.
  target_compile_options(mw_settings INTERFACE -ffunction-sections -fdata-sections)
endif()
if(MEMWARDEN_SANITIZE)
  target_compile_options(mw_settings INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  target_link_options(mw_settings INTERFACE -fsanitize=address,undefined)
endif()
