#!/usr/bin/env bash
# ThreadSanitizer over the code that crosses threads: IOLoop::add_callback from other
# threads (and the loop's poster), the executor (ThreadPoolExecutor, run_on_executor) and
# the resolver that runs getaddrinfo on it. Builds only those test binaries in build/tsan
# (Debug, -fsanitize=thread) and runs the thread tests by gtest filter; any race report
# fails the run (halt_on_error).
#   ci/tsan.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSQUALL_TSAN=ON -DSQUALL_WERROR=ON \
  -DSQUALL_BUILD_BENCH=OFF >/dev/null
ninja -C build/tsan ioloop_test task_test netutil_test

export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4"
run() {  # binary, gtest filter
  echo "== $1 --gtest_filter=$2"
  "build/tsan/reference/$1" --gtest_filter="$2" --gtest_brief=1
}
# Every IOLoop test: the cross-thread ones (add_callback from threads, CurrentIsPerThread,
# the poster) and the single-threaded rest, which must not report either.
run ioloop_test 'IOLoop.*'
run task_test 'Executor.*'
run netutil_test 'netutil.Resolver*:netutil.BindSocketsUnresolvableAddressThrowsResolveError'
echo "== ThreadSanitizer: no race reported"
