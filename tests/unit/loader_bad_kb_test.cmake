# The real binaries given a bad knowledge base: a message naming the file and the item on stderr
# and exit status 2, never a crash (a wrong type here once aborted the process: exit 134).
#   cmake -DBACKCHECK=... -DCHAT_SERVER=... -DKB=knowledge/ -DWORK=scratch-dir -P loader_bad_kb_test.cmake
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/kb")
file(COPY "${KB}/article.txt" "${KB}/data" DESTINATION "${WORK}/kb")

# One case per line: file|text to find|its replacement|what stderr must contain.
set(cases
  "flow.jsonc|\"hours_min\": 12|\"hours_min\": \"12\"|flow.jsonc: tailoring rule 'doms_window': field 'hours_min'"
  "intents.jsonc|\"state_priority\": { \"screening\": 95 }|\"state_priority\": { \"screening\": [95] }|intents.jsonc: intent 'affirm': state_priority 'screening'"
  "language.jsonc|\"min_score\": 3.0|\"min_score\": { \"value\": 3.0 }|language.jsonc: retrieval: field 'min_score'")

foreach(case IN LISTS cases)
  string(REPLACE "|" ";" parts "${case}")
  list(GET parts 0 name)
  list(GET parts 1 from)
  list(GET parts 2 to)
  list(GET parts 3 expected)
  file(REMOVE_RECURSE "${WORK}/kb/data")
  file(COPY "${KB}/data" DESTINATION "${WORK}/kb")
  file(READ "${WORK}/kb/data/${name}" text)
  string(FIND "${text}" "${from}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "${name} does not contain ${from}")
  endif()
  string(REPLACE "${from}" "${to}" text "${text}")
  file(WRITE "${WORK}/kb/data/${name}" "${text}")

  foreach(binary backcheck chat-server)
    if(binary STREQUAL "backcheck")
      set(command "${BACKCHECK}" --kb "${WORK}/kb" kb-report)
    else()
      set(command "${CHAT_SERVER}" --kb "${WORK}/kb" --port 0 --store memory --data-dir "${WORK}/var")
    endif()
    execute_process(COMMAND ${command} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
    if(NOT rc STREQUAL "2")
      message(FATAL_ERROR "${binary} with a bad ${name}: exit '${rc}', expected 2 (a refusal, not a crash)\nstderr: ${err}")
    endif()
    string(FIND "${err}" "${expected}" found)
    if(found EQUAL -1)
      message(FATAL_ERROR "${binary} with a bad ${name}: stderr does not name the file and item (${expected})\nstderr: ${err}")
    endif()
    message(STATUS "${binary}, bad ${name}: exit 2, ${err}")
  endforeach()
endforeach()
file(REMOVE_RECURSE "${WORK}")
