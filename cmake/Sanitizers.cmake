# Sanitizer builds. The flags apply to everything, generated code included, so that
# instrumentation is consistent across the whole binary. -g1 (line tables, after the build
# type's -g, so it wins) is all a report's stack needs (function, file and line) and compiles
# about a third faster than full debug info, which keeps CI's sanitizer stages short.
if(TICKWIRE_SANITIZE)
  add_compile_options(-fsanitize=${TICKWIRE_SANITIZE} -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=${TICKWIRE_SANITIZE})
  if(TICKWIRE_SANITIZE STREQUAL "thread" AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC warns that TSan does not model std::atomic_thread_fence (used inside Asio); the
    # warning is about the tool, not our code.
    add_compile_options(-Wno-tsan)
  endif()
  if(TICKWIRE_SANITIZE MATCHES "undefined")
    add_compile_options(-fno-sanitize-recover=all)
  endif()
endif()
if(TICKWIRE_FUZZ)
  # UB aborts like an ASan report, so libFuzzer stops and saves the input: a UBSan finding
  # fails the fuzz stage instead of scrolling past in its log.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                      -fno-omit-frame-pointer -g1)
  add_link_options(-fsanitize=address,undefined -fno-sanitize-recover=all)
endif()
