# src/query: both APIs' answers, an upload into a vector, the dataset walk.
ear_test(query_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_query_json.c
         LIBS ear_query PkgConfig::CJSON)
# ear_query_run as the HTTP service calls it, with the small golden model.
ear_test(query_run SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_query_run.c
         LIBS ear_query Threads::Threads)
