#!/usr/bin/env bash
# Checks the layering of the source folders (README.md, "Architecture"), the
# way curl's checksrc checks its style: without a build, on every .c and .h.
#
#   scripts/check-layers.sh [ROOT]      check the tree at ROOT (default: this one)
#   scripts/check-layers.sh --self-test plant one fault of each kind in a copy
#                                       of the tree and check that each is found
#   scripts/check-layers.sh --build BUILDDIR CC
#                                       the build's own guard: with common/'s
#                                       include root only, "common/path.h"
#                                       compiles and "crypto/aead.h" does not
#
# Rules, each violation printed as FILE:LINE: what, why; exit 1 on any:
#   1. a folder includes project headers only from the folders it may use
#      (LAYERS below; "#include \"../x.h\"" is refused everywhere);
#   2. the allowed edges have no circle (tsort);
#   3. a library's headers are included only where that library belongs:
#      OpenSSL in crypto/ and the key layers, libcurl in net/, liburing in
#      io/, SQLite in state/, expat in azure/, p11-kit in keys/;
#   4. only reencrypt/ prints (printf, fprintf, puts, fputs, putchar, perror).
# The build enforces rule 1 as well (cmake/RencHelpers.cmake,
# renc_layer_include): an upward include does not compile.
set -uo pipefail

# folder: the folders it may include (itself always).  Keep in step with
# README.md's picture and each folder's CMakeLists.txt DEPS.
LAYERS=(
  "common:"
  "crypto:common"
  "io:common"
  "net:crypto common"
  "azure:net crypto common"
  "keys:azure net crypto common"
  "store:azure net crypto io common"
  "state:store keys crypto io common"
  "blob:keys crypto io common"
  "run:blob state store keys crypto io common"
  "env:blob state store keys crypto io common"
  "reencrypt:env run blob state store keys azure net crypto io common"
)
# header prefix (as included with <>): the folders that may include it.
LIBS=(
  "openssl/:crypto net azure keys"
  "curl/:net"
  "liburing:io"
  "sqlite3.h:state"
  "libpq-fe.h:state"
  "expat.h:azure"
  "p11-kit/:keys"
)

allowed_of() {
  local entry
  for entry in "${LAYERS[@]}"; do
    [ "${entry%%:*}" = "$1" ] && { echo "${entry#*:}"; return 0; }
  done
  return 1
}

layer_folders() {
  local entry
  for entry in "${LAYERS[@]}"; do echo "${entry%%:*}"; done
}

