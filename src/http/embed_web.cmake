# Writes every file under WEB_DIR into OUTPUT as C arrays (the table of
# src/http/internal.h), so that the binary serves its page without files beside it.
# cmake -DWEB_DIR=<web folder> -DOUTPUT=<file.c> -P embed_web.cmake
if(NOT WEB_DIR OR NOT OUTPUT)
  message(FATAL_ERROR "embed_web.cmake: set WEB_DIR and OUTPUT")
endif()

set(files)
if(IS_DIRECTORY "${WEB_DIR}")
  file(GLOB_RECURSE files RELATIVE "${WEB_DIR}" "${WEB_DIR}/*")
endif()
list(SORT files)

set(arrays "")
set(table "")
set(count 0)
foreach(name IN LISTS files)
  # Hidden files and editor leftovers are not part of the page.
  if(name MATCHES "(^|/)\\." OR name MATCHES "~$")
    continue()
  endif()
  # The name becomes a C string and a URL path: keep it to plain characters.
  if(NOT name MATCHES "^[A-Za-z0-9_./-]+$")
    message(WARNING "embed_web.cmake: ${name}: left out (only A-Z a-z 0-9 _ . / - in names)")
    continue()
  endif()
  file(READ "${WEB_DIR}/${name}" hex HEX)
  file(SHA1 "${WEB_DIR}/${name}" sha1)
  string(LENGTH "${hex}" hex_length)
  math(EXPR size "${hex_length} / 2")
  string(SUBSTRING "${sha1}" 0 20 tag)
  # Sixteen bytes a line; the trailing 0 keeps text NUL-terminated and empty files valid.
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
  string(APPEND arrays "/* ${name} */\nstatic const unsigned char asset_${count}[] = {\n    ${bytes}0};\n\n")
  string(APPEND table "    {\"${name}\", asset_${count}, ${size}, \"\\\"${tag}\\\"\"},\n")
  math(EXPR count "${count} + 1")
endforeach()

if(count EQUAL 0)
  # C has no empty arrays: one placeholder entry that no lookup reaches.
  set(table "    {\"\", (const unsigned char *)\"\", 0, \"\\\"\\\"\"},\n")
endif()

set(text "/* Generated from web/ by src/http/embed_web.cmake at build time: do not edit. */
#include \"http/internal.h\"

${arrays}const ear_http_asset ear_http_assets[] = {
${table}};

const size_t ear_http_asset_count = ${count};
")

# Rewritten only when it changes, so that an unchanged page compiles nothing.
set(previous "")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" previous)
endif()
if(NOT previous STREQUAL text)
  file(WRITE "${OUTPUT}" "${text}")
endif()
