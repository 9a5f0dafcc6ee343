# The allocator of Cairn's own programs (samples, tools, benchmarks, tests).
#
# Cairn's hot path allocates on one thread and frees on another (requests made by
# aggregates, written and freed by the journal's threads; answers the other way).
# glibc's malloc serialises that on arena locks; jemalloc does not, and measured
# 1.4x the journal's durable appends/s (bench/RESULTS.md). The libraries themselves
# do not pick an allocator: an application links jemalloc the same way
# (target_link_libraries(app PRIVATE jemalloc), Debian package libjemalloc-dev).
option(CAIRN_JEMALLOC "Link Cairn's programs with jemalloc when it is installed" ON)

add_library(cairn_program_malloc INTERFACE)
if(CAIRN_JEMALLOC AND NOT CAIRN_SANITIZE)
  find_library(CAIRN_JEMALLOC_LIBRARY NAMES jemalloc)
  if(CAIRN_JEMALLOC_LIBRARY)
    target_link_libraries(cairn_program_malloc INTERFACE ${CAIRN_JEMALLOC_LIBRARY})
    target_sources(cairn_program_malloc INTERFACE ${CMAKE_CURRENT_LIST_DIR}/jemalloc_options.cpp)
    message(STATUS "Cairn programs use jemalloc: ${CAIRN_JEMALLOC_LIBRARY}")
  else()
    message(STATUS "jemalloc not found (libjemalloc-dev): Cairn programs use the system malloc")
  endif()
endif()

# Links `target` (an executable) with the allocator chosen above.
function(cairn_program_malloc target)
  target_link_libraries(${target} PRIVATE cairn_program_malloc)
endfunction()
