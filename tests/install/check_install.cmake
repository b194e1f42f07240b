# Installs the build into a scratch prefix, then builds and runs a consumer
# of the C API twice: found with find_package(fe_datakey), and compiled with
# the flags pkg-config gives for fe_datakey and an adapter (initdb_datakey).
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "failed: ${ARGN}\n${out}${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

# Only C headers an outside user can link against: the C API and the
# adapters' headers, none of the library's internal C++ headers.
file(GLOB headers RELATIVE ${prefix}/include/fe_datakey ${prefix}/include/fe_datakey/*)
list(SORT headers)
set(expected fe_datakey.h initdb_datakey.h rewind_datakey.h server_datakey.h upgrade_datakey.h)
if(NOT headers STREQUAL expected)
  message(FATAL_ERROR "installed headers: ${headers}; expected: ${expected}")
endif()

# The CMake package.
run(${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${WORK_DIR}/cmake -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/cmake)
run(${WORK_DIR}/cmake/consumer)
if(NOT out STREQUAL "key of 64 bytes, key check of 128 bits, 32 hex digits\n")
  message(FATAL_ERROR "consumer built with find_package printed: ${out}")
endif()

# pkg-config, relocated to the scratch prefix.
run(${CMAKE_COMMAND} -E env PKG_CONFIG_PATH=${prefix}/lib/pkgconfig
    pkg-config --define-prefix --cflags --libs fe_datakey initdb_datakey)
string(STRIP "${out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
run(${C_COMPILER} -Wall -Wextra -Werror ${CONSUMER_DIR}/main.c -o ${WORK_DIR}/pc-consumer ${flags}
    -Wl,-rpath,${prefix}/lib)
run(${WORK_DIR}/pc-consumer)
if(NOT out STREQUAL "key of 64 bytes, key check of 128 bits, 32 hex digits\n")
  message(FATAL_ERROR "consumer built with pkg-config printed: ${out}")
endif()
