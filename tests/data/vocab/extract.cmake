# Unpacks the real-tokenizer archive into the build tree (once per archive content).
# Sets FUSEKIT_VOCAB_DATA_DIR in the caller's scope.
set(_fk_vocab_archive ${CMAKE_CURRENT_LIST_DIR}/fusekit_vocab_data.tar.xz)
set(FUSEKIT_VOCAB_DATA_DIR ${CMAKE_BINARY_DIR}/fusekit_vocab_data)
file(SHA256 ${_fk_vocab_archive} _fk_vocab_hash)
set(_fk_vocab_stamp ${FUSEKIT_VOCAB_DATA_DIR}/.extracted-${_fk_vocab_hash})
if(NOT EXISTS ${_fk_vocab_stamp})
  message(STATUS "fusekit: extracting vocabulary test data into ${FUSEKIT_VOCAB_DATA_DIR}")
  file(REMOVE_RECURSE ${FUSEKIT_VOCAB_DATA_DIR})
  file(ARCHIVE_EXTRACT INPUT ${_fk_vocab_archive} DESTINATION ${FUSEKIT_VOCAB_DATA_DIR})
  file(TOUCH ${_fk_vocab_stamp})
endif()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_fk_vocab_archive})
