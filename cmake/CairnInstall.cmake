# CairnInstall: install rules and the relocatable CMake package behind find_package(cairn).
#
# Installs cairn_framework and cairn_actors (as cairn::framework and cairn::actors),
# an interface target cairn::cairn that pulls in everything, cairn::cli (the tool as
# a library, when tools are built), cairn::postgres, cairn::http and cairn::kafka
# (when built), the include/ trees,
# the bundled FindCAF.cmake, and cairnConfig.cmake + cairnConfigVersion.cmake into
# ${CMAKE_INSTALL_LIBDIR}/cmake/cairn. Included last by the top-level CMakeLists.txt,
# so every library target and its link libraries are known here.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CAIRN_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/cairn"
  CACHE STRING "Where cairnConfig.cmake is installed, relative to the prefix")
mark_as_advanced(CAIRN_INSTALL_CMAKEDIR)

# The libraries the package exports. In the build tree cairn::cairn is an ALIAS of
# cairn_actors; ALIAS targets cannot be exported, so installs get a real interface
# target with the same exported name that links everything.
set(_cairn_exported_libraries cairn_framework cairn_actors)
add_library(cairn_all INTERFACE)
set_target_properties(cairn_all PROPERTIES EXPORT_NAME cairn)
target_link_libraries(cairn_all INTERFACE ${_cairn_exported_libraries})

# A sanitized build's static libraries need the sanitizer runtimes in whatever links
# them; add_link_options() does not travel with exported targets, so say it here.
if(CAIRN_SANITIZE)
  target_link_options(cairn_all INTERFACE
    "$<INSTALL_INTERFACE:-fsanitize=address,undefined>")
endif()

install(TARGETS ${_cairn_exported_libraries} cairn_all
  EXPORT cairnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# cairn::cli (tools/cli): the command-line tool as a library, so an application builds
# its own cairn-style tool with its aggregate types. Not part of cairn::cairn; its
# internal helper library goes along because the static cairn::cli links it.
set(_cairn_cli_libraries "")
if(TARGET cairn_cli_tool)
  set(_cairn_cli_libraries cairn_cli_tool cairn_cli_support)
  set_target_properties(cairn_cli_tool PROPERTIES EXPORT_NAME cli)
  set_target_properties(cairn_cli_support PROPERTIES EXPORT_NAME cli_support)
  if(CAIRN_SANITIZE)
    target_link_options(cairn_cli_tool INTERFACE
      "$<INSTALL_INTERFACE:-fsanitize=address,undefined>")
  endif()
  install(TARGETS ${_cairn_cli_libraries}
    EXPORT cairnTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/tools/cli/include/"
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.hpp")
endif()

# cairn::postgres (postgres/): the PostgreSQL journal and snapshot store, when built.
# The stock cairn::cli links it privately (--postgres-url), so it is exported with it.
if(TARGET cairn_postgres)
  list(APPEND _cairn_cli_libraries cairn_postgres)
  install(TARGETS cairn_postgres
    EXPORT cairnTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY "${PROJECT_SOURCE_DIR}/postgres/include/"
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.hpp")
endif()

# cairn::http (http/) and cairn::kafka (kafka/), when built: optional libraries an
# embedder links by name (not part of cairn::cairn), installed as cairn::postgres is.
set(_cairn_optional_libraries "")
foreach(_part IN ITEMS http kafka)
  if(TARGET cairn_${_part})
    list(APPEND _cairn_optional_libraries cairn_${_part})
    if(CAIRN_SANITIZE)
      target_link_options(cairn_${_part} INTERFACE
        "$<INSTALL_INTERFACE:-fsanitize=address,undefined>")
    endif()
    install(TARGETS cairn_${_part}
      EXPORT cairnTargets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
      INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
    install(DIRECTORY "${PROJECT_SOURCE_DIR}/${_part}/include/"
      DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
      FILES_MATCHING PATTERN "*.hpp")
  endif()
endforeach()

install(DIRECTORY
    "${PROJECT_SOURCE_DIR}/framework/include/"
    "${PROJECT_SOURCE_DIR}/actors/include/"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h")

install(EXPORT cairnTargets
  NAMESPACE cairn::
  FILE cairnTargets.cmake
  DESTINATION ${CAIRN_INSTALL_CMAKEDIR})

# Work out which find_dependency() calls the config needs from what the exported
# targets actually link. Static libraries export their PRIVATE dependencies too (as
# $<LINK_ONLY:...>), which is why spdlog shows up for the default static build.
set(_cairn_link_items "")
foreach(_lib IN LISTS _cairn_exported_libraries _cairn_cli_libraries _cairn_optional_libraries)
  get_target_property(_items ${_lib} INTERFACE_LINK_LIBRARIES)
  if(_items)
    list(APPEND _cairn_link_items ${_items})
  endif()
endforeach()
set(_cairn_link_string "${_cairn_link_items}")

# CAIRN_NEEDS_<NAME> (read by cairnConfig.cmake.in) for each NAME=pattern below.
foreach(_need IN ITEMS
    "THREADS=Threads::" "NLOHMANN_JSON=nlohmann_json::" "CAF=CAF::" "SPDLOG=spdlog::|fmt::"
    "POSTGRESQL=PostgreSQL::" "BOOST=Boost::" "OPENSSL=OpenSSL::" "RDKAFKA=PkgConfig::RDKAFKA")
  string(REGEX REPLACE "=.*" "" _name "${_need}")
  string(REGEX REPLACE "^[^=]*=" "" _pattern "${_need}")
  set(CAIRN_NEEDS_${_name} OFF)
  if(_cairn_link_string MATCHES "${_pattern}")
    set(CAIRN_NEEDS_${_name} ON)
  endif()
endforeach()

# Any other imported target would leave consumers with an unknown target: say so now
# (the install test in tests/install then fails too).
string(REGEX MATCHALL "[A-Za-z0-9_.+-]+::[A-Za-z0-9_.+-]+" _cairn_namespaced "${_cairn_link_string}")
foreach(_dep IN LISTS _cairn_namespaced)
  if(NOT _dep MATCHES "^(Threads|nlohmann_json|CAF|spdlog|fmt|PostgreSQL|Boost|OpenSSL|cairn)::" AND
     NOT _dep STREQUAL "PkgConfig::RDKAFKA")
    message(WARNING
      "An installed cairn library links ${_dep}, but cmake/cairnConfig.cmake.in does not "
      "find its package. Add a find_dependency() for it there and a check in "
      "cmake/CairnInstall.cmake.")
  endif()
endforeach()

configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/cairnConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/cairnConfig.cmake"
  INSTALL_DESTINATION ${CAIRN_INSTALL_CMAKEDIR}
  NO_SET_AND_CHECK_MACRO)

# 0.x releases break their API between minor versions.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/cairnConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)

install(FILES
    "${PROJECT_BINARY_DIR}/cairnConfig.cmake"
    "${PROJECT_BINARY_DIR}/cairnConfigVersion.cmake"
    "${CMAKE_CURRENT_LIST_DIR}/FindCAF.cmake"
  DESTINATION ${CAIRN_INSTALL_CMAKEDIR})

unset(_cairn_exported_libraries)
unset(_cairn_cli_libraries)
unset(_cairn_optional_libraries)
unset(_part)
unset(_need)
unset(_name)
unset(_pattern)
unset(_cairn_link_items)
unset(_cairn_link_string)
unset(_cairn_namespaced)
unset(_items)
unset(_lib)
unset(_dep)
