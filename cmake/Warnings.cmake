# Project-wide warning flags. Applied per target with tickwire_warnings(<target>) so that
# generated protobuf code can be compiled without them.
set(TICKWIRE_WARNING_FLAGS -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion -Wpedantic
    -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual)
if(TICKWIRE_WERROR)
  list(APPEND TICKWIRE_WARNING_FLAGS -Werror)
endif()

function(tickwire_warnings target)
  target_compile_options(${target} PRIVATE ${TICKWIRE_WARNING_FLAGS})
endfunction()

# tickwire_library(<module> SOURCES ... DEPS ...): one library per src/ module.
function(tickwire_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(tickwire_${name} STATIC ${ARG_SOURCES})
  # The source tree only while building: installed libraries (the client's, cmake/Install.cmake)
  # bring their own include directory.
  target_include_directories(tickwire_${name} PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/src>)
  target_link_libraries(tickwire_${name} PUBLIC ${ARG_DEPS})
  tickwire_warnings(tickwire_${name})
endfunction()
