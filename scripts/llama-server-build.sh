#!/usr/bin/env bash
# Builds llama-server once, from the llama.cpp tree vendored in the llama-cpp-python sdist (pinned by version and
# sha256), into a cache outside the repository. A second run is a no-op when the cached binary's sha256 still
# matches the one recorded at build time and the recipe (sdist hash + cmake flags) is unchanged.
# Prints the binary's path as its last line. Needs cmake and a C++ compiler (Debian: cmake g++).
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_PYTHON_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
PYTHON=${PYTHON:-python3}
CACHE=${LLAMA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/driftwise/llama/$LLAMA_CPP_PYTHON_VERSION}
JOBS=${JOBS:-2}
# Static libraries so the cached binary stands alone; no network features (no HTTPS, no UI download).
CMAKE_FLAGS=(-DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_CURL=OFF
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF -DCMAKE_BUILD_TYPE=Release)
RECIPE="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION sha256=$LLAMA_CPP_PYTHON_SHA256 ${CMAKE_FLAGS[*]}"
BIN="$CACHE/bin/llama-server"
STAMP="$CACHE/bin/llama-server.stamp"

if [[ -x "$BIN" && -f "$STAMP" ]] && [[ "$(sed -n 1p "$STAMP")" == "$RECIPE" ]] \
   && [[ "$(sed -n 2p "$STAMP")" == "$(sha256sum "$BIN" | cut -d' ' -f1)" ]]; then
  echo "llama-server: cached build matches ($STAMP)" >&2
  echo "$BIN"
  exit 0
fi

for tool in cmake c++; do
  command -v "$tool" >/dev/null || { echo "llama-server build needs $tool: apt-get install -y cmake g++" >&2; exit 2; }
done

mkdir -p "$CACHE/src" "$CACHE/bin"
SDIST="$CACHE/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
if [[ ! -f "$SDIST" ]] || ! echo "$LLAMA_CPP_PYTHON_SHA256  $SDIST" | sha256sum -c --status; then
  REQ="$CACHE/src/requirements.txt"
  echo "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION --hash=sha256:$LLAMA_CPP_PYTHON_SHA256" >"$REQ"
  "$PYTHON" -m pip download -q --no-deps --no-binary :all: --require-hashes \
    -r "$REQ" -d "$CACHE/src" >&2
fi
echo "$LLAMA_CPP_PYTHON_SHA256  $SDIST" | sha256sum -c --status \
  || { echo "llama-server: $SDIST does not have sha256 $LLAMA_CPP_PYTHON_SHA256; delete it and rerun" >&2; exit 2; }

rm -rf "$CACHE/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION"
tar -xzf "$SDIST" -C "$CACHE/src" "llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
TREE="$CACHE/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
cmake -S "$TREE" -B "$CACHE/build" "${CMAKE_FLAGS[@]}" >&2
cmake --build "$CACHE/build" --target llama-server -j "$JOBS" >&2
install -m 0755 "$CACHE/build/bin/llama-server" "$BIN"
printf '%s\n%s\n' "$RECIPE" "$(sha256sum "$BIN" | cut -d' ' -f1)" >"$STAMP"
echo "llama-server: built $BIN" >&2
echo "$BIN"
