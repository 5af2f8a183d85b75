#!/usr/bin/env bash
# The whole test suite: dependencies, a sanitizer build (ASan + UBSan), the test guests, and CTest.
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
images/build-guest.sh
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Debug -DHVM_SANITIZE=ON -DHVM_WERROR=ON >/dev/null
ninja -C build-test
cd build-test
ctest --output-on-failure -j2 --timeout 900
