# A ctest test that installs this build into a scratch prefix and builds a tiny consumer
# project against the installed package with find_package(occams_rpc).
add_test(NAME "package: a consumer project builds against the installed package"
  COMMAND ${CMAKE_COMMAND}
    -DBUILD_DIR=${CMAKE_BINARY_DIR}
    -DCONSUMER_SOURCE=${CMAKE_CURRENT_SOURCE_DIR}/package_consumer
    -DWORK_DIR=${CMAKE_BINARY_DIR}/package_consumer_test
    -DCXX_COMPILER=${CMAKE_CXX_COMPILER}
    -DGENERATOR=${CMAKE_GENERATOR}
    -DEXPECT_OCCAMS_TOOL=$<TARGET_EXISTS:occams>
    -P ${CMAKE_CURRENT_SOURCE_DIR}/package_consumer/run.cmake)
set_tests_properties("package: a consumer project builds against the installed package"
  PROPERTIES TIMEOUT 300 LABELS package)
