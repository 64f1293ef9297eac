# Finds the dependencies: a normal install first, then the project's fallbacks.
include(GNUInstallDirs)
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED CONFIG COMPONENTS headers)
find_package(fmt REQUIRED CONFIG)
if(OCCAMS_RPC_TLS)
  find_package(OpenSSL 3 REQUIRED)  # Debian: libssl-dev
endif()

# msgpack-cxx: Debian's libmsgpack-cxx-dev depends on libboost-dev (1.74), which conflicts
# with Boost 1.81, so scripts/install-deps.sh unpacks the package into .deps/msgpack instead.
find_package(msgpack-cxx CONFIG QUIET)
if(NOT TARGET msgpackc-cxx)
  find_package(msgpack CONFIG QUIET
    HINTS ${CMAKE_CURRENT_LIST_DIR}/../.deps/msgpack/usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/cmake/msgpackc-cxx
          ${CMAKE_CURRENT_LIST_DIR}/../.deps/msgpack/usr/lib/x86_64-linux-gnu/cmake/msgpackc-cxx)
endif()
if(NOT TARGET msgpackc-cxx)
  message(FATAL_ERROR "msgpack-cxx not found: install it, or run scripts/install-deps.sh "
                      "(it unpacks Debian's libmsgpack-cxx-dev into .deps/msgpack)")
endif()
