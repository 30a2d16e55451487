# Per-target settings, applied with helper functions rather than global flags.

function(renc_target_warnings target)
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE
      $<$<COMPILE_LANGUAGE:C>:-Wall -Wextra -Wshadow -Wstrict-prototypes
        -Wmissing-prototypes -Wformat=2 -Wvla -Wpointer-arith -Wno-unused-parameter>)
    if(RENC_WERROR)
      target_compile_options(${target} PRIVATE -Werror)
    endif()
  endif()
endfunction()

function(renc_target_sanitize target)
  if(RENC_BUILD_FUZZ)
    # Coverage hooks and sanitizers in the code under test, not only in the
    # fuzz drivers, so libFuzzer sees inside the parsers.
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link,address,undefined
      -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  elseif(RENC_SANITIZE)
    string(REPLACE ";" "," _san "${RENC_SANITIZE}")
    target_compile_options(${target} PRIVATE -fsanitize=${_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${_san})
  endif()
endfunction()

# renc_library(NAME folder DEPS ...): one library per folder; sources are the
# folder's .c files.  Its public include root is the source root, so code
# includes "crypto/aead.h", never "../".
function(renc_library name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _src CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  add_library(${name} STATIC ${_src})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_definitions(${name} PUBLIC _GNU_SOURCE
    $<$<BOOL:${RENC_TEST_HOOKS}>:RENC_TEST_HOOKS=1>
    $<$<BOOL:${RENC_VALGRIND}>:RENC_VALGRIND=1>)
  renc_target_warnings(${name})
  renc_target_sanitize(${name})
endfunction()
