# The HTTP service (`ear serve`): its parts without sockets in C, the rest driven
# over loopback by curl and bash (tests/http/lib.sh starts the server on a free port).
ear_test(http_parts SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_http_parts.c
         LIBS ear_http PkgConfig::CJSON)
ear_shell_test(http_routes routes.sh)
ear_shell_test(http_search search.sh)
ear_shell_test(http_files files.sh)
ear_shell_test(http_limits limits.sh)
ear_shell_test(http_signals signals.sh)
ear_shell_test(http_memory memory.sh)
ear_shell_test(http_examples examples.sh)
ear_shell_test(http_query query.sh)
ear_shell_test(http_fill_columns fill_columns.sh)
