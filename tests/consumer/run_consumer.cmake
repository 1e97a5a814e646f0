# CTest driver of the consumer tests (label consumer). Run as
#   cmake -DMODE=<find_package|add_subdirectory> -DSOURCE_DIR=<repo> -DWORK_DIR=<scratch> -DGENERATOR=<g>
#         [-DCXX_COMPILER=<c++>] [-DLAUNCHER=<ccache>] -P run_consumer.cmake
# find_package: configures fusekit alone (no tests/tools), installs it to WORK_DIR/prefix, then builds and runs
# tests/consumer against the installed package. add_subdirectory: builds and runs tests/consumer with fusekit
# added as a subdirectory.
cmake_minimum_required(VERSION 3.25)
foreach(v MODE SOURCE_DIR WORK_DIR GENERATOR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_consumer.cmake: ${v} is not set")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "failed (${rc}): ${cmd}\n${out}")
  endif()
  message(STATUS "ok: ${ARGV0} ${ARGV1} ${ARGV2}")
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

set(common -G ${GENERATOR} -DCMAKE_BUILD_TYPE=Release)
if(CXX_COMPILER)
  list(APPEND common -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(LAUNCHER)
  list(APPEND common -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()

file(REMOVE_RECURSE ${WORK_DIR})
set(consumer_build ${WORK_DIR}/consumer-build)
if(MODE STREQUAL "find_package")
  set(prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/fusekit-build ${common} -DFUSEKIT_INSTALL=ON
      -DFUSEKIT_BUILD_TESTS=OFF -DFUSEKIT_BUILD_BENCHMARKS=OFF -DFUSEKIT_BUILD_EXAMPLES=OFF -DFUSEKIT_BUILD_TOOLS=OFF
      -DFUSEKIT_HEADER_TESTS=OFF)
  run(${CMAKE_COMMAND} --install ${WORK_DIR}/fusekit-build --prefix ${prefix})
  foreach(f include/fusekit/fusekit.hpp include/fusekit/merge/linear.hpp share/cmake/fusekit/fusekitConfig.cmake
            share/cmake/fusekit/fusekitConfigVersion.cmake share/cmake/fusekit/fusekitTargets.cmake)
    if(NOT EXISTS ${prefix}/${f})
      message(FATAL_ERROR "the installed package lacks ${f}")
    endif()
  endforeach()
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${consumer_build} ${common}
      -DFUSEKIT_CONSUMER_MODE=find_package -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
  if(NOT last_output MATCHES "found fusekit [0-9.]+ in ${prefix}")
    message(FATAL_ERROR "find_package(fusekit) did not use the installed package:\n${last_output}")
  endif()
elseif(MODE STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/consumer -B ${consumer_build} ${common}
      -DFUSEKIT_CONSUMER_MODE=add_subdirectory -DFUSEKIT_SOURCE_DIR=${SOURCE_DIR})
else()
  message(FATAL_ERROR "run_consumer.cmake: unknown MODE ${MODE}")
endif()
run(${CMAKE_COMMAND} --build ${consumer_build} --parallel 2)
run(${consumer_build}/consumer)
message(STATUS "${last_output}")
