# Run at build time (cmake -P, every build): writes OUT from IN with the version and the git
# revision of SOURCE_DIR, touching OUT only when they changed, so that a build with nothing new
# recompiles nothing and a new revision recompiles this one small file and relinks.
#   cmake -DIN=... -DOUT=... -DSOURCE_DIR=... -DBACKCHECK_VERSION=... -P version.cmake
set(BACKCHECK_GIT_REVISION unknown)
find_program(GIT_EXECUTABLE git)
if(GIT_EXECUTABLE)
  execute_process(COMMAND ${GIT_EXECUTABLE} -C ${SOURCE_DIR} describe --always --dirty
                  OUTPUT_VARIABLE revision OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE status ERROR_QUIET)
  if(status EQUAL 0 AND NOT revision STREQUAL "")
    set(BACKCHECK_GIT_REVISION ${revision})
  endif()
endif()
configure_file(${IN} ${OUT}.tmp @ONLY)
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