# check ROOT: prints violations, returns 1 when there is any.
check() {
  local root=$1 bad=0 folder file line text target allowed lib entry
  # 2. no circle among the allowed edges.
  local edges=""
  for entry in "${LAYERS[@]}"; do
    for target in ${entry#*:}; do edges+="$target ${entry%%:*}"$'\n'; done
  done
  if ! printf '%s' "$edges" | tsort >/dev/null 2>"${TMPDIR:-/tmp}/check-layers.$$"; then
    echo "check-layers: the allowed edges make a circle: $(cat "${TMPDIR:-/tmp}/check-layers.$$")"
    bad=1
  fi
  rm -f "${TMPDIR:-/tmp}/check-layers.$$"
  local known=" $(layer_folders | tr '\n' ' ') "
  for folder in $(layer_folders); do
    [ -d "$root/$folder" ] || continue
    allowed=" $folder $(allowed_of "$folder") "
    while IFS=: read -r file line text; do
      # 1. project includes: "folder/x.h" of an allowed folder, never "../".
      if [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]*)\" ]]; then
        target=${BASH_REMATCH[1]}
        if [[ $target == ../* || $target == */../* ]]; then
          echo "$file:$line: includes \"$target\": a path with '..' (include \"folder/file.h\")"
          bad=1
        elif [[ $target == */* ]]; then
          local dir=${target%%/*}
          if [[ $known == *" $dir "* && $allowed != *" $dir "* ]]; then
            local may=${allowed# }
            echo "$file:$line: $folder/ includes \"$target\": $folder/ may include only ${may% } (README.md, Architecture)"
            bad=1
          fi
        fi
      # 3. library headers where their library belongs.
      elif [[ $text =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^\>]*)\> ]]; then
        target=${BASH_REMATCH[1]}
        for entry in "${LIBS[@]}"; do
          lib=${entry%%:*}
          if [[ $target == "$lib"* && " ${entry#*:} " != *" $folder "* ]]; then
            echo "$file:$line: $folder/ includes <$target>: only ${entry#*:}/ may use that library"
            bad=1
          fi
        done
      # 4. printing, outside reencrypt/ (snprintf and friends write to memory).
      elif [ "$folder" != reencrypt ] &&
           [[ $text =~ (^|[^_[:alnum:]])(printf|fprintf|vfprintf|puts|fputs|putchar|perror)[[:space:]]*\( ]]; then
        echo "$file:$line: $folder/ prints (${BASH_REMATCH[2]}): only reencrypt/ prints; return an error instead"
        bad=1
      fi
    done < <(grep -HnE '^[[:space:]]*#[[:space:]]*include|(printf|puts|putchar|perror)[[:space:]]*\(' \
               "$root/$folder"/*.c "$root/$folder"/*.h 2>/dev/null | sed "s|^$root/||")
  done
  return $bad
}

# --self-test: each kind of fault, planted in a copy, is found; the copy
# without a fault passes.
self_test() {
  local src=$1 tmp failures=0 out
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-layers.XXXXXX") || exit 2
  trap 'rm -rf "$tmp"' RETURN
  local folder
  for folder in $(layer_folders); do
    mkdir -p "$tmp/clean/$folder"
    cp "$src/$folder"/*.c "$src/$folder"/*.h "$tmp/clean/$folder/" 2>/dev/null
  done
  if ! out=$(check "$tmp/clean"); then
    echo "self-test: the unchanged tree fails:"; echo "$out"; failures=1
  fi
  # plant NAME FILE LINE WANT: a copy with LINE appended to FILE must fail
  # naming FILE and WANT.
  plant() {
    local name=$1 file=$2 text=$3 want=$4
    rm -rf "$tmp/$name" && cp -r "$tmp/clean" "$tmp/$name"
    printf '%s\n' "$text" >>"$tmp/$name/$file"
    if out=$(check "$tmp/$name"); then
      echo "self-test: $name: not found"; failures=1
    elif [[ $out != *"$file:"*"$want"* ]]; then
      echo "self-test: $name: found, but not as expected:"; echo "$out"; failures=1
    fi
  }
  plant upward common/path.c '#include "crypto/aead.h"' "common/ may include only"
  plant sideways io/file.c '#include "keys/keyref.h"' "io/ may include only"
  plant app crypto/aead.c '#include "reencrypt/cli.h"' "crypto/ may include only"
  plant dotdot crypto/aead.c '#include "../io/file.h"' "a path with '..'"
  plant library crypto/aead.c '#include <liburing.h>' "only io/ may use"
  plant sqlite io/file.c '#include <sqlite3.h>' "only state/ may use"
  plant store_up store/scan.c '#include "run/engine.h"' "store/ may include only"
  plant prints io/file.c 'static void f(void) { fprintf(stderr, "x"); }' "io/ prints"
  # snprintf writes to memory: not printing.
  rm -rf "$tmp/snprintf" && cp -r "$tmp/clean" "$tmp/snprintf"
  printf '%s\n' 'static int g(char *b) { return snprintf(b, 4, "x"); }' >>"$tmp/snprintf/io/file.c"
  if ! out=$(check "$tmp/snprintf"); then
    echo "self-test: snprintf taken for printing:"; echo "$out"; failures=1
  fi
  # A circle in the table is found.
  LAYERS+=("common:crypto")
  if check "$tmp/clean" >/dev/null; then
    echo "self-test: a circle in the layer table is not found"; failures=1
  fi
  unset 'LAYERS[${#LAYERS[@]}-1]'
  [ $failures -eq 0 ] && echo "check-layers self-test: every planted fault found, the clean copy passes"
  return $failures
}

# --build BUILDDIR CC: the include roots the build gives each layer
# (renc_layer_include) refuse an upward include by themselves.
build_test() {
  local dir=$1 cc=$2 inc=$1/layers/common
  [ -d "$inc/common" ] || { echo "check-layers --build: no $inc/common (configure $dir first)"; return 1; }
  if ! printf '#include "common/path.h"\n' | "$cc" -fsyntax-only -D_GNU_SOURCE -I"$inc" -x c - 2>/dev/null; then
    echo "check-layers --build: common/ cannot include its own header with its include root"
    return 1
  fi
  if printf '#include "crypto/aead.h"\n' | "$cc" -fsyntax-only -D_GNU_SOURCE -I"$inc" -x c - 2>/dev/null; then
    echo "check-layers --build: common/'s include root lets it include crypto/aead.h"
    return 1
  fi
  echo "check-layers --build: an upward include does not compile with a layer's include root"
}

here=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = --build ]; then
  build_test "${2:?--build BUILDDIR CC}" "${3:?--build BUILDDIR CC}"
  exit $?
fi
if [ "${1:-}" = --self-test ]; then
  self_test "$here"
  exit $?
fi
root=${1:-$here}
if check "$root"; then
  echo "check-layers: $(layer_folders | tr '\n' ' ')— every include and print in its layer"
  exit 0
fi
exit 1
