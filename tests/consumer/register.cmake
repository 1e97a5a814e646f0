# Included from tests/CMakeLists.txt: registers the consumer tests (label consumer). tests/consumer itself is a
# standalone project (see its CMakeLists.txt), built by run_consumer.cmake in a scratch directory.
set(fusekit_consumer_launcher "")
if(CMAKE_CXX_COMPILER_LAUNCHER)
  set(fusekit_consumer_launcher -DLAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER})
endif()
foreach(mode find_package add_subdirectory)
  add_test(NAME fusekit.consumer.${mode}
           COMMAND ${CMAKE_COMMAND} -DMODE=${mode} -DSOURCE_DIR=${PROJECT_SOURCE_DIR}
                   -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer/${mode} "-DGENERATOR=${CMAKE_GENERATOR}"
                   -DCXX_COMPILER=${CMAKE_CXX_COMPILER} ${fusekit_consumer_launcher}
                   -P ${CMAKE_CURRENT_LIST_DIR}/run_consumer.cmake)
  set_tests_properties(fusekit.consumer.${mode} PROPERTIES LABELS consumer TIMEOUT 900)
endforeach()
