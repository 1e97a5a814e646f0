# Compile-fail check, run by CTest as `cmake -P`:
#   1. the source compiles without FUSEKIT_EXPECT_COMPILE_ERROR (the control: the test is not broken);
#   2. with -DFUSEKIT_EXPECT_COMPILE_ERROR it fails, and the diagnostic matches EXPECT (the static_assert sentence).
# Variables: COMPILER, SOURCE, FLAGS (arguments separated by '|'), EXPECT (a regular expression).
cmake_minimum_required(VERSION 3.25)
foreach(v COMPILER SOURCE EXPECT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_compile_fail.cmake: ${v} is not set")
  endif()
endforeach()
string(REPLACE "|" ";" flags "${FLAGS}")

execute_process(COMMAND ${COMPILER} ${flags} ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "control compile of ${SOURCE} (without FUSEKIT_EXPECT_COMPILE_ERROR) failed; the test itself is broken:\n${out}")
endif()

execute_process(COMMAND ${COMPILER} ${flags} -DFUSEKIT_EXPECT_COMPILE_ERROR ${SOURCE}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled with FUSEKIT_EXPECT_COMPILE_ERROR, but it must not")
endif()
string(REGEX REPLACE "[\r\n]+" " " flat "${out}")
if(NOT flat MATCHES "${EXPECT}")
  message(FATAL_ERROR "${SOURCE} failed to compile as expected, but without the expected diagnostic\n"
                      "  expected (regex): ${EXPECT}\n  compiler output:\n${out}")
endif()
message(STATUS "ok: ${SOURCE} fails to compile with the expected diagnostic")
