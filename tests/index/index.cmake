# The index file and exact search, with synthetic embeddings (no model needed).
ear_test(index_file SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_file.c LIBS ear_index)
ear_test(index_search SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_search.c LIBS ear_index)
ear_test(index_kernels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_kernels.c LIBS ear_index)
ear_test(index_search_json SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_search_json.c
         LIBS ear_index PkgConfig::CJSON)
ear_test(index_import SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_import.c LIBS ear_index)
# ear_search_run as the HTTP service calls it, with the small golden model.
ear_test(index_search_run SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_search_run.c
         LIBS ear_index Threads::Threads)
