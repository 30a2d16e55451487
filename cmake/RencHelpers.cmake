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

# renc_layer_include(target folder): the target's public include root is a
# folder of the build holding one link, FOLDER -> the sources' FOLDER.  So a
# file sees its own folder and those of the libraries it links (their roots
# come with them), and no other: an include that crosses a layer the wrong
# way does not compile ("crypto/aead.h: No such file" from common/).
# scripts/check-layers.sh says the same without a build, with the rule.
function(renc_layer_include target folder)
  set(_root ${CMAKE_BINARY_DIR}/layers/${folder})
  file(MAKE_DIRECTORY ${_root})
  file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${_root}/${folder} SYMBOLIC)
  target_include_directories(${target} PUBLIC ${_root})
endfunction()

# renc_library(NAME DEPS ...): one library per folder; sources are the
# folder's .c files.  Code includes "crypto/aead.h", never "../", and only
# what its layer may (renc_layer_include).
function(renc_library name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB _src CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.c)
  add_library(${name} STATIC ${_src})
  get_filename_component(_folder ${CMAKE_CURRENT_SOURCE_DIR} NAME)
  renc_layer_include(${name} ${_folder})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  target_compile_definitions(${name} PUBLIC _GNU_SOURCE
    $<$<BOOL:${RENC_TEST_HOOKS}>:RENC_TEST_HOOKS=1>
    $<$<BOOL:${RENC_VALGRIND}>:RENC_VALGRIND=1>)
  renc_target_warnings(${name})
  renc_target_sanitize(${name})
endfunction()
