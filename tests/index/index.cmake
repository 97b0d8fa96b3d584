# The index file and exact search, with synthetic embeddings (no model needed).
ear_test(index_file SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_file.c LIBS ear_index)
ear_test(index_search SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_search.c LIBS ear_index)
ear_test(index_kernels SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_kernels.c LIBS ear_index)
ear_test(index_import SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_index_import.c LIBS ear_index)
