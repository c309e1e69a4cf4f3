# Runs a libFuzzer binary for a bounded time on a fresh copy of the committed seed corpus
# (the fuzzer adds to the corpus it is given; the committed one must not change under us).
# Fails if the fuzzer exits non-zero, i.e. it found a crash, leak, timeout or sanitizer report.
# -D FUZZER=<binary> -D CORPUS_SRC=<dir> -D WORK_DIR=<dir> [-D MAX_TOTAL_TIME=20]
if(NOT MAX_TOTAL_TIME)
  set(MAX_TOTAL_TIME 20)
endif()
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/artifacts")
file(COPY "${CORPUS_SRC}/" DESTINATION "${WORK_DIR}/corpus")
execute_process(
  COMMAND "${FUZZER}" -max_total_time=${MAX_TOTAL_TIME} -rss_limit_mb=2048 -timeout=10 -max_len=20000
          -print_final_stats=1 "-artifact_prefix=${WORK_DIR}/artifacts/" "${WORK_DIR}/corpus"
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (${result}); reproducer in ${WORK_DIR}/artifacts/")
endif()
